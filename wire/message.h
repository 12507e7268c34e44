// The BitTorrent peer wire protocol's messages (BEP 3), with the fast extension
// (BEP 6), the extension protocol (BEP 10), the DHT port (BEP 5) and the v2
// hash messages (BEP 52).
//
// Sans-I/O: ParseMessage() takes whole messages off the front of a byte buffer,
// AppendMessage() encodes one onto a string. Parsed messages view the buffer
// (no copies), so handle them before the buffer changes.
//
//   std::string_view pending = ...;  // bytes received so far
//   for (;;) {
//     SHOAL_ASSIGN_OR_RETURN(std::optional<Message> m, ParseMessage(pending,
//     limits)); if (!m) break;  // need more bytes std::visit(handler, *m);
//   }
#ifndef SHOAL_WIRE_MESSAGE_H_
#define SHOAL_WIRE_MESSAGE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "absl/status/statusor.h"
#include "codec/sha.h"

namespace shoal::wire {

// Message IDs on the wire.
enum class MessageId : uint8_t {
  kChoke = 0,
  kUnchoke = 1,
  kInterested = 2,
  kNotInterested = 3,
  kHave = 4,
  kBitfield = 5,
  kRequest = 6,
  kPiece = 7,
  kCancel = 8,
  kPort = 9,
  kSuggest = 13,
  kHaveAll = 14,
  kHaveNone = 15,
  kReject = 16,
  kAllowedFast = 17,
  kExtended = 20,
  kHashRequest = 21,
  kHashes = 22,
  kHashReject = 23,
};

struct KeepAlive {};
struct Choke {};
struct Unchoke {};
struct Interested {};
struct NotInterested {};
struct Have {
  uint32_t piece = 0;
};
struct Bitfield {
  std::string_view
      bits;  // BEP 3 order: the high bit of the first byte is piece 0
};
// A block: request, cancel and reject carry the same fields.
struct BlockSpec {
  uint32_t piece = 0;
  uint32_t begin = 0;
  uint32_t length = 0;
  friend bool operator==(const BlockSpec&, const BlockSpec&) = default;
};
struct Request {
  BlockSpec block;
};
struct Cancel {
  BlockSpec block;
};
struct Reject {
  BlockSpec block;
};
struct Piece {
  uint32_t piece = 0;
  uint32_t begin = 0;
  std::string_view data;
};
struct Port {
  uint16_t port = 0;
};
struct Suggest {
  uint32_t piece = 0;
};
struct HaveAll {};
struct HaveNone {};
struct AllowedFast {
  uint32_t piece = 0;
};
// A BEP 10 extended message; id 0 is the extension handshake.
struct Extended {
  uint8_t id = 0;
  std::string_view payload;
};
// The common fields of BEP 52's hash request, hashes and hash reject.
struct HashSpec {
  codec::Sha256Digest pieces_root{};
  uint32_t base_layer = 0;
  uint32_t index = 0;
  uint32_t length = 0;
  uint32_t proof_layers = 0;
  friend bool operator==(const HashSpec&, const HashSpec&) = default;
};
struct HashRequest {
  HashSpec spec;
};
struct Hashes {
  HashSpec spec;
  std::string_view hashes;  // a multiple of 32 bytes
};
struct HashReject {
  HashSpec spec;
};
// A message whose ID this implementation does not know; BEP 3 says to ignore
// it.
struct Unknown {
  uint8_t id = 0;
};

using Message =
    std::variant<KeepAlive, Choke, Unchoke, Interested, NotInterested, Have,
                 Bitfield, Request, Piece, Cancel, Port, Suggest, HaveAll,
                 HaveNone, Reject, AllowedFast, Extended, HashRequest, Hashes,
                 HashReject, Unknown>;

struct ParseLimits {
  // The longest message accepted (length prefix excluded). Large enough for a
  // 16 KiB block, a bitfield of 8 million pieces and extension messages such as
  // a ut_metadata piece.
  uint32_t max_message_length = 1 << 20;
};

// If `buffer` starts with a complete message, removes it from the front and
// returns it; if it holds only part of one, returns nullopt and leaves it
// alone. INVALID_ARGUMENT (the peer should be disconnected) for a message
// longer than the limit or whose length does not fit its type, saying which.
absl::StatusOr<std::optional<Message>> ParseMessage(
    std::string_view& buffer, const ParseLimits& limits = {});

// Appends the encoding of `message` to `out`. Unknown messages encode as
// nothing.
void AppendMessage(const Message& message, std::string& out);

// Appends only the length prefix and header of a piece message whose `length`
// data bytes the caller sends next (so a block can go out without being copied
// into `out`).
void AppendPieceHeader(uint32_t piece, uint32_t begin, uint32_t length,
                       std::string& out);

// A short name for logs ("request", "hash reject", ...).
std::string_view MessageName(const Message& message);

}  // namespace shoal::wire

#endif  // SHOAL_WIRE_MESSAGE_H_
