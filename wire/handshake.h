// The BitTorrent handshake (BEP 3) and its reserved bits.
//
//   <19>"BitTorrent protocol" <8 reserved bytes> <20-byte info hash> <20-byte
//   peer id>
//
// For a v2 torrent the info hash is the SHA-256 info-hash truncated to 20 bytes
// (BEP 52).
#ifndef SHOAL_WIRE_HANDSHAKE_H_
#define SHOAL_WIRE_HANDSHAKE_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace shoal::wire {

inline constexpr size_t kHandshakeLength = 68;
// The protocol string and reserved bytes: what a peer must have sent before the
// info hash.
inline constexpr size_t kHandshakePrefixLength = 28;

// A value type.
struct Handshake {
  std::array<uint8_t, 8> reserved{};
  std::array<uint8_t, 20> info_hash{};
  std::array<uint8_t, 20> peer_id{};

  // BEP 5: the peer runs a DHT node (byte 7, bit 0x01).
  bool dht() const { return reserved[7] & 0x01; }
  // BEP 6: fast extension (byte 7, bit 0x04).
  bool fast() const { return reserved[7] & 0x04; }
  // BEP 52: the peer can upgrade to v2 (byte 7, bit 0x10).
  bool v2() const { return reserved[7] & 0x10; }
  // BEP 10: extension protocol (byte 5, bit 0x10).
  bool extensions() const { return reserved[5] & 0x10; }

  void set_dht(bool on) { Set(7, 0x01, on); }
  void set_fast(bool on) { Set(7, 0x04, on); }
  void set_v2(bool on) { Set(7, 0x10, on); }
  void set_extensions(bool on) { Set(5, 0x10, on); }

 private:
  void Set(int byte, uint8_t bit, bool on) {
    reserved[byte] = on ? (reserved[byte] | bit) : (reserved[byte] & ~bit);
  }
};

// The 68 bytes of `h`.
std::string EncodeHandshake(const Handshake& h);

// Parses 68 bytes. INVALID_ARGUMENT if the protocol string is not BitTorrent's.
// REQUIRES: bytes.size() >= kHandshakeLength.
absl::StatusOr<Handshake> ParseHandshake(std::string_view bytes);

// Checks the first kHandshakePrefixLength bytes (an incoming peer may be
// refused before it names its torrent). REQUIRES: bytes.size() >=
// kHandshakePrefixLength.
absl::Status CheckHandshakePrefix(std::string_view bytes);

}  // namespace shoal::wire

#endif  // SHOAL_WIRE_HANDSHAKE_H_
