#include "wire/message.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace shoal::wire {
namespace {

uint32_t ReadU32(const char* p) {
  return uint32_t{static_cast<uint8_t>(p[0])} << 24 |
         uint32_t{static_cast<uint8_t>(p[1])} << 16 |
         uint32_t{static_cast<uint8_t>(p[2])} << 8 |
         uint32_t{static_cast<uint8_t>(p[3])};
}

void PutU32(std::string& out, uint32_t v) {
  char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16),
               static_cast<char>(v >> 8), static_cast<char>(v)};
  out.append(b, 4);
}

void PutHeader(std::string& out, uint32_t payload_length, MessageId id) {
  PutU32(out, payload_length + 1);
  out.push_back(static_cast<char>(id));
}

BlockSpec ReadBlock(const char* p) {
  return {ReadU32(p), ReadU32(p + 4), ReadU32(p + 8)};
}

void PutBlock(std::string& out, MessageId id, const BlockSpec& b) {
  PutHeader(out, 12, id);
  PutU32(out, b.piece);
  PutU32(out, b.begin);
  PutU32(out, b.length);
}

HashSpec ReadHashSpec(const char* p) {
  HashSpec s;
  std::memcpy(s.pieces_root.data(), p, 32);
  s.base_layer = ReadU32(p + 32);
  s.index = ReadU32(p + 36);
  s.length = ReadU32(p + 40);
  s.proof_layers = ReadU32(p + 44);
  return s;
}

constexpr uint32_t kHashSpecSize = 48;

void PutHashSpec(std::string& out, MessageId id, const HashSpec& s,
                 uint32_t extra) {
  PutHeader(out, kHashSpecSize + extra, id);
  out.append(reinterpret_cast<const char*>(s.pieces_root.data()), 32);
  PutU32(out, s.base_layer);
  PutU32(out, s.index);
  PutU32(out, s.length);
  PutU32(out, s.proof_layers);
}

struct Encoder {
  std::string& out;
  void operator()(const KeepAlive&) { PutU32(out, 0); }
  void operator()(const Choke&) { PutHeader(out, 0, MessageId::kChoke); }
  void operator()(const Unchoke&) { PutHeader(out, 0, MessageId::kUnchoke); }
  void operator()(const Interested&) {
    PutHeader(out, 0, MessageId::kInterested);
  }
  void operator()(const NotInterested&) {
    PutHeader(out, 0, MessageId::kNotInterested);
  }
  void operator()(const Have& m) {
    PutHeader(out, 4, MessageId::kHave);
    PutU32(out, m.piece);
  }
  void operator()(const Bitfield& m) {
    PutHeader(out, static_cast<uint32_t>(m.bits.size()), MessageId::kBitfield);
    out.append(m.bits);
  }
  void operator()(const Request& m) {
    PutBlock(out, MessageId::kRequest, m.block);
  }
  void operator()(const Piece& m) {
    AppendPieceHeader(m.piece, m.begin, static_cast<uint32_t>(m.data.size()),
                      out);
    out.append(m.data);
  }
  void operator()(const Cancel& m) {
    PutBlock(out, MessageId::kCancel, m.block);
  }
  void operator()(const Port& m) {
    PutHeader(out, 2, MessageId::kPort);
    out.push_back(static_cast<char>(m.port >> 8));
    out.push_back(static_cast<char>(m.port));
  }
  void operator()(const Suggest& m) {
    PutHeader(out, 4, MessageId::kSuggest);
    PutU32(out, m.piece);
  }
  void operator()(const HaveAll&) { PutHeader(out, 0, MessageId::kHaveAll); }
  void operator()(const HaveNone&) { PutHeader(out, 0, MessageId::kHaveNone); }
  void operator()(const Reject& m) {
    PutBlock(out, MessageId::kReject, m.block);
  }
  void operator()(const AllowedFast& m) {
    PutHeader(out, 4, MessageId::kAllowedFast);
    PutU32(out, m.piece);
  }
  void operator()(const Extended& m) {
    PutHeader(out, 1 + static_cast<uint32_t>(m.payload.size()),
              MessageId::kExtended);
    out.push_back(static_cast<char>(m.id));
    out.append(m.payload);
  }
  void operator()(const HashRequest& m) {
    PutHashSpec(out, MessageId::kHashRequest, m.spec, 0);
  }
  void operator()(const Hashes& m) {
    PutHashSpec(out, MessageId::kHashes, m.spec,
                static_cast<uint32_t>(m.hashes.size()));
    out.append(m.hashes);
  }
  void operator()(const HashReject& m) {
    PutHashSpec(out, MessageId::kHashReject, m.spec, 0);
  }
  void operator()(const Unknown&) {}
};

absl::Status BadLength(std::string_view name, uint32_t got,
                       std::string_view want) {
  return absl::InvalidArgumentError(
      absl::StrCat("peer sent a ", std::string(name), " message of ", got,
                   " bytes (want ", std::string(want), ")"));
}

}  // namespace

void AppendPieceHeader(uint32_t piece, uint32_t begin, uint32_t length,
                       std::string& out) {
  PutHeader(out, 8 + length, MessageId::kPiece);
  PutU32(out, piece);
  PutU32(out, begin);
}

void AppendMessage(const Message& message, std::string& out) {
  std::visit(Encoder{out}, message);
}

absl::StatusOr<std::optional<Message>> ParseMessage(std::string_view& buffer,
                                                    const ParseLimits& limits) {
  if (buffer.size() < 4) return std::nullopt;
  const uint32_t length = ReadU32(buffer.data());
  if (length > limits.max_message_length) {
    return absl::InvalidArgumentError(
        absl::StrCat("peer sent a message of ", length, " bytes; the limit is ",
                     limits.max_message_length));
  }
  if (buffer.size() - 4 < length) return std::nullopt;
  if (length == 0) {
    buffer.remove_prefix(4);
    return Message(KeepAlive{});
  }
  const char* p = buffer.data() + 5;
  const uint32_t n = length - 1;  // payload bytes after the ID
  const auto id = static_cast<MessageId>(static_cast<uint8_t>(buffer[4]));
  auto exact = [&](std::string_view name, uint32_t want) -> absl::Status {
    if (n != want) return BadLength(name, length, absl::StrCat(want + 1));
    return absl::OkStatus();
  };
  std::optional<Message> m;
  switch (id) {
    case MessageId::kChoke:
    case MessageId::kUnchoke:
    case MessageId::kInterested:
    case MessageId::kNotInterested:
    case MessageId::kHaveAll:
    case MessageId::kHaveNone: {
      if (absl::Status s = exact("state", 0); !s.ok()) return s;
      switch (id) {
        case MessageId::kChoke:
          m = Choke{};
          break;
        case MessageId::kUnchoke:
          m = Unchoke{};
          break;
        case MessageId::kInterested:
          m = Interested{};
          break;
        case MessageId::kNotInterested:
          m = NotInterested{};
          break;
        case MessageId::kHaveAll:
          m = HaveAll{};
          break;
        default:
          m = HaveNone{};
          break;
      }
      break;
    }
    case MessageId::kHave:
    case MessageId::kSuggest:
    case MessageId::kAllowedFast: {
      if (absl::Status s = exact("have/suggest/allowed-fast", 4); !s.ok())
        return s;
      uint32_t piece = ReadU32(p);
      if (id == MessageId::kHave)
        m = Have{piece};
      else if (id == MessageId::kSuggest)
        m = Suggest{piece};
      else
        m = AllowedFast{piece};
      break;
    }
    case MessageId::kBitfield:
      m = Bitfield{std::string_view(p, n)};
      break;
    case MessageId::kRequest:
    case MessageId::kCancel:
    case MessageId::kReject: {
      if (absl::Status s = exact("request/cancel/reject", 12); !s.ok())
        return s;
      BlockSpec b = ReadBlock(p);
      if (id == MessageId::kRequest)
        m = Request{b};
      else if (id == MessageId::kCancel)
        m = Cancel{b};
      else
        m = Reject{b};
      break;
    }
    case MessageId::kPiece:
      if (n < 8) return BadLength("piece", length, "at least 9");
      m = Piece{ReadU32(p), ReadU32(p + 4), std::string_view(p + 8, n - 8)};
      break;
    case MessageId::kPort: {
      if (absl::Status s = exact("port", 2); !s.ok()) return s;
      m = Port{static_cast<uint16_t>(static_cast<uint8_t>(p[0]) << 8 |
                                     static_cast<uint8_t>(p[1]))};
      break;
    }
    case MessageId::kExtended:
      if (n < 1) return BadLength("extended", length, "at least 2");
      m = Extended{static_cast<uint8_t>(p[0]), std::string_view(p + 1, n - 1)};
      break;
    case MessageId::kHashRequest:
    case MessageId::kHashReject: {
      if (absl::Status s = exact("hash request/reject", kHashSpecSize); !s.ok())
        return s;
      HashSpec spec = ReadHashSpec(p);
      if (id == MessageId::kHashRequest)
        m = HashRequest{spec};
      else
        m = HashReject{spec};
      break;
    }
    case MessageId::kHashes:
      if (n < kHashSpecSize || (n - kHashSpecSize) % 32 != 0) {
        return BadLength("hashes", length, "49 plus a multiple of 32");
      }
      m = Hashes{ReadHashSpec(p),
                 std::string_view(p + kHashSpecSize, n - kHashSpecSize)};
      break;
    default:
      m = Unknown{static_cast<uint8_t>(id)};
      break;
  }
  buffer.remove_prefix(4 + length);
  return m;
}

std::string_view MessageName(const Message& message) {
  static constexpr std::string_view kNames[] = {
      "keep-alive",     "choke",        "unchoke",  "interested",
      "not interested", "have",         "bitfield", "request",
      "piece",          "cancel",       "port",     "suggest",
      "have all",       "have none",    "reject",   "allowed fast",
      "extended",       "hash request", "hashes",   "hash reject",
      "unknown"};
  static_assert(std::size(kNames) == std::variant_size_v<Message>);
  return kNames[message.index()];
}

}  // namespace shoal::wire
