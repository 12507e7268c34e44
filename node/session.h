// The network side of a node: the peer port, the network thread, and the swarms
// of the content being fetched or served.
//
// One thread runs an io_context that owns every socket and every swarm (no
// locks on that state). Other threads (gRPC handlers) reach it through Fetch
// and Forget, which post work to it and wait for the answer.
#ifndef SHOAL_NODE_SESSION_H_
#define SHOAL_NODE_SESSION_H_

#include <array>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/ip_filter.h"
#include "base/thread_pool.h"
#include "chunk/content_id.h"
#include "node/asio.h"
#include "node/asio_swarm_env.h"
#include "node/content_io.h"
#include "node/content_swarm.h"
#include "node/dht_group.h"
#include "node/dht_service.h"
#include "node/events.h"
#include "node/lsd_service.h"
#include "node/options.h"
#include "node/piece_events.h"
#include "node/torrent_swarm.h"
#include "node/utp_socket.h"
#include "store/chunk_store.h"
#include "wire/mse.h"

namespace shoal::node {

struct SessionOptions {
  std::string client_name = "Shoal";
  // Where torrents are saved when the caller names no save path.
  std::filesystem::path default_save_path;
  // Open peer connections across every swarm, at most.
  int max_connections = 500;
  // Per torrent.
  int max_peers_per_torrent = 50;
  // NodeOptions::peer_retry_seconds.
  int peer_retry_seconds = 60;
  int upload_slots = 8;
  // Downloaded bytes all swarms together hold in memory
  // (NodeOptions::download_memory_bytes); 0: no bound.
  uint64_t download_memory_bytes = 32 << 20;
  // The public DHT's routers and the cluster DHT's bootstrap nodes.
  std::vector<HostPort> dht_routers;
  std::vector<HostPort> bootstrap;
  bool public_dht = true;
  // Peers never accepted or dialed (NodeOptions::ip_filter); null: none.
  std::shared_ptr<const IpFilter> ip_filter;
  // Torrents' outgoing connections (NodeOptions::encryption).
  Encryption encryption = Encryption::kPrefer;
  // Local Service Discovery for torrents (NodeOptions::lsd).
  bool lsd = true;
  // Torrents' peer transports (NodeOptions::utp, NodeOptions::tcp).
  bool utp = true;
  bool tcp = true;
  // The node's seeding limits (NodeOptions::share_ratio_limit and
  // seed_time_limit; 0: none).
  SeedLimits seed_limits{0.0, uint64_t{0}};
  // Torrents that download, and that seed, at once (0: no limit); the rest
  // wait in kQueued, in the order they were added (NodeOptions).
  int active_downloads = 3;
  int active_seeds = 5;
  // Authenticates the cluster DHT (dht/cluster_auth.h); unset: open.
  std::optional<std::array<uint8_t, 32>> cluster_key;
  // A fetch without peers looks for providers this often until it has peers.
  absl::Duration provider_lookup_interval = absl::Seconds(3);
};

// What to add. A value type.
struct AddTorrentParams {
  std::string torrent_bytes;        // a .torrent file, or
  std::string magnet;               // a magnet URI
  std::filesystem::path save_path;  // empty: the default
  bool paused = false;
  bool sequential = false;
  // Keep the pieces in the chunk store instead of files under save_path.
  bool in_store = false;
  // Peers to connect to, besides x.pe and trackers.
  std::vector<HostPort> peers;
};

// One node's state during a preheat. A value type.
struct PreheatStatus {
  std::string node;     // its peer address, "ip:port"
  std::string node_id;  // its cluster DHT ID, hex
  // "asked", "fetching", "complete", "failed", "busy" (it fetches too many
  // contents for preheats already) or "unreachable" (no answer yet).
  std::string state;
  int64_t done = 0;  // pieces held, or a directory's files
  int64_t total = 0;
};

// Thread-safe: public methods may be called from any thread.
class Session {
 public:
  Session(store::ChunkStore& store, ThreadPool& pool, SessionOptions options);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Binds the peer port on each address of `listen` (at most one IPv4 and
  // one IPv6: TCP, and UDP for the DHT and µTP), starts the network thread
  // and adds again the torrents an earlier run had. Returns the addresses as
  // bound. A port 0 after the first address reuses the first's port when it
  // is free there. UNAVAILABLE if a port is taken; INVALID_ARGUMENT for a
  // host that is not an IP address. The IPv6 wildcard as a second address is
  // skipped with a warning on a host without IPv6 (and only then).
  absl::StatusOr<std::vector<HostPort>> Start(
      const std::vector<HostPort>& listen);

  // Starts (or joins) fetching `id` from `peers` (their listen addresses) and
  // returns the events readers wait on. Content already complete locally
  // returns events with every piece.
  // Bytes [offset, offset + length) are fetched first, in order.
  // A directory's ID fetches its dict only (the directory's record is then
  // stored, and the events report metadata with no pieces). With `directory`,
  // `id` is one of that directory's files: its providers are looked up under
  // the directory's ID, and the node provides the directory once it holds
  // every file.
  absl::StatusOr<std::shared_ptr<PieceEvents>> Fetch(
      const chunk::ContentId& id, const std::vector<HostPort>& peers,
      uint64_t offset = 0, uint64_t length = UINT64_MAX,
      std::optional<chunk::ContentId> directory = std::nullopt);

  // Saves every torrent's resume data, closes every connection and stops the
  // network thread. Work the hashing pool still holds may post to the
  // io_context afterwards; it is never run. Idempotent.
  void Stop();

  // Drops the swarm of `id` (its content was removed) and stops providing it.
  void Forget(const chunk::ContentId& id);
  void Forget(const std::vector<chunk::ContentId>& ids);

  // Announces this node as a provider of `id` in the cluster DHT (and keeps
  // announcing it until Forget).
  void Provide(const chunk::ContentId& id);
  // Looks up the providers of `id` in the cluster DHT ("ip:port" of their peer
  // ports): what the lookup found when it ended, or a second after it found
  // the first provider, whichever is sooner; DEADLINE_EXCEEDED if it found
  // none within `timeout`.
  absl::StatusOr<std::vector<std::string>> FindProviders(
      const chunk::ContentId& id, absl::Duration timeout);
  // Makes `count` more nodes hold `id` now: the nodes closest to it in the
  // cluster DHT that don't provide it are asked (sh_preheat) to fetch it, and
  // asked again every second for their state, which `update` gets whenever
  // it changes (it returns false to stop: the caller went away). OK once
  // `count` nodes are complete; DEADLINE_EXCEEDED after `timeout`;
  // FAILED_PRECONDITION if the cluster DHT knows no node to ask; CANCELLED
  // when `update` says stop. Blocks: not for the network thread.
  absl::Status Preheat(const chunk::ContentId& id, int count,
                       absl::Duration timeout,
                       const std::function<bool(const PreheatStatus&)>& update);

  // Routing table sizes (public, cluster), for node info.
  std::pair<size_t, size_t> DhtNodes();
  // False when the cluster DHT knows no node and no bootstrap is under way:
  // nobody could be asked for a provider, so a fetch by ID can fail at once.
  bool ClusterReachable();
  // Cluster-DHT messages dropped for a missing, bad or stale cluster MAC.
  uint64_t DhtUnauthenticated();

  // Number of open peer connections (for node info).
  size_t NumPeers();
  // A fetch of `id` under way: its download rate (bytes/s, averaged over
  // about five seconds) and, once that is known, the seconds left at it.
  // nullopt if the content is not being fetched.
  struct Transfer {
    double download_rate = 0;
    uint32_t num_peers = 0;  // connected
    std::optional<int64_t> eta_seconds;
  };
  std::optional<Transfer> ContentTransfer(const chunk::ContentId& id);

  // --- Torrents. IDs are the v2 info-hash in hex if the torrent has one, else
  // the v1; either hash of a hybrid finds it. NOT_FOUND for an unknown ID.
  // Adds a torrent: INVALID_ARGUMENT if the .torrent or magnet does not parse,
  // ALREADY_EXISTS if it is already added.
  absl::StatusOr<TorrentStatus> AddTorrent(const AddTorrentParams& params);
  // Streams bytes [offset, offset + length) of file `file` of a torrent to
  // `sink` (offsets within the file), from verified pieces; see
  // TorrentService.ReadFile for the errors.
  // With `wait` > 0, pieces not downloaded yet get deadlines (so they come
  // first) and are waited for; UNAVAILABLE once none has arrived for `wait`.
  absl::Status ReadTorrentFile(const std::string& id, size_t file,
                               uint64_t offset, std::optional<uint64_t> length,
                               const ReadSink& sink,
                               absl::Duration wait = absl::ZeroDuration());
  // What a reader needs to read a torrent's pieces itself (the gateway).
  // FAILED_PRECONDITION while paused or not checked; NOT_FOUND.
  absl::StatusOr<TorrentSwarm::ReadSource> TorrentReadSource(
      const std::string& id);
  // Gives bytes [offset, offset + length) of the torrent's byte stream piece
  // deadlines, as a reader of that range would.
  absl::Status WantTorrentRange(const std::string& id, uint64_t offset,
                                uint64_t length);
  std::vector<TorrentStatus> ListTorrents();
  absl::StatusOr<TorrentStatus> GetTorrent(const std::string& id);
  absl::StatusOr<std::vector<PeerInfo>> TorrentPeers(const std::string& id);
  absl::StatusOr<std::vector<TorrentFileInfo>> TorrentFiles(
      const std::string& id);
  // The number of file entries (pad files included): what SetFilePriorities
  // takes one priority for.
  absl::StatusOr<size_t> TorrentFileEntries(const std::string& id);
  absl::Status PauseTorrent(const std::string& id);
  absl::Status ResumeTorrent(const std::string& id);
  absl::Status RemoveTorrent(const std::string& id, bool delete_data);
  absl::Status SetFilePriorities(const std::string& id,
                                 std::vector<uint8_t> priorities);
  absl::Status SetSequential(const std::string& id, bool on);
  absl::Status SetSuperSeeding(const std::string& id, bool on);
  absl::Status RecheckTorrent(const std::string& id);
  absl::Status ReannounceTorrent(const std::string& id);
  // Rate limits in bytes/s (0: unlimited) of torrent `id`, or of the whole
  // node when `id` is empty. Kept across restarts.
  absl::Status SetRateLimits(const std::string& id, uint64_t download,
                             uint64_t upload);
  struct Limits {
    uint64_t download = 0;
    uint64_t upload = 0;
    SeedLimits seed;  // both set: what applies
  };
  // Sets the fields of `limits` that are present: of a torrent (kept in its
  // resume data), or with an empty ID of the node until it restarts (the
  // config's share_ratio_limit and seed_time_limit keep them).
  absl::Status SetSeedLimits(const std::string& id, const SeedLimits& limits);
  absl::StatusOr<Limits> GetRateLimits(const std::string& id);

  EventBus& events() { return events_; }

 private:
  using Key = std::string;  // a 20-byte handshake hash

  using SteadyClock = std::chrono::steady_clock;

  // Aborts the process when called off the network thread (once it runs):
  // the swarms and every map below belong to it. Network-thread-only
  // functions begin with it.
  void AssertNetworkThread() const;

  // Network thread only.
  ContentSwarm* SwarmFor(const chunk::ContentId& id);
  Swarm* SwarmForInfoHash(std::string_view info_hash);
  TorrentSwarm* FindTorrent(const std::string& id);
  absl::StatusOr<TorrentStatus> AddTorrentHere(const AddTorrentParams& params,
                                               bool persist);
  void LoadTorrents();
  void SaveTorrentIndex();
  void Register(Swarm* swarm);
  void Unregister(Swarm* swarm);
  wire::Handshake OurHandshake(const std::array<uint8_t, 20>& info_hash,
                               bool v2) const;
  // One address family's peer port: the TCP acceptor, and the UDP socket
  // that the DHT and µTP share.
  struct PeerPort {
    explicit PeerPort(asio::io_context& io) : acceptor(io), udp(io) {}
    tcp::acceptor acceptor;
    asio::ip::udp::socket udp;
    std::unique_ptr<UtpService> utp;
    HostPort bound;
    // The address families it reaches (an IPv6 wildcard that is not
    // IPv6-only carries IPv4 too, v4-mapped).
    bool carries_v4 = false;
    bool carries_v6 = false;
  };
  // Binds `port` to `address` (IPv6-only when `v6_only`); port 0 tries
  // `prefer_port` first. FAILED_PRECONDITION when the host lacks the
  // address family, UNAVAILABLE when the port is taken.
  absl::Status OpenPort(PeerPort& port, const HostPort& address, bool v6_only,
                        uint16_t prefer_port);
  // Starts the µTP service and the DHT of `port` (the dht_ group's member).
  void StartPortServices(PeerPort& port, size_t index);
  // The µTP service that reaches `to` (its address family), or null.
  UtpService* UtpFor(const tcp::endpoint& to) const;
  // A dual-stack node's addresses for trackers (BEP 7's ipv4= and ipv6=).
  void AdvertiseAddresses(tracker::AnnouncerOptions& ao) const;
  // Whether `e` is one of this node's own peer addresses.
  bool IsSelf(const tcp::endpoint& e) const;
  void Accept(PeerPort& port);
  // How incoming encrypted handshakes find our torrents.
  wire::MseReceiver::Options MseOptions();
  // The handshakes run on a tcp::socket or a UtpSocket (`Stream`).
  template <typename Stream>
  asio::awaitable<absl::Status> AcceptEncrypted(Stream& socket,
                                                std::string& buf,
                                                std::string& pending,
                                                wire::MseCiphers& ciphers,
                                                std::string& skey);
  template <typename Stream>
  asio::awaitable<absl::Status> ReadHandshake(Stream& socket,
                                              std::string& pending,
                                              const wire::MseCiphers& ciphers);
  template <typename Stream>
  asio::awaitable<absl::Status> DriveMse(Stream& socket,
                                         wire::MseHandshake& mse);
  template <typename Stream>
  asio::awaitable<absl::Status> ConnectEncrypted(Stream& socket, const Key& key,
                                                 const std::string& handshake,
                                                 bool rc4_only,
                                                 std::string& pending,
                                                 wire::MseCiphers& ciphers);
  template <typename Stream>
  asio::awaitable<void> Incoming(Stream socket);
  // Whether the ip_filter blocks `peer` (then it is neither accepted nor
  // dialed).
  bool Filtered(const tcp::endpoint& peer) const;
  // Dials a peer of swarm `key`: over µTP first for a torrent, then TCP.
  asio::awaitable<void> Outgoing(Key key, tcp::endpoint to);
  // What an outgoing connection says, whatever it runs over.
  struct OutgoingPlan {
    Key key;
    std::string handshake;      // plaintext
    Key mse_key;                // what names the torrent encrypted
    std::string mse_handshake;  // sent inside the encrypted one
    Encryption policy = Encryption::kOff;
  };
  enum class Dialed { kConnected, kUnreachable, kFailed, kGone };
  // One transport's attempt: connect, handshake (encrypted, then plaintext
  // if the policy allows), and hand the connection to the swarm.
  template <typename Stream>
  asio::awaitable<Dialed> Dial(const OutgoingPlan& plan, tcp::endpoint to);
  // REQUIRES: for µTP, UtpFor(to) is not null.
  template <typename Stream>
  Stream NewStream(const tcp::endpoint& to) {
    if constexpr (std::is_same_v<Stream, UtpSocket>) {
      return UtpSocket(*UtpFor(to));
    } else {
      return tcp::socket(io_);
    }
  }
  size_t TotalPeers() const;
  // Looks up providers of a content being fetched while it has few peers
  // (`round` counts the lookups so far).
  void LookupProviders(const chunk::ContentId& id,
                       SteadyClock::time_point until, int round = 0);
  // Answers sh_preheat: starts fetching `id` whole (every file of a
  // directory), and says how far it is.
  dht::PreheatAnswer OnPreheat(const chunk::ContentId& id);
  // Keeps a few files of a directory being preheated in flight.
  void PumpPreload(const chunk::ContentId& dir);
  // A file fetched for directory `dir` finished (or failed).
  void FileDone(const chunk::ContentId& dir);

  // Provides directory `id` if every file is held (checked on the pool a
  // little later, once per burst of completed files: a large directory's
  // check walks every file).
  void CheckDirectorySoon(const chunk::ContentId& id);
  // The public DHT for torrents: announce each running torrent and, while it
  // lacks peers, look for more. Runs every 15 s.
  void DhtTick();
  void DhtLookups(TorrentSwarm& t);
  // What a torrent's state change needs: DhtLookups, and an LSD announce.
  void Discover(TorrentSwarm& t);
  // Local Service Discovery (BEP 14) for torrents that are running and not
  // private: an announce when one starts or resumes, then every 5 minutes
  // (LsdTick checks every 15 s); peers announced for them are dialled.
  void LsdAnnounce(TorrentSwarm& t, bool now);
  void LsdTick();
  // The queue: in the order torrents were added, the first active_downloads
  // that download and the first active_seeds that seed run, the others wait
  // queued (a torrent still fetching metadata or checking runs and counts as
  // a download). After every add, remove, pause and resume, and each second
  // (downloads complete).
  void RunQueue();
  void QueueTick();
  void OnLsdPeer(const LsdService::InfoHash& hash, const PeerEndpoint& peer);
  // Runs `fn(torrent)` on the network thread; NOT_FOUND for an unknown ID.
  template <typename Fn>
  auto WithTorrent(const std::string& id, Fn fn);

  store::ChunkStore& store_;
  ThreadPool& pool_;
  const SessionOptions options_;
  std::array<uint8_t, 20> peer_id_{};
  EventBus events_;
  asio::io_context io_;
  // What the swarms run on (declared before them: it outlives them).
  AsioSwarmEnv swarm_env_{io_, pool_};
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  // The peer ports, the first listen address's first.
  std::vector<std::unique_ptr<PeerPort>> ports_;
  std::unique_ptr<DhtGroup> dht_;
  // Peers whose µTP connect went unanswered, and when: dialled over TCP only
  // for an hour (a lost burst of SYNs is not a verdict). Bounded: forgotten
  // when full.
  std::map<PeerEndpoint, std::chrono::steady_clock::time_point> no_utp_;
  std::unique_ptr<LsdService> lsd_;  // null when off or unavailable
  // The node's seeding limits, read by every torrent (network thread).
  std::shared_ptr<SeedLimits> node_seed_limits_;
  // Shared by every swarm (SessionOptions::download_memory_bytes); null: none.
  std::shared_ptr<DownloadBudget> download_budget_;
  // When each torrent (by ID) was last announced by LSD.
  absl::flat_hash_map<std::string, std::chrono::steady_clock::time_point>
      lsd_announced_;
  std::thread thread_;
  std::atomic<std::thread::id> network_thread_{};
  uint16_t port_ = 0;
  uint64_t next_key_ = 1;
  uint64_t next_queue_position_ = 0;
  int connecting_ = 0;
  std::shared_ptr<RateLimit> global_down_ = std::make_shared<RateLimit>();
  std::shared_ptr<RateLimit> global_up_ = std::make_shared<RateLimit>();
  // Every swarm by each handshake hash it answers to.
  absl::flat_hash_map<Key, Swarm*> by_key_;
  absl::flat_hash_map<Key, std::unique_ptr<ContentSwarm>> contents_;
  // By ID (hex).
  std::map<std::string, std::unique_ptr<TorrentSwarm>> torrents_;
  // Files being fetched for a directory: file ID -> directory ID.
  absl::flat_hash_map<chunk::ContentId, chunk::ContentId> directory_of_;
  // Nodes known to hold a directory (they served its dict), by its ID.
  absl::flat_hash_map<chunk::ContentId, std::vector<PeerEndpoint>>
      directory_peers_;
  // Directories being fetched whole for a preheat.
  struct Preload {
    std::shared_ptr<const chunk::Directory> dir;
    size_t next = 0;  // the next file to look at
    int in_flight = 0;
  };
  absl::flat_hash_map<chunk::ContentId, Preload> preloads_;
  // Contents this node started fetching for preheats (bounded).
  absl::flat_hash_set<chunk::ContentId> preheating_;
  // Directories with a completeness check pending.
  absl::flat_hash_set<chunk::ContentId> directories_to_check_;
};

}  // namespace shoal::node

#endif  // SHOAL_NODE_SESSION_H_
