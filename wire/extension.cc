#include "wire/extension.h"

#include "absl/strings/str_cat.h"
#include "codec/bdecode.h"
#include "codec/bencode.h"

namespace shoal::wire {
namespace {

namespace bencode = codec::bencode;

// Extension messages are small: keep the decoder's limits tight.
codec::BdecodeOptions SmallMessageLimits(bool trailing) {
  codec::BdecodeOptions o;
  o.max_depth = 8;
  o.max_tokens = 4096;
  o.max_string_length = 64 * 1024;
  o.allow_trailing_bytes = trailing;
  return o;
}

}  // namespace

std::string EncodeExtensionHandshake(const ExtensionHandshake& h) {
  bencode::Dict m;
  for (const auto& [name, id] : h.m) m[name] = int64_t{id};
  bencode::Dict d;
  d["m"] = std::move(m);
  if (!h.client.empty()) d["v"] = h.client;
  if (h.listen_port) d["p"] = int64_t{*h.listen_port};
  if (h.reqq) d["reqq"] = *h.reqq;
  if (!h.yourip.empty()) d["yourip"] = h.yourip;
  if (h.metadata_size) d["metadata_size"] = *h.metadata_size;
  if (h.upload_only) d["upload_only"] = int64_t{1};
  return bencode::Encode(bencode::Value(std::move(d)));
}

absl::StatusOr<ExtensionHandshake> ParseExtensionHandshake(
    std::string_view payload) {
  auto doc = codec::Bdecode(payload, SmallMessageLimits(false));
  if (!doc.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bad extension handshake: ", std::string(doc.status().message())));
  }
  codec::BNode root = doc->root();
  if (!root.is_dict())
    return absl::InvalidArgumentError(
        "extension handshake is not a dictionary");
  ExtensionHandshake h;
  if (codec::BNode m = root.Find("m")) {
    if (!m.is_dict())
      return absl::InvalidArgumentError(
          "extension handshake's m is not a dictionary");
    for (const codec::BEntry& e : m.dict_items()) {
      if (!e.value.is_int() || e.value.int_value() < 0 ||
          e.value.int_value() > 255)
        continue;
      h.m[std::string(e.key)] = static_cast<uint8_t>(e.value.int_value());
    }
  }
  if (auto v = root.FindString("v")) h.client = std::string(v->substr(0, 256));
  if (auto p = root.FindInt("p"); p && *p > 0 && *p < 65536)
    h.listen_port = static_cast<uint16_t>(*p);
  if (auto r = root.FindInt("reqq"); r && *r > 0) h.reqq = *r;
  if (auto ip = root.FindString("yourip");
      ip && (ip->size() == 4 || ip->size() == 16)) {
    h.yourip = std::string(*ip);
  }
  if (auto ms = root.FindInt("metadata_size"); ms && *ms > 0)
    h.metadata_size = *ms;
  if (auto uo = root.FindInt("upload_only")) h.upload_only = *uo != 0;
  return h;
}

std::string EncodeMetadataMessage(const MetadataMessage& m) {
  bencode::Dict d;
  d["msg_type"] = int64_t{static_cast<uint8_t>(m.type)};
  d["piece"] = int64_t{m.piece};
  if (m.type == MetadataMessageType::kData && m.total_size)
    d["total_size"] = *m.total_size;
  std::string out = bencode::Encode(bencode::Value(std::move(d)));
  if (m.type == MetadataMessageType::kData) out.append(m.data);
  return out;
}

absl::StatusOr<MetadataMessage> ParseMetadataMessage(std::string_view payload) {
  auto doc = codec::Bdecode(payload, SmallMessageLimits(true));
  if (!doc.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bad ut_metadata message: ", std::string(doc.status().message())));
  }
  codec::BNode root = doc->root();
  auto type = root.FindInt("msg_type");
  auto piece = root.FindInt("piece");
  if (!root.is_dict() || !type || !piece) {
    return absl::InvalidArgumentError(
        "ut_metadata message lacks msg_type or piece");
  }
  if (*type < 0 || *type > 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown ut_metadata msg_type ", *type));
  }
  if (*piece < 0 || *piece > (int64_t{1} << 20)) {
    return absl::InvalidArgumentError(
        absl::StrCat("ut_metadata piece ", *piece, " out of range"));
  }
  MetadataMessage m;
  m.type = static_cast<MetadataMessageType>(*type);
  m.piece = static_cast<uint32_t>(*piece);
  std::string_view rest = payload.substr(doc->consumed());
  if (m.type == MetadataMessageType::kData) {
    auto total = root.FindInt("total_size");
    if (!total || *total <= 0) {
      return absl::InvalidArgumentError(
          "ut_metadata data message lacks total_size");
    }
    if (rest.size() > kMetadataPieceSize) {
      return absl::InvalidArgumentError(
          "ut_metadata data message carries more than 16 KiB");
    }
    m.total_size = *total;
    m.data = rest;
  } else if (!rest.empty()) {
    return absl::InvalidArgumentError(
        "ut_metadata request or reject carries data");
  }
  return m;
}

}  // namespace shoal::wire
