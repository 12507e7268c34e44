// The µTP (BEP 29) packet: a 20-byte header, a linked list of extensions
// (selective ACK is the only one we read; others are skipped by length), and
// the payload. Sans-I/O: datagrams in, datagrams out.
//
//   if (utp::LooksLikeUtp(datagram)) {
//     absl::StatusOr<utp::Packet> p = utp::ParsePacket(datagram);
//     ...
//   }
//   std::string out;
//   utp::AppendPacket(header, sack_mask, payload, out);
#ifndef SHOAL_UTP_PACKET_H_
#define SHOAL_UTP_PACKET_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace shoal::utp {

enum class PacketType : uint8_t {
  kData = 0,
  kFin = 1,
  kState = 2,
  kReset = 3,
  kSyn = 4,
};

inline constexpr size_t kHeaderSize = 20;
inline constexpr uint8_t kVersion = 1;
inline constexpr uint8_t kExtensionSack = 1;

struct Header {
  PacketType type = PacketType::kData;
  uint16_t connection_id = 0;
  uint32_t timestamp_us = 0;
  uint32_t timestamp_diff_us = 0;
  uint32_t wnd_size = 0;
  uint16_t seq_nr = 0;
  uint16_t ack_nr = 0;
};

struct Packet {
  Header header;
  // The selective ACK bitmask (empty when absent): bit i of byte i / 8 (least
  // significant first) acknowledges ack_nr + 2 + i. Views the datagram.
  std::string_view sack;
  std::string_view payload;  // views the datagram
};

// Whether a datagram can be µTP rather than KRPC (whose bencoded messages
// start with 'd'): version 1, a known type, at least a header long.
bool LooksLikeUtp(std::string_view datagram);

// Parses a datagram. Errors: shorter than a header, another version, an
// unknown type, an extension running past the end, a payload on a SYN, STATE
// or RESET. A selective ACK of any length is read (BEP 29 says a multiple of
// 4 bytes; libtorrent sends what its reorder buffer spans).
absl::StatusOr<Packet> ParsePacket(std::string_view datagram);

// Appends a datagram: the header, a selective ACK extension when `sack` is
// not empty (REQUIRES: its size a multiple of 4), and the payload.
void AppendPacket(const Header& header, std::string_view sack,
                  std::string_view payload, std::string& out);

// Sequence numbers wrap at 2^16: whether a comes before b.
inline bool SeqLess(uint16_t a, uint16_t b) {
  return static_cast<int16_t>(static_cast<uint16_t>(a - b)) < 0;
}

}  // namespace shoal::utp

#endif  // SHOAL_UTP_PACKET_H_
