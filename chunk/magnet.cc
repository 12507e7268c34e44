#include "chunk/magnet.h"

#include <algorithm>
#include <unordered_set>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "chunk/metainfo.h"

namespace shoal::chunk {
namespace {

absl::Status Invalid(std::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("magnet: ", std::string(what)));
}

char Lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool StartsWithNoCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (Lower(s[i]) != Lower(prefix[i])) return false;
  }
  return true;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = Lower(c);
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// Decodes %XX escapes and '+' (a space, as in HTML form encoding).
absl::StatusOr<std::string> PercentDecode(std::string_view s,
                                          std::string_view param) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out.push_back(' ');
    } else if (s[i] == '%') {
      int hi = i + 2 < s.size() ? HexValue(s[i + 1]) : -1;
      int lo = i + 2 < s.size() ? HexValue(s[i + 2]) : -1;
      if (hi < 0 || lo < 0) {
        return Invalid(absl::StrCat("invalid percent-escape in '",
                                    std::string(param), "' at character ", i));
      }
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// RFC 4648 base32 (BEP 9 allows it for btih), either case, no padding.
bool DecodeBase32(std::string_view s, std::string& out) {
  uint64_t buffer = 0;
  int bits = 0;
  for (char c : s) {
    int v;
    char u = Lower(c);
    if (u >= 'a' && u <= 'z') {
      v = u - 'a';
    } else if (c >= '2' && c <= '7') {
      v = c - '2' + 26;
    } else {
      return false;
    }
    buffer = (buffer << 5) | static_cast<uint64_t>(v);
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buffer >> bits) & 0xff));
    }
  }
  return true;
}

absl::Status ParseExactTopic(std::string_view xt, InfoHashes& hashes) {
  if (StartsWithNoCase(xt, "urn:btih:")) {
    std::string_view h = xt.substr(9);
    InfoHashV1 v1;
    if (h.size() == 40) {
      SHOAL_ASSIGN_OR_RETURN(v1, InfoHashV1::FromHex(h));
    } else if (h.size() == 32) {
      std::string raw;
      if (!DecodeBase32(h, raw) || raw.size() != 20) {
        return Invalid("btih info-hash is not valid base32");
      }
      v1 = InfoHashV1::FromBytes(raw);
    } else {
      return Invalid(absl::StrCat(
          "btih info-hash must be 40 hex or 32 base32 characters, got ",
          h.size()));
    }
    if (hashes.v1 && *hashes.v1 != v1) {
      return Invalid("two different btih info-hashes");
    }
    hashes.v1 = v1;
    return absl::OkStatus();
  }
  if (StartsWithNoCase(xt, "urn:btmh:")) {
    std::string_view h = xt.substr(9);
    if (h.size() < 4) return Invalid("btmh multihash is too short");
    if (!StartsWithNoCase(h, "1220")) {
      return Invalid(absl::StrCat("btmh multihash ",
                                  std::string(h.substr(0, 4)),
                                  " is not SHA-256 (1220)"));
    }
    absl::StatusOr<InfoHashV2> v2 = InfoHashV2::FromHex(h.substr(4));
    if (!v2.ok()) {
      return Invalid(
          absl::StrCat("btmh: ", std::string(v2.status().message())));
    }
    if (hashes.v2 && *hashes.v2 != *v2) {
      return Invalid("two different btmh info-hashes");
    }
    hashes.v2 = *v2;
    return absl::OkStatus();
  }
  return absl::OkStatus();  // another URN (ed2k, sha1, ...): not ours
}

absl::Status ParsePeer(std::string_view peer) {
  size_t colon;
  if (!peer.empty() && peer.front() == '[') {
    size_t close = peer.find(']');
    if (close == std::string_view::npos || close == 1 ||
        close + 1 >= peer.size() || peer[close + 1] != ':') {
      return Invalid(
          absl::StrCat("x.pe '", std::string(peer), "' is not [address]:port"));
    }
    colon = close + 1;
  } else {
    colon = peer.rfind(':');
    if (colon == std::string_view::npos || colon == 0) {
      return Invalid(
          absl::StrCat("x.pe '", std::string(peer), "' is not host:port"));
    }
  }
  std::string_view port = peer.substr(colon + 1);
  uint32_t p = 0;
  if (port.empty() || port.size() > 5) {
    return Invalid(
        absl::StrCat("x.pe '", std::string(peer), "' has an invalid port"));
  }
  for (char c : port) {
    if (c < '0' || c > '9') {
      return Invalid(
          absl::StrCat("x.pe '", std::string(peer), "' has an invalid port"));
    }
    p = p * 10 + static_cast<uint32_t>(c - '0');
  }
  if (p == 0 || p > 65535) {
    return Invalid(absl::StrCat("x.pe '", std::string(peer),
                                "' has a port outside 1-65535"));
  }
  return absl::OkStatus();
}

absl::StatusOr<uint32_t> ParseIndex(std::string_view s) {
  if (s.empty() || s.size() > 9) {
    return Invalid(absl::StrCat("so= index '", std::string(s),
                                "' is not a number below 10^9"));
  }
  uint32_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') {
      return Invalid(
          absl::StrCat("so= index '", std::string(s), "' is not a number"));
    }
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  return v;
}

absl::Status ParseSelectOnly(std::string_view so,
                             std::vector<FileIndexRange>& out) {
  if (so.empty()) return Invalid("so= is empty");
  while (true) {
    size_t comma = so.find(',');
    std::string_view item = so.substr(0, comma);
    size_t dash = item.find('-');
    FileIndexRange r;
    if (dash == std::string_view::npos) {
      SHOAL_ASSIGN_OR_RETURN(r.first, ParseIndex(item));
      r.last = r.first;
    } else {
      SHOAL_ASSIGN_OR_RETURN(r.first, ParseIndex(item.substr(0, dash)));
      SHOAL_ASSIGN_OR_RETURN(r.last, ParseIndex(item.substr(dash + 1)));
      if (r.first > r.last) {
        return Invalid(
            absl::StrCat("so= range '", std::string(item), "' runs backwards"));
      }
    }
    out.push_back(r);
    if (comma == std::string_view::npos) break;
    so.remove_prefix(comma + 1);
  }
  return absl::OkStatus();
}

// Appends `s` unless empty or already in `seen` (which mirrors `v`).
void AddUnique(std::vector<std::string>& v,
               std::unordered_set<std::string>& seen, std::string s) {
  if (s.empty() || !seen.insert(s).second) return;
  v.push_back(std::move(s));
}

void AppendEncoded(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
        (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
        c == '~' || c == ':' || c == '/') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 15]);
    }
  }
}

}  // namespace

absl::StatusOr<MagnetUri> ParseMagnetUri(std::string_view uri) {
  if (uri.size() > kMaxMagnetUriLength) {
    return Invalid(absl::StrCat("URI of ", uri.size(),
                                " bytes is longer than the limit of ",
                                kMaxMagnetUriLength));
  }
  if (!StartsWithNoCase(uri, "magnet:")) {
    return Invalid("not a magnet URI (it must start with 'magnet:?')");
  }
  std::string_view rest = uri.substr(7);
  if (rest.empty() || rest.front() != '?') {
    return Invalid("magnet URI has no query ('magnet:?...')");
  }
  rest.remove_prefix(1);
  size_t hash = rest.find('#');
  if (hash != std::string_view::npos) rest = rest.substr(0, hash);

  MagnetUri m;
  bool have_dn = false;
  std::unordered_set<std::string> seen_tr, seen_ws, seen_pe;
  while (!rest.empty()) {
    size_t amp = rest.find('&');
    std::string_view param = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view()
                                         : rest.substr(amp + 1);
    if (param.empty()) continue;
    size_t eq = param.find('=');
    std::string_view key = param.substr(0, eq);
    std::string_view raw_value = eq == std::string_view::npos
                                     ? std::string_view()
                                     : param.substr(eq + 1);
    // BEP 9 numbers repeated keys: xt.1, tr.2, ...
    std::string base(key);
    if (key != "x.pe") {
      size_t dot = key.find('.');
      if (dot != std::string_view::npos &&
          std::all_of(key.begin() + dot + 1, key.end(),
                      [](char c) { return c >= '0' && c <= '9'; })) {
        base = std::string(key.substr(0, dot));
      }
    }
    if (base != "xt" && base != "dn" && base != "tr" && base != "ws" &&
        base != "x.pe" && base != "so") {
      continue;
    }
    SHOAL_ASSIGN_OR_RETURN(std::string value, PercentDecode(raw_value, key));
    if (base == "xt") {
      SHOAL_RETURN_IF_ERROR(ParseExactTopic(value, m.info_hashes));
    } else if (base == "dn") {
      if (!have_dn) m.display_name = std::move(value);
      have_dn = true;
    } else if (base == "tr") {
      AddUnique(m.trackers, seen_tr, std::move(value));
    } else if (base == "ws") {
      AddUnique(m.web_seeds, seen_ws, std::move(value));
    } else if (base == "x.pe") {
      SHOAL_RETURN_IF_ERROR(ParsePeer(value));
      AddUnique(m.peers, seen_pe, std::move(value));
    } else {
      SHOAL_RETURN_IF_ERROR(ParseSelectOnly(value, m.select_only));
    }
  }
  if (m.info_hashes.empty()) {
    return Invalid(
        "no BitTorrent info-hash (xt=urn:btih:... or xt=urn:btmh:1220...)");
  }
  return m;
}

std::string ToMagnetUri(const MagnetUri& magnet) {
  std::string out = "magnet:?";
  bool first = true;
  auto param = [&](std::string_view key, std::string_view value) {
    if (!first) out.push_back('&');
    first = false;
    out.append(key);
    out.push_back('=');
    AppendEncoded(out, value);
  };
  if (magnet.info_hashes.v1) {
    param("xt", absl::StrCat("urn:btih:", magnet.info_hashes.v1->Hex()));
  }
  if (magnet.info_hashes.v2) {
    param("xt", absl::StrCat("urn:btmh:1220", magnet.info_hashes.v2->Hex()));
  }
  if (!magnet.display_name.empty()) param("dn", magnet.display_name);
  for (const auto& t : magnet.trackers) param("tr", t);
  for (const auto& w : magnet.web_seeds) param("ws", w);
  for (const auto& p : magnet.peers) param("x.pe", p);
  if (!magnet.select_only.empty()) {
    std::string so;
    for (const FileIndexRange& r : magnet.select_only) {
      if (!so.empty()) so.push_back(',');
      absl::StrAppend(&so, r.first);
      if (r.last != r.first) absl::StrAppend(&so, "-", r.last);
    }
    if (!first) out.push_back('&');
    absl::StrAppend(&out, "so=", so);
  }
  return out;
}

MagnetUri MagnetFromMetainfo(const Metainfo& metainfo) {
  MagnetUri m;
  m.info_hashes = metainfo.info_hashes;
  m.display_name = metainfo.name;
  std::unordered_set<std::string> seen_tr, seen_ws;
  for (const TrackerEntry& t : metainfo.trackers) {
    AddUnique(m.trackers, seen_tr, t.url);
  }
  for (const auto& w : metainfo.url_seeds) AddUnique(m.web_seeds, seen_ws, w);
  return m;
}

}  // namespace shoal::chunk
