#include "tracker/tracker_url.h"

#include <charconv>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace shoal::tracker {
namespace {

absl::Status Bad(std::string_view url, std::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("tracker url: ", std::string(why), ": \"",
                   std::string(url.substr(0, 200)), "\""));
}

}  // namespace

absl::StatusOr<TrackerUrl> ParseTrackerUrl(std::string_view url) {
  if (url.size() > 4096) return Bad(url.substr(0, 64), "too long");
  for (char c : url) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) return Bad(url, "control character or space");
  }
  TrackerUrl out;
  size_t colon = url.find("://");
  if (colon == std::string_view::npos) return Bad(url, "no scheme");
  std::string scheme = absl::AsciiStrToLower(std::string(url.substr(0, colon)));
  uint16_t default_port = 0;
  if (scheme == "http") {
    out.scheme = TrackerUrl::Scheme::kHttp;
    default_port = 80;
  } else if (scheme == "https") {
    out.scheme = TrackerUrl::Scheme::kHttps;
    default_port = 443;
  } else if (scheme == "udp") {
    out.scheme = TrackerUrl::Scheme::kUdp;
  } else {
    return Bad(url, "unsupported scheme");
  }
  std::string_view rest = url.substr(colon + 3);
  if (size_t hash = rest.find('#'); hash != std::string_view::npos) {
    rest = rest.substr(0, hash);
  }
  size_t path_start = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, path_start);
  std::string_view target =
      path_start == std::string_view::npos ? "" : rest.substr(path_start);
  if (authority.find('@') != std::string_view::npos) {
    return Bad(url, "user info is not supported");
  }
  std::string_view host;
  std::string_view port_text;
  if (!authority.empty() && authority[0] == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return Bad(url, "unclosed '['");
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return Bad(url, "junk after ']'");
      port_text = after.substr(1);
      if (port_text.empty()) return Bad(url, "empty port");
    }
  } else {
    size_t c = authority.rfind(':');
    host = authority.substr(0, c);
    if (c != std::string_view::npos) {
      port_text = authority.substr(c + 1);
      if (port_text.empty()) return Bad(url, "empty port");
    }
  }
  if (host.empty()) return Bad(url, "empty host");
  if (host.find(':') != std::string_view::npos && authority[0] != '[') {
    return Bad(url, "IPv6 host needs brackets");
  }
  out.host = std::string(host);
  if (!port_text.empty()) {
    unsigned value = 0;
    auto [p, ec] = std::from_chars(port_text.data(),
                                   port_text.data() + port_text.size(), value);
    if (ec != std::errc() || p != port_text.data() + port_text.size() ||
        value == 0 || value > 65535) {
      return Bad(url, "bad port");
    }
    out.port = static_cast<uint16_t>(value);
  } else if (default_port == 0) {
    return Bad(url, "udp tracker url needs a port");
  } else {
    out.port = default_port;
  }
  // A path that is missing, or starts with the query, becomes "/".
  if (target.empty() || target[0] == '?') out.target.push_back('/');
  out.target.append(target);
  return out;
}

std::string PercentEncode(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(bytes.size() * 3);
  for (char c : bytes) {
    auto u = static_cast<unsigned char>(c);
    if (absl::ascii_isalnum(u) || u == '-' || u == '.' || u == '_' ||
        u == '~') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 15]);
    }
  }
  return out;
}

absl::StatusOr<std::string> ScrapeUrlFromAnnounce(std::string_view url) {
  absl::StatusOr<TrackerUrl> parsed = ParseTrackerUrl(url);
  if (!parsed.ok()) return parsed.status();
  if (parsed->scheme == TrackerUrl::Scheme::kUdp) return std::string(url);
  // The path ends at the query (or fragment); the last '/' before it starts
  // the last component.
  size_t scheme_end = url.find("://") + 3;
  size_t path_end = url.find_first_of("?#", scheme_end);
  if (path_end == std::string_view::npos) path_end = url.size();
  size_t slash = url.rfind('/', path_end == 0 ? 0 : path_end - 1);
  if (slash == std::string_view::npos || slash < scheme_end) {
    return absl::UnimplementedError(
        "tracker does not support scrape (no path in announce url)");
  }
  std::string_view last = url.substr(slash + 1, path_end - slash - 1);
  if (!last.starts_with("announce")) {
    return absl::UnimplementedError(absl::StrCat(
        "tracker does not support scrape (BEP 48: last path component \"",
        std::string(last), "\" does not start with \"announce\")"));
  }
  std::string out(url.substr(0, slash + 1));
  out.append("scrape");
  out.append(url.substr(slash + 1 + 8));
  return out;
}

}  // namespace shoal::tracker
