#include "tracker/http_protocol.h"

#include <algorithm>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "codec/bdecode.h"
#include "tracker/tracker_url.h"

namespace shoal::tracker {
namespace {

using codec::BNode;

// The longest interval we take from a tracker; larger values are clamped
// (they only risk overflow later, never correctness).
constexpr int64_t kMaxIntervalSeconds = 7 * 24 * 3600;

absl::Status Malformed(std::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("tracker response: ", std::string(what)));
}

absl::StatusOr<codec::BDocument> Decode(std::string_view body,
                                        const TrackerLimits& limits) {
  if (body.size() > limits.max_response_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("tracker response: ", body.size(), " bytes exceeds the ",
                     limits.max_response_bytes, "-byte limit"));
  }
  codec::BdecodeOptions options;
  options.max_depth = 16;
  // A dict peer is ~5 tokens; leave room for unknown keys.
  options.max_tokens = static_cast<int64_t>(
      std::max<size_t>(limits.max_peers, limits.max_scrape_entries) * 16 +
      1024);
  options.max_string_length = limits.max_response_bytes;
  // Some trackers append a newline after the dictionary.
  options.allow_trailing_bytes = true;
  absl::StatusOr<codec::BDocument> doc = codec::Bdecode(body, options);
  if (!doc.ok()) {
    return Malformed(std::string(doc.status().message()));
  }
  if (!doc->root().is_dict()) return Malformed("not a dictionary");
  return doc;
}

// If `dict` has a "failure reason", the error to return.
absl::Status CheckFailure(BNode dict) {
  BNode failure = dict.Find("failure reason");
  if (!failure) return absl::OkStatus();
  std::string reason = failure.is_string()
                           ? std::string(failure.string_value().substr(0, 512))
                           : "(not a string)";
  return absl::FailedPreconditionError(
      absl::StrCat("tracker failure: ", reason));
}

// An optional non-negative integer under `key`.
absl::StatusOr<std::optional<int64_t>> OptionalCount(BNode dict,
                                                     std::string_view key) {
  BNode n = dict.Find(key);
  if (!n) return std::optional<int64_t>();
  if (!n.is_int()) {
    return Malformed(
        absl::StrCat("\"", std::string(key), "\" is not an integer"));
  }
  if (n.int_value() < 0) {
    return Malformed(absl::StrCat("\"", std::string(key), "\" is negative"));
  }
  return std::optional<int64_t>(n.int_value());
}

absl::StatusOr<std::optional<std::string>> OptionalString(
    BNode dict, std::string_view key) {
  BNode n = dict.Find(key);
  if (!n) return std::optional<std::string>();
  if (!n.is_string()) {
    return Malformed(
        absl::StrCat("\"", std::string(key), "\" is not a string"));
  }
  return std::optional<std::string>(std::string(n.string_value()));
}

absl::Status ParseDictPeers(BNode list, size_t max_peers,
                            std::vector<PeerEndpoint>& out) {
  for (BNode p : list.children()) {
    if (out.size() >= max_peers) break;
    if (!p.is_dict()) return Malformed("a \"peers\" entry is not a dictionary");
    std::optional<std::string_view> ip = p.FindString("ip");
    std::optional<int64_t> port = p.FindInt("port");
    if (!ip || !port) {
      return Malformed("a \"peers\" entry lacks a string ip or integer port");
    }
    if (*port <= 0 || *port > 65535) continue;
    std::optional<PeerEndpoint> e =
        PeerEndpoint::FromIpString(*ip, static_cast<uint16_t>(*port));
    if (e) out.push_back(*e);  // host names are not resolved
  }
  return absl::OkStatus();
}

}  // namespace

std::string BuildAnnounceUrl(std::string_view announce_url,
                             const AnnounceRequest& r) {
  std::string url(announce_url.substr(0, announce_url.find('#')));
  url.push_back(url.find('?') == std::string::npos ? '?' : '&');
  char key[9];
  std::snprintf(key, sizeof(key), "%08X", r.key);
  absl::StrAppend(&url, "info_hash=", PercentEncode(r.info_hash.AsStringView()),
                  "&peer_id=", PercentEncode(r.peer_id.AsStringView()),
                  "&port=", r.port, "&uploaded=", r.uploaded,
                  "&downloaded=", r.downloaded, "&left=", r.left,
                  "&corrupt=0&key=", key);
  if (r.event != TrackerEvent::kNone) {
    absl::StrAppend(&url, "&event=", std::string(EventName(r.event)));
  }
  if (r.numwant) absl::StrAppend(&url, "&numwant=", *r.numwant);
  url.append("&compact=1");
  if (r.ipv4) absl::StrAppend(&url, "&ipv4=", PercentEncode(*r.ipv4));
  if (r.ipv6) absl::StrAppend(&url, "&ipv6=", PercentEncode(*r.ipv6));
  if (r.tracker_id) {
    absl::StrAppend(&url, "&trackerid=", PercentEncode(*r.tracker_id));
  }
  return url;
}

absl::StatusOr<std::string> BuildScrapeUrl(
    std::string_view announce_url, std::span<const AnnounceHash> hashes) {
  SHOAL_ASSIGN_OR_RETURN(std::string url, ScrapeUrlFromAnnounce(announce_url));
  url = url.substr(0, url.find('#'));
  char sep = url.find('?') == std::string::npos ? '?' : '&';
  for (const AnnounceHash& h : hashes) {
    url.push_back(sep);
    absl::StrAppend(&url, "info_hash=", PercentEncode(h.AsStringView()));
    sep = '&';
  }
  return url;
}

absl::StatusOr<AnnounceResponse> ParseAnnounceResponse(
    std::string_view body, const TrackerLimits& limits) {
  SHOAL_ASSIGN_OR_RETURN(codec::BDocument doc, Decode(body, limits));
  BNode root = doc.root();
  SHOAL_RETURN_IF_ERROR(CheckFailure(root));
  AnnounceResponse out;
  SHOAL_ASSIGN_OR_RETURN(std::optional<int64_t> interval,
                         OptionalCount(root, "interval"));
  if (interval) {
    out.interval =
        std::chrono::seconds(std::min(*interval, kMaxIntervalSeconds));
  }
  SHOAL_ASSIGN_OR_RETURN(std::optional<int64_t> min_interval,
                         OptionalCount(root, "min interval"));
  if (min_interval) {
    out.min_interval =
        std::chrono::seconds(std::min(*min_interval, kMaxIntervalSeconds));
  }
  SHOAL_ASSIGN_OR_RETURN(out.complete, OptionalCount(root, "complete"));
  SHOAL_ASSIGN_OR_RETURN(out.incomplete, OptionalCount(root, "incomplete"));
  SHOAL_ASSIGN_OR_RETURN(out.tracker_id, OptionalString(root, "tracker id"));
  SHOAL_ASSIGN_OR_RETURN(out.warning_message,
                         OptionalString(root, "warning message"));
  if (out.tracker_id && out.tracker_id->size() > 256) {
    return Malformed("\"tracker id\" is longer than 256 bytes");
  }
  if (out.warning_message && out.warning_message->size() > 512) {
    out.warning_message->resize(512);
  }

  BNode peers = root.Find("peers");
  if (peers.is_string()) {
    SHOAL_ASSIGN_OR_RETURN(
        out.peers, ParseCompactPeers(peers.string_value(), AddressFamily::kV4,
                                     limits.max_peers));
  } else if (peers.is_list()) {
    SHOAL_RETURN_IF_ERROR(ParseDictPeers(peers, limits.max_peers, out.peers));
  } else if (peers) {
    return Malformed("\"peers\" is neither a string nor a list");
  }
  BNode peers6 = root.Find("peers6");
  if (peers6.is_string()) {
    SHOAL_ASSIGN_OR_RETURN(
        std::vector<PeerEndpoint> v6,
        ParseCompactPeers(peers6.string_value(), AddressFamily::kV6,
                          limits.max_peers - out.peers.size()));
    out.peers.insert(out.peers.end(), v6.begin(), v6.end());
  } else if (peers6) {
    return Malformed("\"peers6\" is not a string");
  }
  return out;
}

absl::StatusOr<std::vector<ScrapeEntry>> ParseScrapeResponse(
    std::string_view body, const TrackerLimits& limits) {
  SHOAL_ASSIGN_OR_RETURN(codec::BDocument doc, Decode(body, limits));
  BNode root = doc.root();
  SHOAL_RETURN_IF_ERROR(CheckFailure(root));
  BNode files = root.Find("files");
  if (!files) return Malformed("no \"files\" dictionary");
  if (!files.is_dict()) return Malformed("\"files\" is not a dictionary");
  std::vector<ScrapeEntry> out;
  for (const codec::BEntry& e : files.dict_items()) {
    if (out.size() >= limits.max_scrape_entries) {
      return absl::ResourceExhaustedError(
          absl::StrCat("tracker response: more than ",
                       limits.max_scrape_entries, " scrape entries"));
    }
    if (e.key.size() != 20) continue;
    if (!e.value.is_dict()) {
      return Malformed("a \"files\" entry is not a dictionary");
    }
    ScrapeEntry entry;
    entry.info_hash = AnnounceHash::FromBytes(e.key);
    SHOAL_ASSIGN_OR_RETURN(std::optional<int64_t> complete,
                           OptionalCount(e.value, "complete"));
    SHOAL_ASSIGN_OR_RETURN(std::optional<int64_t> downloaded,
                           OptionalCount(e.value, "downloaded"));
    SHOAL_ASSIGN_OR_RETURN(std::optional<int64_t> incomplete,
                           OptionalCount(e.value, "incomplete"));
    entry.stats.complete = complete.value_or(0);
    entry.stats.downloaded = downloaded.value_or(0);
    entry.stats.incomplete = incomplete.value_or(0);
    out.push_back(entry);
  }
  return out;
}

}  // namespace shoal::tracker
