// Tracker URLs: parsing "http://", "https://" and "udp://" announce URLs,
// percent-encoding of raw bytes for query strings, and BEP 48's rule for
// deriving a scrape URL from an announce URL.
//
//   absl::StatusOr<TrackerUrl> u = ParseTrackerUrl("udp://127.0.0.1:6969");
//   u->scheme == TrackerUrl::Scheme::kUdp; u->port == 6969;
//   ScrapeUrlFromAnnounce("http://t.example/x/announce.php?k=1")
//       == "http://t.example/x/scrape.php?k=1"
#ifndef SHOAL_TRACKER_TRACKER_URL_H_
#define SHOAL_TRACKER_TRACKER_URL_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace shoal::tracker {

// The parts of a tracker URL that a client needs. A value type.
struct TrackerUrl {
  enum class Scheme : uint8_t { kHttp, kHttps, kUdp };
  Scheme scheme = Scheme::kHttp;
  // Host name or address literal, without IPv6 brackets.
  std::string host;
  uint16_t port = 0;
  // Path and query ("/announce?x=1"); "/" if the URL has none. The fragment is
  // dropped.
  std::string target;
};

// Parses an absolute tracker URL. The port defaults to 80 (http) or 443
// (https); udp URLs must name one. INVALID_ARGUMENT for other schemes, user
// info ("user@host"), an empty host, a bad port, or control characters and
// spaces.
absl::StatusOr<TrackerUrl> ParseTrackerUrl(std::string_view url);

// Percent-encodes every byte except RFC 3986's unreserved characters
// (A-Z a-z 0-9 - . _ ~), with uppercase hex: "\x12\x34V" -> "%124V".
std::string PercentEncode(std::string_view bytes);

// BEP 48: if the text after the last '/' of the URL's path begins with
// "announce", replaces that word with "scrape" (query kept). UNIMPLEMENTED if
// it does not, which means the tracker does not support scrape. udp:// URLs
// are returned unchanged (BEP 15 scrapes through the same address).
absl::StatusOr<std::string> ScrapeUrlFromAnnounce(std::string_view url);

}  // namespace shoal::tracker

#endif  // SHOAL_TRACKER_TRACKER_URL_H_
