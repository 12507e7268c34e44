// What a client tells a tracker and what the tracker answers, independent of
// the transport (HTTP, BEP 3; UDP, BEP 15).
//
//   AnnounceRequest r;
//   r.info_hash = hashes.v1.value();
//   r.peer_id = my_id;
//   r.port = 6881;
//   r.left = bytes_missing;
//   r.event = TrackerEvent::kStarted;
//   ... a client sends it and returns an AnnounceResponse with peers.
#ifndef SHOAL_TRACKER_ANNOUNCE_H_
#define SHOAL_TRACKER_ANNOUNCE_H_

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/peer_endpoint.h"
#include "chunk/info_hash.h"

namespace shoal::tracker {

// The 20-byte peer ID this node presents. A value type.
struct PeerId {
  std::array<uint8_t, 20> bytes{};

  // REQUIRES: raw.size() == 20.
  static PeerId FromBytes(std::string_view raw);
  std::string_view AsStringView() const {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
  }
  friend bool operator==(const PeerId&, const PeerId&) = default;
};

// The announce "event" (BEP 3). kNone is a regular re-announce.
enum class TrackerEvent : uint8_t { kNone, kCompleted, kStarted, kStopped };

// "started", "completed", "stopped", or "" for kNone.
std::string_view EventName(TrackerEvent event);

// The info-hash a swarm is announced under: a v1 hash, or a v2 hash truncated
// to 20 bytes (BEP 52). Both are 20 bytes on the wire.
using AnnounceHash = chunk::InfoHashV1;

// One announce. A value type.
struct AnnounceRequest {
  AnnounceHash info_hash;
  PeerId peer_id;
  uint16_t port = 0;
  int64_t uploaded = 0;
  int64_t downloaded = 0;
  int64_t left = 0;
  TrackerEvent event = TrackerEvent::kNone;
  // How many peers we want; nullopt lets the tracker choose.
  std::optional<int32_t> numwant;
  // A random value that identifies this client across IP changes (BEP 3's
  // "key"; UDP's 32-bit key).
  uint32_t key = 0;
  // The "tracker id" the tracker sent last time, echoed back (HTTP only).
  std::optional<std::string> tracker_id;
  // A dual-stack client's addresses (BEP 7's "ipv4" and "ipv6", HTTP only):
  // an address, or "[v6]:port" / "v4:port" where the port is not `port`. The
  // tracker sees the connection's own address anyway; these tell it the
  // other family's.
  std::optional<std::string> ipv4;
  std::optional<std::string> ipv6;
};

// A tracker's successful answer to an announce. A value type.
struct AnnounceResponse {
  std::chrono::seconds interval{1800};
  std::optional<std::chrono::seconds> min_interval;
  std::optional<std::string> tracker_id;
  std::optional<std::string> warning_message;
  // Seeders and leechers, if the tracker says.
  std::optional<int64_t> complete;
  std::optional<int64_t> incomplete;
  // IPv4 and IPv6 peers, in the order the tracker gave them.
  std::vector<PeerEndpoint> peers;
};

// Swarm statistics from a scrape (BEP 48), or from an announce. A value type.
struct ScrapeStats {
  int64_t complete = 0;    // seeders
  int64_t downloaded = 0;  // completed downloads ever
  int64_t incomplete = 0;  // leechers
  friend bool operator==(const ScrapeStats&, const ScrapeStats&) = default;
};

// One scrape entry.
struct ScrapeEntry {
  AnnounceHash info_hash;
  ScrapeStats stats;
};

// Bounds on what we accept from a tracker (untrusted input). A value type.
struct TrackerLimits {
  // Largest HTTP response body (and HTTP header block) accepted.
  size_t max_response_bytes = 1 << 20;
  // Peers beyond this many in one response are ignored.
  size_t max_peers = 1000;
  // Scrape entries beyond this many are an error.
  size_t max_scrape_entries = 1000;
};

}  // namespace shoal::tracker

#endif  // SHOAL_TRACKER_ANNOUNCE_H_
