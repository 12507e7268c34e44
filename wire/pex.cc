#include "wire/pex.h"

#include <arpa/inet.h>

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "codec/bdecode.h"
#include "codec/bencode.h"

namespace shoal::wire {
namespace {

namespace bencode = codec::bencode;

// The address bytes (4 or 16, network order) of a numeric IP, or nullopt.
std::optional<std::string> IpBytes(std::string_view ip) {
  if (ip.empty() || ip.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  const std::string text(ip);  // inet_pton needs a terminator
  unsigned char buf[16];
  if (inet_pton(AF_INET, text.c_str(), buf) == 1)
    return std::string(reinterpret_cast<char*>(buf), 4);
  if (inet_pton(AF_INET6, text.c_str(), buf) == 1)
    return std::string(reinterpret_cast<char*>(buf), 16);
  return std::nullopt;
}

// REQUIRES: bytes.size() is 4 or 16.
std::string IpText(std::string_view bytes) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(bytes.size() == 4 ? AF_INET : AF_INET6, bytes.data(), buf,
            sizeof(buf));
  return buf;
}

void AppendCompact(std::string& out, std::string_view address, uint16_t port) {
  out.append(address);
  out.push_back(static_cast<char>(port >> 8));
  out.push_back(static_cast<char>(port & 0xff));
}

// The compact strings of one direction (added or dropped), split by family.
struct CompactLists {
  std::string v4, v4_flags, v6, v6_flags;
};

CompactLists ToCompact(const std::vector<PexPeer>& peers) {
  CompactLists out;
  for (const PexPeer& p : peers) {
    std::optional<std::string> address = IpBytes(p.ip);
    if (!address || p.port == 0) continue;
    const bool v6 = address->size() == 16;
    AppendCompact(v6 ? out.v6 : out.v4, *address, p.port);
    (v6 ? out.v6_flags : out.v4_flags).push_back(static_cast<char>(p.flags));
  }
  return out;
}

// The string under `key`: empty if absent, INVALID_ARGUMENT if another type.
absl::StatusOr<std::string_view> OptionalString(const codec::BNode& dict,
                                                std::string_view key) {
  codec::BNode n = dict.Find(key);
  if (!n) return std::string_view();
  if (!n.is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat("ut_pex ", std::string(key), " is not a string"));
  }
  return n.string_value();
}

absl::Status CheckLength(std::string_view list, size_t entry,
                         std::string_view key) {
  if (list.size() % entry == 0) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("ut_pex ", std::string(key), " of ", list.size(), " bytes"));
}

// REQUIRES: compact.size() is a multiple of `entry` (6 or 18).
void AppendPeers(std::string_view compact, std::string_view flags, size_t entry,
                 std::vector<PexPeer>& out) {
  for (size_t i = 0; i < compact.size() / entry; ++i) {
    std::string_view e = compact.substr(i * entry, entry);
    const uint16_t port =
        static_cast<uint16_t>((static_cast<uint8_t>(e[entry - 2]) << 8) |
                              static_cast<uint8_t>(e[entry - 1]));
    if (port == 0) continue;
    PexPeer p;
    p.ip = IpText(e.substr(0, entry - 2));
    p.port = port;
    if (i < flags.size()) p.flags = static_cast<uint8_t>(flags[i]);
    out.push_back(std::move(p));
  }
}

}  // namespace

std::string EncodePex(const PexMessage& m) {
  CompactLists added = ToCompact(m.added);
  CompactLists dropped = ToCompact(m.dropped);
  bencode::Dict d;
  if (!added.v4.empty()) {
    d["added"] = std::move(added.v4);
    d["added.f"] = std::move(added.v4_flags);
  }
  if (!added.v6.empty()) {
    d["added6"] = std::move(added.v6);
    d["added6.f"] = std::move(added.v6_flags);
  }
  if (!dropped.v4.empty()) d["dropped"] = std::move(dropped.v4);
  if (!dropped.v6.empty()) d["dropped6"] = std::move(dropped.v6);
  return bencode::Encode(bencode::Value(std::move(d)));
}

absl::StatusOr<PexMessage> ParsePex(std::string_view payload,
                                    size_t max_peers) {
  codec::BdecodeOptions limits;
  limits.max_depth = 8;
  limits.max_tokens = 4096;
  // Room for max_peers IPv6 entries in one string, and never less than other
  // extension messages get (bounded so the product cannot overflow).
  limits.max_string_length = std::max<uint64_t>(
      64 * 1024, uint64_t{std::min<size_t>(max_peers, size_t{1} << 24)} * 18);
  auto doc = codec::Bdecode(payload, limits);
  if (!doc.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bad ut_pex message: ", std::string(doc.status().message())));
  }
  codec::BNode root = doc->root();
  if (!root.is_dict())
    return absl::InvalidArgumentError("ut_pex message is not a dictionary");

  std::string_view lists[6];
  static constexpr std::string_view kKeys[6] = {
      "added", "added.f", "added6", "added6.f", "dropped", "dropped6"};
  for (int i = 0; i < 6; ++i) {
    auto s = OptionalString(root, kKeys[i]);
    if (!s.ok()) return s.status();
    lists[i] = *s;
  }
  const auto [added, added_f, added6, added6_f, dropped, dropped6] = lists;
  for (absl::Status s :
       {CheckLength(added, 6, "added"), CheckLength(added6, 18, "added6"),
        CheckLength(dropped, 6, "dropped"),
        CheckLength(dropped6, 18, "dropped6")}) {
    if (!s.ok()) return s;
  }
  // Counted before port-0 entries are skipped: the limit bounds the work.
  if (added.size() / 6 + added6.size() / 18 > max_peers ||
      dropped.size() / 6 + dropped6.size() / 18 > max_peers) {
    return absl::InvalidArgumentError(
        absl::StrCat("ut_pex message with more than ", max_peers, " peers"));
  }
  PexMessage m;
  AppendPeers(added, added_f, 6, m.added);
  AppendPeers(added6, added6_f, 18, m.added);
  AppendPeers(dropped, {}, 6, m.dropped);
  AppendPeers(dropped6, {}, 18, m.dropped);
  return m;
}

bool PexTracker::Due(int64_t now_ms) const {
  return !last_sent_ms_ || now_ms - *last_sent_ms_ >= kIntervalMs;
}

std::optional<PexMessage> PexTracker::Update(
    const std::vector<PexPeer>& connected, int64_t now_ms) {
  if (!Due(now_ms)) return std::nullopt;
  std::map<Key, uint8_t> current;
  for (const PexPeer& p : connected) {
    std::optional<std::string> address = IpBytes(p.ip);
    if (!address || p.port == 0) continue;
    current.emplace(Key{std::move(*address), p.port}, p.flags);
  }
  PexMessage m;
  std::vector<Key> added, dropped;
  for (const auto& [key, flags] : current) {
    if (added.size() == kMaxAdded) break;
    if (told_.contains(key)) continue;
    added.push_back(key);
    m.added.push_back(PexPeer{IpText(key.first), key.second, flags});
  }
  for (const Key& key : told_) {
    if (dropped.size() == kMaxDropped) break;
    if (current.contains(key)) continue;
    dropped.push_back(key);
    m.dropped.push_back(PexPeer{IpText(key.first), key.second, 0});
  }
  if (added.empty() && dropped.empty()) return std::nullopt;
  for (Key& k : added) told_.insert(std::move(k));
  for (const Key& k : dropped) told_.erase(k);
  last_sent_ms_ = now_ms;
  return m;
}

}  // namespace shoal::wire
