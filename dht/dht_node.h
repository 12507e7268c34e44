// DhtNode: a sans-I/O Kademlia node (BEP 5), for the public mainline DHT or
// Shoal's cluster DHT.
//
// The node does no I/O of its own: the owner feeds it datagrams with
// OnPacket(), calls Tick() now and then (every ~500 ms), and gives it a clock,
// a random source and a send function at construction. It serves ping,
// find_node, get_peers and announce_peer, and runs iterative lookups with
// alpha queries in flight that end when the k closest nodes it knows of have
// answered.
//
//   DhtOptions options;
//   options.id = NodeId::Random(random);
//   options.cluster_name = "shoal";  // cluster DHT: every message carries cn
//   auto node = DhtNode::Create(options, clock, random, send);
//   (*node)->Bootstrap({router});
//   (*node)->GetPeers(info_hash, [](const std::vector<Endpoint>& peers,
//                                   const std::vector<NodeWithToken>& closest,
//                                   const LookupStats& stats) { ... });
#ifndef SHOAL_DHT_DHT_NODE_H_
#define SHOAL_DHT_DHT_NODE_H_

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "dht/krpc.h"
#include "dht/node_id.h"
#include "dht/routing_table.h"

namespace shoal::dht {

// Configuration of one DHT instance. A value type; check with Validate().
struct DhtOptions {
  NodeId id;
  // Set for the cluster DHT: every message we send carries "cn" with this
  // name, and queries whose "cn" differs (or is absent) are dropped. Unset for
  // the public DHT, which drops queries that carry "cn".
  std::optional<std::string> cluster_name;
  // Set (cluster DHT only): every message we send is sealed with this key and
  // every message we receive must be (dht/cluster_auth.h); others are dropped
  // and counted in stats().unauthenticated.
  std::optional<std::array<uint8_t, 32>> cluster_key;
  // Unix time in seconds, for the timestamps of sealed messages; the system
  // clock if unset.
  std::function<int64_t()> unix_time;
  int k = 8;
  int alpha = 3;
  int64_t query_timeout_ms = 2'000;
  // A search for peers (get_peers without an announce: a fetch looking for
  // providers) stops waiting for a node that has not answered its query, nor
  // the one retransmission, for this long after that retransmission: the node
  // no longer holds up the lookup's end nor takes one of its alpha slots (a
  // late answer is still used). One lost datagram is forgiven; a dead node
  // among the k closest costs a lookup 3 s instead of the full 6 s of
  // timeouts and retries.
  int64_t lookup_stall_ms = 1'000;
  // Times an unanswered query is sent again (same transaction ID) before the
  // node counts as failed; UDP loses packets.
  int query_retries = 2;
  int64_t token_rotation_ms = 5 * 60 * 1000;
  int64_t peer_ttl_ms = 30 * 60 * 1000;
  int64_t bucket_refresh_ms = 15 * 60 * 1000;
  // How often a questionable node is pinged.
  int64_t ping_interval_ms = 5 * 60 * 1000;
  size_t max_peers_per_key = 200;
  size_t max_peers_total = 50'000;
  // The most peers one get_peers response carries (keeps it in one datagram).
  size_t max_values_per_response = 50;
  // Per-source-address token bucket for incoming queries.
  double queries_per_second_per_source = 20;
  double query_burst_per_source = 50;
  // If true, nodes whose ID fails BEP 42 for their address are served but
  // never enter the routing table.
  bool enforce_bep42 = false;
  // BEP 42 for ourselves: once this many distinct nodes report (the "ip" key
  // of their responses) the same external address, for which our ID is not
  // valid, the node takes a new ID valid for it (and rebuilds its table), so
  // that nodes enforcing BEP 42 keep us. 0 turns it off. Local and private
  // addresses never trigger it.
  int bep42_votes = 5;

  // INVALID_ARGUMENT if a count or duration is out of range.
  absl::Status Validate() const;
};

// A node that answered a get_peers, with the write token it gave us.
struct NodeWithToken {
  NodeInfo node;
  std::string token;
};

// A node's answer to sh_preheat. A value type.
struct PreheatAnswer {
  std::string state;  // "fetching", "complete" or "failed"
  int64_t done = 0;   // pieces, or a directory's files, held
  int64_t total = 0;
};

// Figures from one lookup.
struct LookupStats {
  int hops = 0;  // depth of the closest node that answered (1: from our table)
  int queries = 0;  // queries sent
};

// Not thread-safe: one thread drives it.
class DhtNode {
 public:
  using Clock = std::function<int64_t()>;  // milliseconds, monotonic
  using Random = std::function<uint64_t()>;
  using SendFn = std::function<void(const Endpoint&, std::string)>;
  // Up to k nodes that answered, closest to the target first.
  using FindNodeCallback =
      std::function<void(const std::vector<NodeInfo>&, const LookupStats&)>;
  using GetPeersCallback = std::function<void(const std::vector<Endpoint>&,
                                              const std::vector<NodeWithToken>&,
                                              const LookupStats&)>;
  // Peers a get_peers lookup just learned (new ones only), while it goes on.
  using PeersFoundCallback = std::function<void(const std::vector<Endpoint>&)>;
  // The number of nodes that acknowledged the announce.
  using AnnounceCallback = std::function<void(int acknowledged)>;
  // Answers sh_preheat for a 32-byte content ID (starting the fetch).
  using PreheatHandler = std::function<PreheatAnswer(std::string_view content)>;
  // The node's answer, or nullopt if it did not answer (or refused).
  using PreheatCallback =
      std::function<void(const std::optional<PreheatAnswer>&)>;

  // Returns INVALID_ARGUMENT if `options` do not validate.
  // REQUIRES: clock, random and send are callable and outlive the node.
  static absl::StatusOr<std::unique_ptr<DhtNode>> Create(DhtOptions options,
                                                         Clock clock,
                                                         Random random,
                                                         SendFn send);
  DhtNode(const DhtNode&) = delete;
  DhtNode& operator=(const DhtNode&) = delete;

  // Handles one datagram from `from`. Malformed or unwanted input is dropped
  // (counted in stats()); never fails.
  void OnPacket(const Endpoint& from, std::string_view bytes);

  // True if a reply from `from` with this transaction ID answers one of our
  // queries in flight. With two instances on one socket (public and cluster
  // DHT), the owner routes a response or error to the instance for which
  // this holds, and a query by its "cn" key.
  bool ExpectsReply(const Endpoint& from,
                    std::string_view transaction_id) const;

  // Times out queries, rotates tokens, expires stored peers, pings
  // questionable nodes and refreshes idle buckets. Call every ~500 ms.
  void Tick();

  // Asks `routers` (and any nodes already in the table, e.g. from
  // LoadState()) for our own neighbourhood, then refreshes every bucket.
  // While the routing table stays empty, Tick() repeats this every 30 s.
  void Bootstrap(const std::vector<Endpoint>& routers);

  // Iterative lookups. Callbacks run from OnPacket() or Tick() once the
  // lookup ends; they may start new lookups.
  void FindNode(const NodeId& target, FindNodeCallback callback);
  // `found`, if set, gets the peers of each answer as it arrives (from
  // OnPacket(); it must not start or end lookups): a lookup that has its
  // answer in its first reply may still wait seconds for nodes that do not
  // answer (a restarted node's saved table holds gone nodes).
  void GetPeers(const NodeId& info_hash, GetPeersCallback callback,
                PeersFoundCallback found = nullptr);
  // A get_peers lookup, then announce_peer to the k closest nodes that gave
  // a token. With implied_port, receivers use the UDP source port instead of
  // `port`.
  void Announce(const NodeId& info_hash, uint16_t port, bool implied_port,
                AnnounceCallback callback);

  // Cluster DHT only: how this node answers sh_preheat (unset: "method
  // unknown"), and asking node `id` at `to` to fetch `content` (32 bytes)
  // now. The callback runs from OnPacket() or Tick().
  void set_preheat_handler(PreheatHandler h) {
    preheat_handler_ = std::move(h);
  }
  void Preheat(const Endpoint& to, const NodeId& id, std::string content,
               PreheatCallback callback);

  // This node itself serves `info_hash` at `self` (its own address as peers
  // reach it): get_peers answers include it. In a small network the node may
  // be the closest to a key it provides, and nobody else would store it.
  void SetLocalPeer(const NodeId& info_hash, const Endpoint& self, bool on);

  // The routing table as a byte string to keep in the store.
  std::string SaveState() const;
  // Adds the nodes of a SaveState() string to the routing table as
  // questionable. Returns INVALID_ARGUMENT if `bytes` are malformed.
  absl::Status LoadState(std::string_view bytes);

  const NodeId& id() const { return options_.id; }
  const DhtOptions& options() const { return options_; }
  const RoutingTable& routing_table() const { return *table_; }
  // Lookups under way (bootstrap, refresh, get_peers, announce).
  size_t num_lookups() const { return lookups_.size(); }
  // Peers stored under `info_hash` (for tests and diagnostics).
  std::vector<Endpoint> StoredPeers(const NodeId& info_hash) const;
  size_t stored_peer_count() const { return total_peers_; }
  // The write token we would give `address` now.
  std::string TokenFor(std::string_view address) const;

  struct Stats {
    uint64_t packets_in = 0;
    uint64_t malformed = 0;
    uint64_t rate_limited = 0;
    uint64_t wrong_network = 0;    // cn mismatch
    uint64_t unauthenticated = 0;  // no or bad cluster MAC, or stale
    uint64_t queries_served = 0;
    uint64_t bad_tokens = 0;
    uint64_t timeouts = 0;
    uint64_t id_changes = 0;  // BEP 42: took an ID valid for our address
  };
  const Stats& stats() const { return stats_; }

 private:
  struct Candidate {
    enum class State : uint8_t { kNew, kInFlight, kDone, kFailed };
    NodeInfo node;
    State state = State::kNew;
    std::string token;
    int hops = 1;
  };
  struct Lookup {
    uint64_t id = 0;
    KrpcMethod method = KrpcMethod::kFindNode;
    NodeId target;
    std::vector<Candidate> candidates;  // sorted by distance to target
    absl::flat_hash_set<NodeId> seen;
    int in_flight = 0;
    int queries = 0;
    bool refresh_after = false;  // bootstrap: refresh all buckets when done
    std::vector<Endpoint> peers;
    absl::flat_hash_set<Endpoint> peer_set;
    FindNodeCallback find_callback;
    GetPeersCallback peers_callback;
    PeersFoundCallback found_callback;
    // Announce.
    bool announce = false;
    uint16_t port = 0;
    bool implied_port = false;
    AnnounceCallback announce_callback;
    int announce_outstanding = 0;
    int announce_acked = 0;
  };
  struct Pending {
    Endpoint to;
    std::optional<NodeId> id;  // unknown for bootstrap routers
    KrpcMethod method = KrpcMethod::kPing;
    int64_t sent_ms = 0;
    uint64_t lookup = 0;  // 0: none
    std::string bytes;    // for retransmission
    int attempts = 1;
    bool stalled = false;  // its lookup stopped waiting for it
  };
  struct StoredPeer {
    Endpoint endpoint;
    int64_t added_ms = 0;
  };
  struct RateBucket {
    double tokens = 0;
    int64_t last_ms = 0;
  };

  static constexpr size_t kCandidatesPerK = 8;
  static constexpr size_t kMaxRateSources = 65'536;

  DhtNode(DhtOptions options, Clock clock, Random random, SendFn send);

  void HandleQuery(const Endpoint& from, const KrpcMessage& m);
  void HandleReply(const Endpoint& from, const KrpcMessage& m);
  bool AllowQuery(const Endpoint& from, int64_t now);
  bool Bep42Ok(const NodeInfo& n) const;
  // A response from `voter` says our address is `ours`.
  void NoteExternalAddress(const Endpoint& voter, const Endpoint& ours);
  // The bytes of `m` as this instance sends it (cn; sealed with a key).
  std::string Encode(KrpcMessage m) const;
  int64_t UnixTime() const;
  void Send(const Endpoint& to, KrpcMessage m);
  std::string SendQuery(const Endpoint& to, std::optional<NodeId> id,
                        KrpcMessage m, uint64_t lookup);
  std::string MakeToken(std::string_view address, uint64_t secret) const;
  bool ValidToken(std::string_view token, std::string_view address) const;
  void StorePeer(const NodeId& info_hash, const Endpoint& peer, int64_t now);
  void ExpirePeers(int64_t now);

  Lookup& StartLookup(KrpcMethod method, const NodeId& target);
  void AddCandidate(Lookup& l, const NodeInfo& node, int hops);
  void Step(Lookup& l);
  void LookupReply(Lookup& l, const Pending& p, const KrpcMessage* reply);
  void FinishLookup(Lookup& l);
  void AnnounceReply(Lookup& l, bool acked);

  // Constant after construction.
  DhtOptions options_;  // options_.id changes once, see bep42_votes
  const Clock clock_;
  const Random random_;
  const SendFn send_;

  std::unique_ptr<RoutingTable> table_;
  // BEP 42: external address -> the nodes that reported it.
  std::map<std::string, std::set<Endpoint>> ip_votes_;
  bool id_settled_ = false;  // took (or kept) an ID valid for our address
  absl::flat_hash_map<std::string, Pending> pending_;
  // sh_preheat queries in flight, by transaction ID.
  absl::flat_hash_map<std::string, PreheatCallback> preheat_callbacks_;
  PreheatHandler preheat_handler_;
  uint32_t next_transaction_;
  std::map<uint64_t, std::unique_ptr<Lookup>> lookups_;
  uint64_t next_lookup_ = 1;

  std::vector<Endpoint> routers_;
  int64_t last_bootstrap_ms_ = 0;

  uint64_t secret_ = 0;
  uint64_t previous_secret_ = 0;
  int64_t last_rotation_ms_ = 0;
  int64_t last_maintenance_ms_ = 0;

  absl::flat_hash_map<NodeId, std::vector<StoredPeer>> peers_;
  absl::flat_hash_map<NodeId, Endpoint> local_peers_;
  size_t total_peers_ = 0;
  absl::flat_hash_map<std::string, RateBucket> rate_;
  Stats stats_;
};

}  // namespace shoal::dht

#endif  // SHOAL_DHT_DHT_NODE_H_
