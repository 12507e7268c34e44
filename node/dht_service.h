// DhtService: the node's two DHTs (public mainline and cluster) on the UDP
// socket of the listen port, driven by the network thread.
//
// Both are dht::DhtNode instances; the service reads every datagram off the
// socket and hands it to one of them: a query that carries "cn" goes to the
// cluster instance, one without it to the public instance (dropped when the
// public DHT is off), and a response or error to the instance that sent the
// query (DhtNode::ExpectsReply). Each instance keeps its node ID and routing
// table in the store's `state` column family ("dht/public", "dht/cluster"), so
// a restart keeps its place in the network.
//
//   DhtService::Options o;
//   o.public_routers = options.dht_routers;
//   o.cluster_bootstrap = options.bootstrap;
//   DhtService dht(io, udp_socket, store, o);  // on the network thread:
//   SHOAL_RETURN_IF_ERROR(dht.Start());
//   dht.Provide(DhtService::Network::kCluster, key, tcp_port);
//   dht.GetPeers(DhtService::Network::kCluster, key, [](auto peers) { ... });
//   ...
//   dht.Stop();
#ifndef SHOAL_NODE_DHT_SERVICE_H_
#define SHOAL_NODE_DHT_SERVICE_H_

// clang-format off
#include "node/asio.h"
// clang-format on

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "dht/dht_node.h"
#include "dht/node_id.h"
#include "node/options.h"
#include "store/chunk_store.h"

namespace shoal::node {

// Conversions between the DHT's sans-I/O endpoints and asio's. An IPv4
// address that arrives v4-mapped on an IPv6 socket becomes an IPv4 endpoint.
dht::Endpoint ToDhtEndpoint(const asio::ip::address& address, uint16_t port);
asio::ip::address ToAsioAddress(const dht::Endpoint& endpoint);

// Not thread-safe: every method, and the io_context that runs it, belongs to
// the network thread. Callbacks run on that thread.
class DhtService {
 public:
  using Key = std::array<uint8_t, 20>;

  struct Options {
    // Public DHT bootstrap routers and cluster bootstrap nodes. Hostnames are
    // resolved with asio's asynchronous resolver (never on the network
    // thread); IP literals are used at once.
    std::vector<HostPort> public_routers;
    std::vector<HostPort> cluster_bootstrap;
    bool public_enabled = true;
    // The cluster's network name, the "cn" key of every cluster message.
    std::string cluster_name = "shoal";
    // The store keys of the routing tables are "<state_prefix>/public" and
    // "<state_prefix>/cluster": a dual-stack node's IPv6 tables (BEP 32) are
    // "dht6/...".
    std::string state_prefix = "dht";
    // The cluster instance's node ID, instead of the saved or a random one: a
    // dual-stack node is one cluster node in both tables, so that a lookup
    // that finds it over both families counts it once.
    std::optional<dht::NodeId> cluster_id;
    // Authenticates every cluster message (dht/cluster_auth.h); unset: the
    // cluster DHT is open to anyone who knows its name.
    std::optional<std::array<uint8_t, 32>> cluster_key;
    // Nodes whose ID fails BEP 42 for their address stay out of the routing
    // tables.
    bool enforce_bep42 = false;
    // How often a provided key is announced again; below the peer TTL
    // (dht.peer_ttl_ms, 30 min) so records never lapse.
    std::chrono::milliseconds provider_reannounce{std::chrono::minutes(15)};
    // How soon an announce that no node acknowledged is tried again.
    std::chrono::milliseconds provider_retry{std::chrono::seconds(30)};
    std::chrono::milliseconds tick_interval{500};
    // How often the routing tables are saved (also at Stop).
    std::chrono::milliseconds save_interval{std::chrono::minutes(5)};
    // Tuning shared by both instances (k, alpha, timeouts, rate limits, peer
    // store limits). Its id, cluster_name and enforce_bep42 are ignored: the
    // service sets them.
    dht::DhtOptions dht;
  };

  enum class Network { kPublic, kCluster };

  struct Stats {
    uint64_t datagrams_in = 0;
    uint64_t oversized = 0;    // more than kMaxDatagram bytes
    uint64_t undecodable = 0;  // not a bencoded dict with "t" and "y"
    uint64_t unrouted = 0;     // a reply no instance waits for; public off
    uint64_t datagrams_out = 0;
    uint64_t send_dropped = 0;  // socket buffer full, or wrong family
  };

  // Larger datagrams are dropped unread: KRPC messages fit one Ethernet frame.
  static constexpr size_t kMaxDatagram = 1500;

  // REQUIRES: `socket` is open and bound, nothing else reads it while the
  // service runs, and io, socket and store outlive the service.
  DhtService(asio::io_context& io, asio::ip::udp::socket& socket,
             store::ChunkStore& store, Options options);
  // Stops the service if it runs.
  ~DhtService();
  DhtService(const DhtService&) = delete;
  DhtService& operator=(const DhtService&) = delete;

  // Loads each instance's node ID and routing table from the store (new
  // random IDs when absent or unreadable), starts reading the socket (and
  // sets it non-blocking: a send that would block is dropped, as UDP may),
  // starts the tick timer and bootstraps both instances. INVALID_ARGUMENT for
  // options that do not validate; FAILED_PRECONDITION if the socket is not
  // open or the service already runs. May be called again after Stop().
  // REQUIRES: not called from one of the service's callbacks.
  absl::Status Start();

  // Cancels the timers, the resolver and the socket's pending receive, saves
  // both routing tables, and completes every GetPeers/Announce still in
  // flight with an empty result (no peers, 0 acknowledged) before it returns.
  // No callback runs after it. Providing stops (Provide() again after a new
  // Start()). Idempotent; may be called from a callback.
  void Stop();

  bool running() const { return running_; }
  // Whether the socket can reach `e` (its address family; an IPv6 socket
  // carries IPv4 unless it is IPv6-only). Known once started.
  bool Carries(const dht::Endpoint& e) const {
    return e.is_v4() ? socket_v4_ : e.is_v6() && socket_v6_;
  }

  // An iterative get_peers lookup for `key` (a 20-byte info-hash or truncated
  // content ID). `done` gets the peers' endpoints, deduplicated, once the
  // lookup ends; empty if the network is off or the service is not running
  // (then `done` runs before GetPeers returns).
  // `found`, if set, gets the peers of each answer as it arrives (posted to
  // the io_context; not after Stop()), before `done` has them all.
  void GetPeers(
      Network net, const Key& key,
      std::function<void(std::vector<tcp::endpoint>)> done,
      std::function<void(std::vector<tcp::endpoint>)> found = nullptr);

  // A cluster get_peers lookup for `key` that also reports the nodes closest
  // to it that answered (closest first): what preheat picks its targets from.
  // Empty lists if the service is not running.
  void ClosestNodes(const Key& key,
                    std::function<void(std::vector<dht::NodeInfo> nodes,
                                       std::vector<tcp::endpoint> providers)>
                        done);
  // Asks cluster node `node` to fetch `content` (a 32-byte content ID) now
  // (sh_preheat); `done` gets its answer, or nullopt. Not running: nullopt.
  void Preheat(const dht::NodeInfo& node, std::string content,
               dht::DhtNode::PreheatCallback done);
  // How this node answers sh_preheat. Set before Start().
  // Datagrams of another protocol on the same socket (µTP): `take` sees each
  // datagram first and returns true for those it takes; `batch_done` runs
  // after each batch of datagrams read at once. Set before Start().
  void SetOtherProtocol(
      std::function<bool(const asio::ip::udp::endpoint&, std::string_view)>
          take,
      std::function<void()> batch_done) {
    other_take_ = std::move(take);
    other_batch_done_ = std::move(batch_done);
  }

  // Bootstrap states of each network: "bootstrapping" when it starts asking
  // its routers, "ready" when its table gains its first node, "empty" when
  // it loses its last. Set before Start().
  using StateCallback =
      std::function<void(Network net, const char* state, size_t nodes)>;
  void SetStateCallback(StateCallback cb) { state_cb_ = std::move(cb); }

  void SetPreheatHandler(dht::DhtNode::PreheatHandler h) {
    preheat_handler_ = std::move(h);
  }

  // One announce: a get_peers lookup, then announce_peer (implied_port) to
  // the closest nodes that gave a token. `done` gets the number of nodes that
  // acknowledged; 0 at once if the network is off or the service not running.
  void Announce(Network net, const Key& key, uint16_t port,
                std::function<void(int acknowledged)> done);

  // Announces `key` now and every provider_reannounce (sooner, every
  // provider_retry, while no node acknowledges) until StopProviding() or
  // Stop(). Providing a key again updates its port and announces at once.
  // Ignored unless running and the network is on.
  void Provide(Network net, const Key& key, uint16_t port);
  void StopProviding(Network net, const Key& key);
  size_t NumProviding() const { return providing_.size(); }

  // Nodes in the routing table of `net`; 0 when it is off or not started.
  size_t NumNodes(Network net) const;
  // The cluster table has a node, or a lookup (a bootstrap among them) is
  // under way, or a bootstrap name is being resolved.
  bool ClusterReachable() const;
  // Cluster messages dropped for a missing, bad or stale MAC.
  uint64_t Unauthenticated() const {
    return cluster_ ? cluster_->stats().unauthenticated : 0;
  }
  // The instance of `net`, for diagnostics and tests; null when it is off or
  // the service has never started.
  const dht::DhtNode* Instance(Network net) const;
  const Stats& stats() const { return stats_; }

 private:
  struct Provided {
    uint16_t port = 0;
    std::chrono::steady_clock::time_point next;
    uint64_t generation = 0;
    bool in_flight = false;
  };
  // A GetPeers or Announce whose `done` has not run yet.
  struct Request {
    std::function<void(std::vector<tcp::endpoint>)> peers_done;
    std::function<void(int)> announce_done;
  };

  dht::DhtNode::PreheatHandler preheat_handler_;
  StateCallback state_cb_;
  // Table sizes at the last tick, by network, for state_cb_.
  std::array<size_t, 2> last_nodes_{};
  void ReportStates();
  dht::DhtNode* Node(Network net) const;
  absl::Status CreateNodes();
  void SaveState();
  void Send(const dht::Endpoint& to, std::string bytes);
  void Receive();
  void OnDatagram(const asio::ip::udp::endpoint& from, size_t size);
  void ScheduleTick();
  void OnTick();
  void BootstrapAll();
  void Bootstrap(Network net, const std::vector<HostPort>& hosts);
  // Bootstraps `net` again, resolving its names anew, while its table is empty
  // (see rebootstrap_).
  void MaybeRebootstrap(Network net, std::chrono::steady_clock::time_point now);
  void AnnounceProvided(const std::pair<Network, Key>& entry);
  void FinishPeers(uint64_t request, const std::vector<dht::Endpoint>& peers);
  void FinishAnnounce(uint64_t request, int acknowledged);

  // Constant after construction.
  asio::ip::udp::socket& socket_;
  store::ChunkStore& store_;
  const Options options_;

  bool running_ = false;
  bool socket_v6_ = false;
  // An IPv6 socket that also carries IPv4 (v4-mapped): not IPV6_V6ONLY.
  bool socket_v4_ = true;
  // Handlers check that the generation they were started in is current, so a
  // handler that runs after Stop() (or after a Stop/Start) does nothing. The
  // shared_ptr is the liveness token: handlers that outlive the service hold
  // a weak_ptr to it.
  std::shared_ptr<uint64_t> generation_;
  std::unique_ptr<dht::DhtNode> public_;
  std::unique_ptr<dht::DhtNode> cluster_;
  asio::steady_timer tick_timer_;
  asio::ip::udp::resolver resolver_;
  // Room for any UDP datagram: µTP's may be larger than KRPC's limit.
  std::vector<char> datagram_ = std::vector<char>(65536);
  std::function<bool(const asio::ip::udp::endpoint&, std::string_view)>
      other_take_;
  std::function<void()> other_batch_done_;
  asio::ip::udp::endpoint sender_;
  std::chrono::steady_clock::time_point last_save_;
  // Host names among a network's bootstrap nodes are resolved again while its
  // routing table is empty, with a backoff from 1 s up to 60 s (a pod that
  // restarts comes back with a new address; a name may not resolve yet).
  struct Rebootstrap {
    std::chrono::steady_clock::time_point next;
    std::chrono::milliseconds backoff{1000};
  };
  std::array<Rebootstrap, 2> rebootstrap_;
  // Bootstrap names being resolved, by network.
  std::array<int, 2> resolving_{};
  std::map<std::pair<Network, Key>, Provided> providing_;
  uint64_t next_provide_generation_ = 1;
  std::map<uint64_t, Request> requests_;
  uint64_t next_request_ = 1;
  Stats stats_;
};

}  // namespace shoal::node

#endif  // SHOAL_NODE_DHT_SERVICE_H_
