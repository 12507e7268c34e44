#include "base/ip_filter.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace shoal {
namespace {

// (Debian's Abseil has its own string_view: these take std's.)
std::string_view Trim(std::string_view s) {
  const auto space = [](char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' ||
           c == '\v';
  };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

// A whole decimal number: nothing else in `s`.
template <typename T>
bool ParseNumber(std::string_view s, T& out) {
  if (s.empty()) return false;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size();
}

// An address as blocklists write it: IPv4 octets may have leading zeros
// ("001.009.096.105"), which inet_pton refuses.
std::optional<PeerEndpoint> ParseAddress(std::string_view text) {
  text = Trim(text);
  if (text.find(':') != std::string_view::npos)
    return PeerEndpoint::FromIpString(text, 0);
  PeerEndpoint e;
  e.family = AddressFamily::kV4;
  for (size_t i = 0; i < 4; ++i) {
    const size_t dot = i < 3 ? text.find('.') : text.size();
    if (dot == std::string_view::npos) return std::nullopt;
    const std::string_view part = text.substr(0, dot);
    uint32_t v = 0;
    if (part.size() > 3 || !ParseNumber(part, v) || v > 255)
      return std::nullopt;
    e.address[i] = static_cast<uint8_t>(v);
    text.remove_prefix(std::min(text.size(), dot + 1));
  }
  return e;
}

uint32_t V4(const PeerEndpoint& e) {
  return uint32_t{e.address[0]} << 24 | uint32_t{e.address[1]} << 16 |
         uint32_t{e.address[2]} << 8 | e.address[3];
}

// "A - B" (or "A-B"; IPv6 addresses hold no '-'). Empty `why` on success.
bool ParseRange(std::string_view text, PeerEndpoint& first, PeerEndpoint& last,
                std::string& why) {
  const size_t dash = text.find('-');
  if (dash == std::string_view::npos) {
    why = "no '-' between the range's ends";
    return false;
  }
  auto a = ParseAddress(text.substr(0, dash));
  auto b = ParseAddress(text.substr(dash + 1));
  if (!a || !b) {
    why = "an end of the range is not an IP address";
    return false;
  }
  if (a->family != b->family) {
    why = "the range's ends are of different families";
    return false;
  }
  if (b->address < a->address) {
    why = "the range ends before it starts";
    return false;
  }
  first = *a;
  last = *b;
  return true;
}

}  // namespace

IpFilter IpFilter::Parse(std::string_view text, ParseReport* report) {
  IpFilter f;
  ParseReport r;
  size_t line_no = 0;
  while (!text.empty()) {
    const size_t eol = std::min(text.find('\n'), text.size());
    std::string_view line = Trim(text.substr(0, eol));
    text.remove_prefix(std::min(text.size(), eol + 1));
    ++line_no;
    if (line.empty() || line.front() == '#' || line.substr(0, 2) == "//")
      continue;
    std::string why;
    PeerEndpoint first, last;
    bool ok = false;
    bool allowed = false;
    // eMule: "range , level , name". P2P: "name:range".
    const size_t comma = line.find(',');
    if (comma != std::string_view::npos &&
        line.substr(0, comma).find('-') != std::string_view::npos &&
        ParseRange(line.substr(0, comma), first, last, why)) {
      ok = true;
      const std::string_view rest = line.substr(comma + 1);
      const std::string_view level_text =
          Trim(rest.substr(0, std::min(rest.find(','), rest.size())));
      int level = 0;
      if (!level_text.empty() && !ParseNumber(level_text, level)) {
        ok = false;
        why = "the access level is not a number";
      }
      allowed = level > 127;
    } else {
      // The range follows the last ':' that leaves one (an IPv6 range holds
      // ':' itself: try each split from the left).
      for (size_t colon = line.find(':'); colon != std::string_view::npos;
           colon = line.find(':', colon + 1)) {
        std::string ignored;
        if (ParseRange(line.substr(colon + 1), first, last, ignored)) {
          ok = true;
          break;
        }
      }
      if (!ok && why.empty())
        why = comma != std::string_view::npos
                  ? "neither \"first - last , level , name\" nor "
                    "\"name:first-last\""
                  : "not \"name:first-last\"";
    }
    if (!ok) {
      if (r.malformed++ == 0)
        r.first_malformed = absl::StrCat("line ", line_no, ": ", why);
      continue;
    }
    if (allowed) continue;
    ++r.ranges;
    if (first.family == AddressFamily::kV4) {
      f.v4_.emplace_back(V4(first), V4(last));
    } else {
      f.v6_.emplace_back(first.address, last.address);
    }
  }
  f.Merge();
  if (report) *report = r;
  return f;
}

absl::StatusOr<IpFilter> IpFilter::Load(const std::filesystem::path& path,
                                        ParseReport* report) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    const std::string msg = absl::StrCat(
        "cannot read ip_filter ", path.string(), ": ", std::strerror(err));
    return err == EACCES ? absl::PermissionDeniedError(msg)
                         : absl::NotFoundError(msg);
  }
  std::ostringstream text;
  text << in.rdbuf();
  ParseReport r;
  IpFilter f = Parse(text.str(), &r);
  if (report) *report = r;
  if (r.ranges == 0 && r.malformed > 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ip_filter ", path.string(), " holds no rule: ", r.malformed,
        " malformed lines, the first at ", r.first_malformed));
  }
  return f;
}

void IpFilter::Merge() {
  auto merge = [](auto& v, auto next) {
    std::sort(v.begin(), v.end());
    size_t out = 0;
    for (size_t i = 0; i < v.size(); ++i) {
      if (out > 0 && v[i].first <= next(v[out - 1].second)) {
        v[out - 1].second = std::max(v[out - 1].second, v[i].second);
      } else {
        v[out++] = v[i];
      }
    }
    v.resize(out);
  };
  // Adjacent ranges merge too: the successor of an end, saturating.
  merge(v4_, [](uint32_t x) { return x == UINT32_MAX ? x : x + 1; });
  merge(v6_, [](V6 x) {
    for (int i = 15; i >= 0; --i)
      if (++x[i] != 0) return x;
    x.fill(0xff);
    return x;
  });
}

bool IpFilter::Blocked(const PeerEndpoint& address) const {
  auto in = [](const auto& v, const auto& key) {
    // The last range starting at or before `key`.
    auto it = std::upper_bound(
        v.begin(), v.end(), key,
        [](const auto& k, const auto& range) { return k < range.first; });
    return it != v.begin() && key <= std::prev(it)->second;
  };
  if (address.family == AddressFamily::kV4) return in(v4_, V4(address));
  // An IPv4 peer on an IPv6 socket (::ffff:a.b.c.d) obeys the IPv4 rules.
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0,    0,
                                          0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(address.address.data(), kMapped, 12) == 0) {
    PeerEndpoint v4;
    std::copy(address.address.begin() + 12, address.address.end(),
              v4.address.begin());
    if (in(v4_, V4(v4))) return true;
  }
  return in(v6_, address.address);
}

}  // namespace shoal
