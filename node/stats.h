// What the node has done since it started, counted where it happens: bytes
// moved to and from peers, pieces verified, fetches and their outcomes, DHT
// lookups. The metrics endpoint (api/metrics.cc) reads these; the events
// stream reports from the same call sites, so the two never disagree.
//
// One per process (NodeStats::Get()): shoald runs one node. Thread-safe:
// relaxed atomics, written from the network thread and the pool, read by a
// scrape.
#ifndef SHOAL_NODE_STATS_H_
#define SHOAL_NODE_STATS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>

namespace shoal::node {

enum class TrafficKind : uint8_t { kCdn, kTorrent };
inline constexpr std::array<std::string_view, 2> kTrafficKindNames = {
    "cdn", "torrent"};

// How a fetch of CDN content ended.
enum class FetchResult : uint8_t {
  kOk,        // complete and verified
  kNotFound,  // nobody provided it (or its metadata) in time
  kFailed,    // providers found, but they left or the store refused it
};
inline constexpr std::array<std::string_view, 3> kFetchResultNames = {
    "ok", "not_found", "failed"};

// A cumulative histogram with fixed bucket bounds (seconds).
class Histogram {
 public:
  static constexpr std::array<double, 12> kBounds = {
      0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};
  void Observe(double seconds) {
    size_t i = 0;
    while (i < kBounds.size() && seconds > kBounds[i]) ++i;
    counts_[i].fetch_add(1, std::memory_order_relaxed);
    sum_micros_.fetch_add(static_cast<uint64_t>(seconds * 1e6),
                          std::memory_order_relaxed);
  }
  // Per bucket (the last one: above every bound), not cumulative.
  uint64_t count(size_t bucket) const {
    return counts_[bucket].load(std::memory_order_relaxed);
  }
  double sum_seconds() const {
    return static_cast<double>(sum_micros_.load(std::memory_order_relaxed)) /
           1e6;
  }

 private:
  std::array<std::atomic<uint64_t>, kBounds.size() + 1> counts_{};
  std::atomic<uint64_t> sum_micros_{0};
};

struct NodeStats {
  struct PerKind {
    std::atomic<uint64_t> bytes_sent{0};      // piece payload to peers
    std::atomic<uint64_t> bytes_received{0};  // piece payload from peers
    std::atomic<uint64_t> pieces_verified{0};
    std::atomic<uint64_t> hash_failures{0};
    std::atomic<uint64_t> peers_banned{0};
  };
  std::array<PerKind, 2> by_kind;
  std::array<std::atomic<uint64_t>, 3> fetches{};
  Histogram fetch_seconds;
  // By DHT instance (public, cluster) and result (found providers or not).
  std::array<std::array<std::atomic<uint64_t>, 2>, 2> dht_lookups{};

  PerKind& kind(TrafficKind k) { return by_kind[static_cast<size_t>(k)]; }
  void FetchFinished(FetchResult r, double seconds) {
    fetches[static_cast<size_t>(r)].fetch_add(1, std::memory_order_relaxed);
    if (r == FetchResult::kOk) fetch_seconds.Observe(seconds);
  }

  static NodeStats& Get();
};

inline void Add(std::atomic<uint64_t>& c, uint64_t n) {
  c.fetch_add(n, std::memory_order_relaxed);
}

}  // namespace shoal::node

#endif  // SHOAL_NODE_STATS_H_
