// Swarm: the BitTorrent engine for one torrent, shared by public torrents
// (TorrentSwarm: files under a save path, trackers) and CDN content
// (ContentSwarm: a canonical v2 torrent in the chunk store).
//
// What it does, per torrent: the peer wire protocol after the handshake (BEP 3,
// fast extension BEP 6, extension protocol BEP 10); the metadata of a magnet
// (ut_metadata, BEP 9, checked against the info-hashes); the v2 piece layers
// the metadata lacks (BEP 52 hash requests, checked against each file's pieces
// root) and serving hash requests; requesting blocks as the piece picker says,
// with a pipeline whose depth follows each peer's rate; verifying pieces
// (SHA-1 for v1, merkle for v2, both for hybrid) on the hashing pool and
// writing them through a PieceStorage; banning peers that send corrupt data;
// serving blocks to peers, with the choker (tit-for-tat, optimistic unchoke,
// seeding rotation; or never choking trusted cluster peers).
//
// A subclass supplies what differs: where pieces live and which pieces are
// held already (Prepare), how metadata is checked beyond its hash, and what
// happens on progress.
//
// Memory: a piece is buffered while its blocks arrive and until it is written.
// The bytes of pieces waiting to be hashed and written are bounded
// (SwarmOptions::max_write_back_bytes): above the bound no new blocks are
// requested, so a disk slower than the network slows the network down instead
// of growing memory. Across swarms, SwarmOptions::download_budget bounds what
// all downloads hold and have requested (node/download_budget.h).
//
// Sans-I/O: it touches no socket, timer, thread or random device. Connections
// are PeerLinks, and time (a tick a second), randomness and work off its
// thread come from a SwarmEnv (node/swarm_env.h), so that the node drives it
// with TCP and Asio and a test or a simulation with fakes.
//
// Lives on one thread (the node's network thread): every method must be called
// there.
#ifndef SHOAL_NODE_SWARM_H_
#define SHOAL_NODE_SWARM_H_

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "base/peer_endpoint.h"
#include "chunk/bitfield.h"
#include "chunk/choker.h"
#include "chunk/info_hash.h"
#include "chunk/merkle_hashes.h"
#include "chunk/metainfo.h"
#include "chunk/piece_picker.h"
#include "chunk/piece_verifier.h"
#include "node/blame_book.h"
#include "node/download_budget.h"
#include "node/events.h"
#include "node/layer_exchange.h"
#include "node/metadata_exchange.h"
#include "node/peer_list.h"
#include "node/piece_cache.h"
#include "node/range_deadlines.h"
#include "node/rate_limit.h"
#include "node/rate_meter.h"
#include "node/stats.h"
#include "node/super_seeder.h"
#include "node/swarm_env.h"
#include "store/piece_storage.h"
#include "wire/extension.h"
#include "wire/handshake.h"

namespace shoal::node {

struct SwarmOptions {
  // Peers we keep connections to at most.
  int max_peers = 50;
  // Ticks before a peer in the peer list is dialed again after its
  // connection went, and times its failures after a failed dial
  // (PeerList::Options retry_ticks and reconnect_ticks).
  uint64_t peer_retry_ticks = 60;
  // Cluster mode: every interested peer is unchoked at once and never choked.
  bool trusted_peers = false;
  // What the swarm's bytes count as in NodeStats.
  TrafficKind kind = TrafficKind::kTorrent;
  // Regular upload slots when peers are not trusted (the optimistic unchoke
  // comes on top).
  int upload_slots = 8;
  // Requests outstanding to one peer: from this, growing with its measured
  // rate, up to max_requests (and never above what the peer says it queues).
  int min_requests = 16;
  int max_requests = 500;
  // Seconds of a peer's measured rate kept requested from it.
  double request_queue_seconds = 2.0;
  // When > 0 and a link's round-trip time is known: requests outstanding to a
  // peer are at most what this rate (bytes/s) moves in two round trips plus
  // 10 ms (RequestQueue::Options::rtt_cover_rate).
  double request_rtt_cover_rate = 0;
  // A peer that unchoked us, holds requests and sends nothing for this long
  // is snubbed: its requests go to other peers.
  int snub_seconds = 20;
  // Pieces failed by a peer before it is banned.
  int ban_after_bad_pieces = 3;
  // Largest info dict we accept through ut_metadata.
  int64_t max_metadata_size = 32 << 20;
  // Bytes of complete pieces waiting to be hashed and written, at most (and
  // at least two pieces).
  size_t max_write_back_bytes = 16 << 20;
  // The node's bound on downloaded bytes in memory, shared by its swarms
  // (requested, arriving, waiting to be written); none if null.
  std::shared_ptr<DownloadBudget> download_budget;
  chunk::PickStrategy strategy = chunk::PickStrategy::kRarestFirst;
  // Super-seeding (BEP 16). Trusted swarms (fan-out): a swarm that holds
  // everything when it starts (an origin) reveals its pieces a few at a time
  // to each peer, each time the pieces revealed fewest times, so that it
  // sends each piece about once and the fetchers trade the rest (the next
  // piece is revealed as soon as the last one is sent; after the first
  // round, only pieces no peer holds). Torrents (SetSuperSeed): a seed shows
  // each peer one piece at a time, the next once another peer has announced
  // the last (node/super_seeder.h, strict mode).
  bool super_seed = false;
  // Cluster fan-out: a swarm that is not an origin rejects a peer's request
  // (fast extension) while more than max(upload_backlog_bytes,
  // upload_backlog_seconds x its upload rate) wait on its links to be sent;
  // the peer asks another holder for that piece until the next tick. 0: it
  // never rejects (and a rejection is only forgotten).
  size_t upload_backlog_bytes = 0;
  double upload_backlog_seconds = 0;
};

// The options of a CDN content's swarm (node/content_swarm.h) among cluster
// nodes, as the node runs it and the simulation tests it: trusted peers, an
// origin that super-seeds, and a short request pipeline (see
// request_queue_seconds).
SwarmOptions CdnSwarmOptions(int max_peers);

// One connected peer, for status displays. A value type.
struct PeerInfo {
  std::string address;  // ip:port
  std::string client;   // from the extension handshake, if it sent one
  bool incoming = false;
  bool seed = false;
  double progress = 0;  // fraction of the pieces it has
  bool am_choking = true;
  bool am_interested = false;
  bool peer_choking = true;
  bool peer_interested = false;
  bool snubbed = false;
  std::string transport;  // "tcp", "utp" or "http"
  bool encrypted = false;
  double download_rate = 0;  // bytes/s from it
  double upload_rate = 0;    // bytes/s to it
  uint64_t downloaded = 0;   // payload bytes from it
  uint64_t uploaded = 0;     // payload bytes to it
  uint32_t requests_out = 0;
};

class Swarm : public PeerLink::Handler {
 public:
  // Asks the session to connect to a peer's listen address for this swarm.
  using Connector = std::function<void(const PeerEndpoint&)>;

  // `env` outlives the swarm.
  Swarm(SwarmEnv& env, chunk::InfoHashes hashes, SwarmOptions options,
        std::string client_name, uint16_t listen_port);
  ~Swarm() override;
  Swarm(const Swarm&) = delete;
  Swarm& operator=(const Swarm&) = delete;

  const chunk::InfoHashes& hashes() const { return hashes_; }
  // The 20-byte hash our handshakes carry: the v1 info-hash if there is one,
  // else the truncated v2 one.
  std::array<uint8_t, 20> handshake_hash() const;
  // Every 20-byte hash peers may use to reach this swarm (two for a hybrid).
  std::vector<std::string> HandshakeKeys() const;

  bool has_metadata() const { return m_ != nullptr; }
  // Null before the metadata is known.
  const chunk::Metainfo* metainfo() const { return m_.get(); }
  // Every wanted piece is verified and stored.
  bool complete() const { return picker_ && picker_->Complete(); }
  // Downloading or seeding has begun (metadata, piece layers and the pieces
  // already held are known).
  bool ready() const { return picker_ != nullptr; }
  size_t num_peers() const;
  size_t num_seeds() const;
  // Whether the address (the port aside) is banned.
  bool IsBanned(const PeerEndpoint& a) const {
    return blame_.IsBanned(a.IpString());
  }
  // By PeerLink::ban_key (a web seed's URL).
  bool IsBannedKey(const std::string& key) const {
    return blame_.IsBanned(key);
  }
  std::vector<PeerInfo> Peers() const;
  // Payload bytes received from each peer ("ip:port") over the swarm's life,
  // gone peers included (past 256 of them, the rest as "others").
  std::vector<std::pair<std::string, uint64_t>> BytesPerPeer() const;

  // Totals, in payload bytes.
  uint64_t downloaded() const { return down_.total(); }
  uint64_t uploaded() const { return up_.total(); }
  double download_rate() const { return down_.rate(); }
  double upload_rate() const { return up_.rate(); }
  // Verified pieces and wanted pieces (priority > 0), by count and bytes.
  uint32_t pieces_have() const;
  uint64_t bytes_have() const;
  uint64_t bytes_wanted() const;
  uint8_t piece_priority(uint32_t piece) const {
    return picker_ ? picker_->Priority(piece) : 0;
  }
  // Where verified pieces are read from; null until the swarm is downloading.
  std::shared_ptr<store::PieceStorage> storage() const { return storage_; }
  const chunk::Bitfield* have() const {
    return picker_ ? &picker_->have() : nullptr;
  }

  void set_connector(Connector c) { connector_ = std::move(c); }
  // Our peer ID: with it, of two connections to the same peer the one its
  // opener with the greater ID made survives on both ends (libtorrent's rule).
  void set_own_peer_id(const std::array<uint8_t, 20>& id) { own_peer_id_ = id; }
  // Where the swarm's events go (node/events.h); null: nowhere.
  void set_event_bus(EventBus* bus) { bus_ = bus; }
  // The node's limits, which every connection also obeys.
  void set_global_limits(std::shared_ptr<RateLimit> down,
                         std::shared_ptr<RateLimit> up) {
    global_down_ = std::move(down);
    global_up_ = std::move(up);
  }
  // This swarm's limits in bytes/s (0: unlimited); connections open now
  // follow at once.
  void SetRateLimits(uint64_t download, uint64_t upload) {
    down_limit_->set_rate(download);
    up_limit_->set_rate(upload);
  }
  uint64_t download_limit() const { return down_limit_->rate(); }
  uint64_t upload_limit() const { return up_limit_->rate(); }
  // Adds peers to the swarm's peer list (node/peer_list.h) and dials those
  // it may (not connected, not banned, not waiting after a failure), within
  // max_peers: the highest BEP 40 priority first. The rest are dialed as
  // slots free, each tick.
  void ConnectTo(const std::vector<PeerEndpoint>& peers);

  // A connection the connector started did not come up: the peer's failure,
  // or (peer_fault false) ours, a node-wide limit: tried again in a while.
  void OnConnectFailed(const PeerEndpoint& peer, bool peer_fault = true);
  // Peers in the peer list (connected ones included).
  size_t num_known_peers() const { return known_.size(); }

  // Takes a connection whose handshake (`theirs`) is done.
  void AddPeer(std::shared_ptr<PeerLink> conn, const wire::Handshake& theirs,
               bool incoming);

  // Closes every connection; new ones are refused until Reopen().
  void Shutdown();
  void Reopen() { shut_ = false; }
  bool shut() const { return shut_; }

  void SetStrategy(chunk::PickStrategy s);
  // Super-seeding on or off (SwarmOptions::super_seed), while seeding: on, it
  // applies to peers that connect from then on; off, every peer is told of
  // every piece.
  void SetSuperSeed(bool on);
  bool super_seeding() const { return seeder_.has_value(); }
  // Piece priorities (0 = skip): applied now if downloading, else when it
  // starts.
  void SetPiecePriorities(std::vector<uint8_t> priorities);
  // Bytes [offset, offset + length) are wanted in order: a reader streams
  // them as they arrive. They get deadlines (picked first, in order); while
  // other fetchers are connected, only a window of 1 MiB (at least 4 pieces)
  // ahead of the first missing piece does, and the rest follow the strategy, so
  // that fetchers trade. Applied once the metadata is known.
  void WantRange(uint64_t offset, uint64_t length);

  // PeerLink::Handler
  void OnMessage(PeerLink& conn, const wire::Message& message) override;
  void OnClose(PeerLink& conn, const absl::Status& why) override;
  void OnWritable(PeerLink& conn) override;

 protected:
  // The metadata is known (from a .torrent, the store, or ut_metadata). Fetches
  // the piece layers it lacks, then calls Prepare().
  void SetMetadata(std::shared_ptr<chunk::Metainfo> m);
  // Prepare() is done: `storage` holds the pieces in `have` (verified).
  // Downloading and serving begin.
  void StartDownloading(std::shared_ptr<store::PieceStorage> storage,
                        const chunk::Bitfield& have);
  // Forgets what is held and calls Prepare() again (a recheck, or the store
  // lost data).
  void Restart();
  // The piece layer of each file (empty where none is known), for subclasses
  // that keep it.
  const std::vector<std::string>& piece_layers() const { return layers_; }
  const std::shared_ptr<chunk::PieceVerifier>& verifier() const {
    return verifier_;
  }
  const std::shared_ptr<chunk::Metainfo>& metainfo_ptr() const { return m_; }
  SwarmEnv& env() { return env_; }
  const std::shared_ptr<bool>& alive() const { return alive_; }
  const SwarmOptions& options() const { return options_; }

  // --- Hooks
  // Checks and parses an info dict received with ut_metadata, which hashes to
  // the info-hash already. Default: ParseInfoDict().
  virtual absl::StatusOr<chunk::Metainfo> ParseMetadata(
      const std::string& info_dict);
  // Metadata and every piece layer are known: find the pieces already held
  // (possibly asynchronously), then call StartDownloading().
  virtual void Prepare() = 0;
  // Where events go (peer_banned here; fetch and torrent events in the
  // subclasses); null: nowhere.
  EventBus* bus_ = nullptr;
  // BytesPerPeer()'s peers that are gone.
  absl::flat_hash_map<std::string, uint64_t> received_from_gone_;

  virtual void OnPieceHave(uint32_t /*piece*/) {}
  // Every wanted piece is held (after StartDownloading too, if it already was).
  virtual void OnComplete() {}
  // Storage failed (disk full, ...): the swarm has shut down.
  virtual void OnError(const absl::Status& /*status*/) {}
  // The last peer left before the download completed.
  virtual void OnNoPeers() {}
  // Once a second.
  virtual void OnTick() {}

 private:
  struct Peer;
  struct PartialPiece {
    // Not zero-filled: every byte is written by a block before the piece is
    // complete.
    std::unique_ptr<char[]> data;
    size_t size = 0;
    std::vector<uint64_t> senders;  // each peer that sent a block, once
  };

  Peer* Find(PeerLink& conn);
  void Drop(PeerLink& conn, const absl::Status& why);
  void Ban(Peer& p, const std::string& why);
  // Closes the connection when we hold every piece and it wants nothing (a
  // seed, or upload_only).
  void CloseIfBothSeeds(Peer& p);
  // BEP 21: we want nothing more (every wanted piece held) and are not an
  // origin hiding what it holds.
  bool upload_only() const { return complete() && !seeder_; }
  // Tells `p` (if it speaks the upload_only message) that upload_only()
  // changed since it was last told.
  void SyncUploadOnly(Peer& p);
  std::vector<Peer*> LivePeers();
  void SendHello(Peer& p);
  // One second passed.
  void Tick();
  void Rechoke();

  // Metadata and hashes.
  void MaybeRequestMetadata(Peer& p);
  void OnMetadataMessage(Peer& p, std::string_view payload);
  // PEX (BEP 11): peers learn peers from peers; never for private torrents.
  bool private_torrent() const;
  // BEP 6: the pieces a peer at `addr` may request while we choke it.
  std::vector<uint32_t> AllowedFastSet(const PeerEndpoint& addr) const;
  void OnPex(Peer& p, std::string_view payload);
  void SendPex();
  void MaybeRequestHashes(Peer& p);
  void OnHashes(Peer& p, const wire::Hashes& m);
  void OnLayersComplete();
  const chunk::PieceLayerTree* TreeFor(const codec::Sha256Digest& root,
                                       size_t* file);

  // Serving.
  void OnExtended(Peer& p, const wire::Extended& m);
  void OnRequest(Peer& p, const wire::BlockSpec& b);
  void OnHashRequest(Peer& p, const wire::HashRequest& m);
  void ServeQueued(Peer& p);
  void SendBlockFromPiece(Peer& p, const wire::BlockSpec& b,
                          const std::shared_ptr<const std::string>& piece);
  void Unchoke(Peer& p);
  void Choke(Peer& p);
  // Super-seeding: appends to `out` the haves SuperSeeder says to show `p`.
  void RevealMore(Peer& p, std::string& out);
  // RevealMore, sent at once.
  void SendReveals(Peer& p);

  // Downloading.
  void OnPeerHas(Peer& p);
  void UpdateInterest(Peer& p);
  void RequestMore(Peer& p);
  void RequestMoreAll();
  // How many blocks `p` may be asked for now: its pipeline's room, within
  // the node's download budget. 0 with the budget spent registers to be woken.
  uint32_t RequestRoom(Peer& p);
  // The write-back bound is reached: no new requests until a piece is written.
  bool WriteBackFull() const;
  // Charges the download budget with what this swarm holds and has requested.
  void SyncBudget();
  void OnPiece(Peer& p, const wire::Piece& m);
  void OnPieceVerified(uint32_t piece, std::vector<uint64_t> senders,
                       size_t bytes, absl::Status status,
                       std::shared_ptr<char[]> data);
  // Blame for a failed piece. Strike: each sender takes a strike (a sole
  // sender is banned). AskBlockHashes: for v2, asks a peer for the block
  // hashes under the piece (BEP 52, base layer 0), so that OnBlockHashes bans
  // exactly the senders of bad blocks; false if it cannot.
  void Strike(uint32_t piece, const std::vector<uint64_t>& senders);
  // Asks the next peer that can answer `b` (one that has the piece and speaks
  // v2 for this torrent, and has not been tried: peers that sent none of the
  // piece first, then its senders by blocks sent, most first); files it
  // under blame_. Falls back to strikes when nobody is left.
  void AskNextForBlame(BlameBook::Case b);
  // Blame whose peer did not answer in time goes to the next peer.
  void ExpireBlame();
  bool AskBlockHashes(uint32_t piece, std::shared_ptr<char[]> data,
                      size_t bytes, std::vector<uint64_t> block_senders,
                      const std::vector<uint64_t>& senders);
  void OnBlockHashes(Peer& p, const wire::HashSpec& spec, std::string_view flat,
                     bool rejected);
  void Complete();

  SwarmEnv& env_;
  const chunk::InfoHashes hashes_;
  const SwarmOptions options_;
  const std::string client_name_;
  const uint16_t listen_port_;
  // Guards against callbacks from the pool arriving after destruction.
  std::shared_ptr<bool> alive_;
  std::unique_ptr<Ticker> ticker_;
  uint64_t ticks_ = 0;
  // Byte ranges readers wait on (WantRange), as piece deadlines.
  RangeDeadlines ranges_;
  // Super-seeding (SwarmOptions::super_seed): what each peer is shown; set
  // when an origin starts.
  std::optional<SuperSeeder> seeder_;
  bool super_seed_ = false;  // SwarmOptions::super_seed, or SetSuperSeed
  // Starts super-seeding if it is on and every piece is held.
  void MaybeSuperSeed();
  void AdvanceDeadlines();
  bool shut_ = false;
  std::optional<std::array<uint8_t, 20>> own_peer_id_;
  // Our address as peers see it (their extension handshakes' yourip), with
  // our listen port: BEP 40 priorities need it.
  std::optional<PeerEndpoint> own_address_;
  // BEP 40 (torrents): the canonical priority of a connection to `peer`; and
  // the connected peer of lowest priority, or null (no address of ours yet,
  // or a trusted swarm, where every slot serves the cluster alike).
  uint32_t PriorityOf(const PeerEndpoint& peer) const;
  Peer* LowestPriorityPeer();
  Connector connector_;
  std::shared_ptr<RateLimit> global_down_;
  std::shared_ptr<RateLimit> global_up_;
  std::shared_ptr<RateLimit> down_limit_ = std::make_shared<RateLimit>();
  std::shared_ptr<RateLimit> up_limit_ = std::make_shared<RateLimit>();
  std::function<uint64_t()> random_;
  chunk::Choker choker_;

  // Known once the metadata arrives.
  std::shared_ptr<chunk::Metainfo> m_;
  std::shared_ptr<chunk::PieceVerifier> verifier_;
  MetadataExchange metadata_;
  std::vector<std::string> layers_;  // per file
  // The piece layers being fetched; null when none is missing.
  std::unique_ptr<LayerExchange> layer_fetch_;
  absl::flat_hash_map<std::string, size_t> file_by_root_;
  absl::flat_hash_map<size_t, std::unique_ptr<chunk::PieceLayerTree>> trees_;
  bool preparing_ = false;

  std::shared_ptr<store::PieceStorage> storage_;
  // Pool threads hash pieces in parallel but write them one at a time:
  // concurrent pwrite()s into one file spin on its inode lock.
  std::shared_ptr<std::mutex> write_mu_ = std::make_shared<std::mutex>();
  std::unique_ptr<chunk::PiecePicker> picker_;
  chunk::PickStrategy strategy_;
  std::vector<uint8_t> priorities_;
  std::optional<std::pair<uint64_t, uint64_t>> wanted_range_;
  std::map<uint32_t, PartialPiece> partial_;
  // Pieces handed to the pool: late blocks for them are dropped.
  absl::flat_hash_set<uint32_t> verifying_pieces_;
  size_t write_back_bytes_ = 0;
  // Bytes of the buffers in partial_.
  size_t partial_bytes_ = 0;
  // What this swarm holds of options_.download_budget, and whether it waits
  // for the budget to have room.
  size_t budget_charge_ = 0;
  bool budget_waiting_ = false;
  // Blame for corrupt pieces, strikes and bans.
  BlameBook blame_;

  // Ordered by key: the order peers are served in (requests, rechokes) is the
  // same in every run, so a simulation replays from its seed.
  std::map<uint64_t, std::unique_ptr<Peer>> peers_;
  // Listen addresses being dialed (until AddPeer or OnConnectFailed).
  absl::flat_hash_set<std::string> dialing_;
  // Every peer we know of, connected or not, and when each may be dialed.
  PeerList known_{
      PeerList::Options{.retry_ticks = options_.peer_retry_ticks,
                        .reconnect_ticks = options_.peer_retry_ticks}};
  // Dials what known_ says is due, within max_peers.
  void DialKnown();
  // Payload bytes, all peers.
  RateMeter down_;
  RateMeter up_;
  // Pieces read for serving, and the requests waiting on reads.
  PieceCache piece_cache_{/*entries=*/4};
};

}  // namespace shoal::node

#endif  // SHOAL_NODE_SWARM_H_
