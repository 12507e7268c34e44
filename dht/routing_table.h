// The Kademlia routing table: buckets of up to k nodes that split.
//
// Bucket i holds the nodes whose ID shares exactly i leading bits with ours;
// the last bucket holds every node that shares at least as many. When the last
// bucket (the one containing our own ID) is full, it splits; other full
// buckets keep their nodes and park newcomers in a replacement cache. Node
// liveness follows BEP 5: a node is good if it answered a query of ours in the
// last 15 minutes (or ever answered and queried us in the last 15 minutes),
// bad after `max_failures` queries in a row went unanswered, and questionable
// otherwise. Failed nodes are replaced from the cache.
//
//   RoutingTable table(my_id, /*k=*/8);
//   table.Heard({id, endpoint}, now_ms, Contact::kResponded);
//   std::vector<NodeInfo> closest = table.Closest(target, 8);
#ifndef SHOAL_DHT_ROUTING_TABLE_H_
#define SHOAL_DHT_ROUTING_TABLE_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "dht/krpc.h"
#include "dht/node_id.h"

namespace shoal::dht {

enum class NodeStatus : uint8_t { kGood, kQuestionable, kBad };

// How we heard from a node.
enum class Contact : uint8_t {
  kResponded,  // it answered one of our queries
  kQueried,    // it sent us a query
  kLoaded,     // from a saved table: not heard from yet
};

// A node in the table with its liveness record. A value type.
struct RoutingEntry {
  NodeInfo info;
  int64_t last_response_ms = -1;  // -1: never answered us
  int64_t last_query_ms = -1;     // -1: never queried us
  int64_t last_ping_ms = -1;      // our last liveness probe, -1: none
  int failures = 0;               // unanswered queries in a row
};

// Not thread-safe: one thread drives it.
class RoutingTable {
 public:
  static constexpr int64_t kGoodWindowMs = 15 * 60 * 1000;

  RoutingTable(const NodeId& own_id, int k, int max_failures = 2);
  RoutingTable(const RoutingTable&) = delete;
  RoutingTable& operator=(const RoutingTable&) = delete;

  const NodeId& own_id() const { return own_id_; }
  int k() const { return k_; }

  // Records contact with `node`: adds it if there is room (splitting the
  // bucket of our own ID, or replacing a bad node), else puts it in the
  // bucket's replacement cache. Our own ID is never added. Returns true if the
  // node is now in a bucket.
  bool Heard(const NodeInfo& node, int64_t now_ms, Contact contact);

  // Records that a query to the node with `id` at `endpoint` went unanswered
  // (after any retransmissions). The node is replaced at once if its bucket's
  // cache has a candidate; otherwise it turns bad after `max_failures` and
  // gives its slot to the next newcomer.
  void Failed(const NodeId& id, const Endpoint& endpoint);

  // Our probe of `id` was sent at `now_ms` (see NodesToPing()).
  void Pinged(const NodeId& id, int64_t now_ms);

  // The liveness of `entry` at `now_ms`.
  NodeStatus StatusOf(const RoutingEntry& entry, int64_t now_ms) const;

  // Up to `count` non-bad nodes closest to `target`, closest first.
  std::vector<NodeInfo> Closest(const NodeId& target, size_t count) const;

  // Questionable nodes not probed within the last `interval_ms`.
  std::vector<NodeInfo> NodesToPing(int64_t now_ms, int64_t interval_ms) const;

  // Random targets, one in each bucket that has not changed within
  // `idle_ms`; marks them refreshed at `now_ms`.
  std::vector<NodeId> BucketsToRefresh(int64_t now_ms, int64_t idle_ms,
                                       const std::function<uint64_t()>& random);
  // One random target in every bucket; marks them refreshed.
  std::vector<NodeId> AllRefreshTargets(
      int64_t now_ms, const std::function<uint64_t()>& random);

  // The entry for `id`, or nullptr.
  const RoutingEntry* Find(const NodeId& id) const;

  size_t num_buckets() const { return buckets_.size(); }
  // Nodes in buckets (not counting replacement caches).
  size_t size() const;
  size_t replacement_size() const;
  // The bucket `id` falls into.
  size_t BucketIndex(const NodeId& id) const;
  const std::vector<RoutingEntry>& bucket_nodes(size_t i) const {
    return buckets_[i].nodes;
  }

  // Every node in buckets and caches in a compact byte string (bencoded
  // dictionary: our id, "nodes" and "nodes6"), for the store.
  std::string Save() const;
  // Parses Save() output. Returns INVALID_ARGUMENT if malformed.
  static absl::StatusOr<std::vector<NodeInfo>> ParseSaved(
      std::string_view bytes);

 private:
  struct Bucket {
    std::vector<RoutingEntry> nodes;
    std::deque<RoutingEntry> replacements;
    int64_t last_changed_ms = 0;
  };
  void Split();
  RoutingEntry* FindMutable(const NodeId& id, size_t* bucket);
  static void Touch(RoutingEntry& e, int64_t now_ms, Contact contact);

  const NodeId own_id_;
  const int k_;
  const int max_failures_;
  std::vector<Bucket> buckets_;
};

}  // namespace shoal::dht

#endif  // SHOAL_DHT_ROUTING_TABLE_H_
