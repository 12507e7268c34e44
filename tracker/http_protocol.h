// The HTTP tracker protocol (BEP 3, BEP 23, BEP 7, BEP 48) without I/O:
// building announce and scrape URLs, and parsing the bencoded responses.
//
//   std::string url = BuildAnnounceUrl("http://t.example/announce", request);
//   ... GET url, read the body ...
//   absl::StatusOr<AnnounceResponse> r = ParseAnnounceResponse(body, limits);
//
// Parsers treat the body as untrusted: they never crash, they bound the work
// by TrackerLimits, and they say what is wrong in the returned Status.
#ifndef SHOAL_TRACKER_HTTP_PROTOCOL_H_
#define SHOAL_TRACKER_HTTP_PROTOCOL_H_

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "tracker/announce.h"

namespace shoal::tracker {

// The announce URL for `request`: `announce_url` plus the query parameters
// info_hash, peer_id (both percent-encoded raw bytes), port, uploaded,
// downloaded, left, corrupt=0, key (8 hex digits), event (unless kNone),
// numwant (if set), compact=1 and trackerid (if set). Appends with '&' if the
// URL already has a query. Any fragment is dropped.
std::string BuildAnnounceUrl(std::string_view announce_url,
                             const AnnounceRequest& request);

// The scrape URL for `hashes`: ScrapeUrlFromAnnounce(announce_url) plus one
// info_hash parameter per hash. UNIMPLEMENTED if the tracker does not support
// scrape (BEP 48); INVALID_ARGUMENT for a malformed URL.
absl::StatusOr<std::string> BuildScrapeUrl(
    std::string_view announce_url, std::span<const AnnounceHash> hashes);

// Parses an announce response body. Returns:
//  - FAILED_PRECONDITION "tracker failure: <reason>" if the tracker sent a
//    "failure reason";
//  - INVALID_ARGUMENT for bodies that are not bencode, not a dictionary, or
//    hold a known key with the wrong type or an out-of-range value;
//  - RESOURCE_EXHAUSTED if the body exceeds limits.max_response_bytes.
// "peers" may be a compact string (BEP 23) or a list of dictionaries with
// "ip" and "port" (BEP 3; entries whose ip is not a numeric address are
// skipped); "peers6" is a compact IPv6 string (BEP 7). At most
// limits.max_peers peers are returned, IPv4 first.
absl::StatusOr<AnnounceResponse> ParseAnnounceResponse(
    std::string_view body, const TrackerLimits& limits);

// Parses a scrape response body ("files" maps 20-byte info-hashes to
// dictionaries with complete/downloaded/incomplete). Same error conventions
// as ParseAnnounceResponse; more than limits.max_scrape_entries files is
// RESOURCE_EXHAUSTED. Entries whose key is not 20 bytes are skipped.
absl::StatusOr<std::vector<ScrapeEntry>> ParseScrapeResponse(
    std::string_view body, const TrackerLimits& limits);

}  // namespace shoal::tracker

#endif  // SHOAL_TRACKER_HTTP_PROTOCOL_H_
