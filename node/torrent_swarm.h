// A public torrent: the engine (node/swarm.h) over files under a save path
// (store::FileStorage), announced to its trackers, with resume data.
//
// Life: added from a .torrent (metadata known) or a magnet (metadata fetched
// from peers, BEP 9, then saved in the resume data so a restart need not fetch
// it again). Once the metadata and piece layers are known, the data on disk is
// checked: pieces the resume data vouches for (their files unchanged since it
// was saved) are trusted, anything else on disk is hashed on the pool. Then it
// downloads; once every wanted piece is verified it seeds. Pause closes every
// connection and sends "stopped" to the trackers; resume starts again.
//
// Lives on the network thread: every method must be called there.
#ifndef SHOAL_NODE_TORRENT_SWARM_H_
#define SHOAL_NODE_TORRENT_SWARM_H_

#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/thread_pool.h"
#include "chunk/magnet.h"
#include "node/asio.h"
#include "node/events.h"
#include "node/piece_events.h"
#include "node/swarm.h"
#include "store/chunk_store.h"
#include "store/file_storage.h"
#include "store/resume_data.h"
#include "tracker/announcer.h"

namespace shoal::node {

class WebSeedLink;

// When a seeding torrent stops (is paused): at a share ratio (uploaded
// over the larger of its size and what it downloaded) or after seconds of
// seeding; 0 is no limit. A torrent's own fields, where set, replace the
// node's. A value type.
struct SeedLimits {
  std::optional<double> share_ratio;
  std::optional<uint64_t> seed_time;
};

enum class TorrentState : uint8_t {
  kMetadata,  // a magnet waiting for its info dict
  kChecking,  // hashing the data on disk
  kDownloading,
  kSeeding,  // every wanted piece is verified
  kPaused,
  kError,
  // Waiting for a slot (SessionOptions::active_downloads/active_seeds).
  kQueued,
};
const char* TorrentStateName(TorrentState s);

// How a torrent was added, kept so a restarted node can add it again.
struct TorrentSource {
  std::string torrent_bytes;        // a .torrent file, or
  std::string magnet;               // a magnet URI
  std::filesystem::path save_path;  // empty when in_store
  // The pieces live in the chunk store (ChunkStore::PutTorrentPiece), not in
  // files.
  bool in_store = false;
};

struct TorrentFileInfo {
  size_t index = 0;  // in the metainfo's file list (pad files count)
  std::string path;
  uint64_t size = 0;
  uint8_t priority = 4;
  uint64_t bytes_done = 0;  // in verified pieces
};

// A web seed (BEP 19) of a torrent. A value type.
struct WebSeedStatus {
  std::string url;
  // "idle" (not needed now), "active", "waiting" (backing off after an
  // error), "dropped" (failed too often, or banned for bad data).
  std::string state;
  std::string error;        // the last error, if any
  uint64_t downloaded = 0;  // payload bytes, this session
};

// A snapshot for status displays. A value type.
struct TorrentStatus {
  std::string id;            // v2 hex if it has one, else v1 hex
  std::string info_hash_v1;  // hex, or empty
  std::string info_hash_v2;  // hex, or empty
  std::string name;
  TorrentState state = TorrentState::kMetadata;
  std::string error;
  std::string save_path;
  bool in_store = false;
  bool sequential = false;
  double progress = 0;  // of the wanted bytes
  uint64_t total_size = 0;
  uint64_t wanted_size = 0;
  uint64_t bytes_done = 0;
  uint64_t downloaded = 0;  // payload, this session and before
  uint64_t uploaded = 0;
  double download_rate = 0;
  double upload_rate = 0;
  uint32_t num_peers = 0;
  uint32_t num_seeds = 0;
  uint32_t known_peers = 0;  // Swarm::num_known_peers()
  uint32_t num_pieces = 0;
  uint32_t pieces_done = 0;
  uint32_t piece_length = 0;
  int64_t added_time = 0;
  std::vector<std::string> trackers;        // url
  std::vector<std::string> tracker_errors;  // per tracker, "" if fine
  // The swarm as the tracker counts it: from its last scrape, else seeders
  // and leechers from its last announce; absent while unknown.
  std::optional<int64_t> tracker_seeders;
  std::optional<int64_t> tracker_leechers;
  std::optional<int64_t> tracker_completed;  // downloads ever (scrape only)
  std::vector<WebSeedStatus> web_seeds;
  // Uploaded over the larger of the wanted size and what was downloaded.
  double share_ratio = 0;
  uint64_t seeding_seconds = 0;  // over the torrent's life
  // Set when it stopped at a seeding limit: which one.
  std::string stopped_by;
  // BEP 16 super-seeding is on (it takes effect while seeding).
  bool super_seeding = false;
  // While downloading at a known rate: seconds until every wanted piece is
  // verified, at the smoothed download rate (RateMeter, about 5 s).
  std::optional<int64_t> eta_seconds;
  std::string pieces;  // the verified pieces, BEP 3 bitfield bytes
};

struct TorrentConfig {
  TorrentSource source;
  bool paused = false;
  bool sequential = false;
  // Peers to connect to at the start (a magnet's x.pe, or given by the user).
  std::vector<PeerEndpoint> peers;
  std::vector<std::vector<std::string>> trackers;  // tiers
  std::string display_name;                        // a magnet's dn
  // A magnet's so= (BEP 53): only these files are wanted at first (the
  // others get priority 0 when the metadata arrives; indices past the last
  // file are ignored). Empty: every file.
  std::vector<chunk::FileIndexRange> select_only;
  // Web seeds besides the torrent's url-list (a magnet's ws=).
  std::vector<std::string> web_seeds;
};

class TorrentSwarm final : public Swarm {
 public:
  // `metainfo` is null for a magnet.
  // The engine runs on `env`; the announcers and the file checks on `io`
  // and `pool`.
  TorrentSwarm(SwarmEnv& env, asio::io_context& io, store::ChunkStore& store,
               ThreadPool& pool, chunk::InfoHashes hashes,
               std::shared_ptr<chunk::Metainfo> metainfo, TorrentConfig config,
               SwarmOptions options, tracker::AnnouncerOptions announce,
               std::string client_name, uint16_t listen_port, EventBus& events);
  ~TorrentSwarm() override;

  // Loads resume data and starts (unless paused; with `queued`, waits in
  // kQueued for Resume). Call once.
  void Start(bool queued = false);
  void Pause();
  // From kPaused or kQueued: runs again.
  void Resume();
  // The node's queue (Session::RunQueue): a downloading or seeding torrent
  // stops and waits in kQueued (not paused: no resume data change); a
  // paused one is resumed into the queue.
  void Queue();
  void Requeue();
  TorrentState state() const { return state_; }
  bool removed() const { return removed_; }
  // Whether it runs as a seed: seeding, or queued from seeding, or (not
  // started yet) its resume data holds every piece.
  bool LikelySeed() const;
  // Its place in the queue (Session numbers torrents as they are added, and
  // keeps the order across restarts): lower first.
  uint64_t queue_position() const { return queue_position_; }
  void set_queue_position(uint64_t p) { queue_position_ = p; }
  // Stops for good: "stopped" to the trackers, resume data deleted; with
  // `delete_data`, the files too. `done` runs on the network thread.
  void Remove(bool delete_data, std::function<void()> done);
  // Saves resume data now (the node is stopping).
  void SaveResume();
  // Hashes everything on disk again.
  void Recheck();
  void Reannounce();

  std::string id() const { return hashes().BestHex(); }
  const TorrentConfig& config() const { return config_; }
  TorrentStatus Status() const;
  // The metadata, also before the torrent starts (a .torrent added paused);
  // null for a magnet whose info dict has not arrived.
  const chunk::Metainfo* known_metainfo() const;
  std::vector<TorrentFileInfo> Files() const;

  // What reading the torrent's files needs, to use off the network thread.
  struct ReadSource {
    std::shared_ptr<const chunk::Metainfo> metainfo;
    std::shared_ptr<store::PieceStorage> storage;
    // Checks pieces read from files (which may have changed since); null when
    // the pieces are in the chunk store (RocksDB checks their CRC32C).
    std::shared_ptr<chunk::PieceVerifier> verifier;
    chunk::Bitfield have;  // verified when the source was taken
    // Reports pieces as they verify from now on, for readers that wait.
    std::shared_ptr<PieceEvents> arriving;
  };
  // FAILED_PRECONDITION before the metadata is known and the data checked.
  absl::StatusOr<ReadSource> GetReadSource() const;
  // One priority per file of the metainfo (pad files included, ignored).
  // FAILED_PRECONDITION before the metadata is known; INVALID_ARGUMENT for a
  // wrong count or a priority above 7.
  absl::Status SetFilePriorities(std::vector<uint8_t> priorities);
  void SetSequential(bool on);
  // The node's seeding limits (both fields set), shared by its torrents.
  void set_node_seed_limits(std::shared_ptr<const SeedLimits> limits) {
    node_seed_limits_ = std::move(limits);
  }
  // Sets the fields of `limits` that are present as the torrent's own; a
  // torrent stopped at a limit may stop again under the new one.
  void SetSeedLimits(const SeedLimits& limits);
  // The torrent's own limits, and the ones that apply (own, else the
  // node's).
  const SeedLimits& own_seed_limits() const { return seed_limits_; }
  SeedLimits EffectiveSeedLimits() const;
  // BEP 16: while seeding, each peer is shown one piece at a time, the next
  // once another peer has it (Swarm::SetSuperSeed); kept across restarts.
  void SetSuperSeeding(bool on);

 protected:
  void Prepare() override;
  void OnPieceHave(uint32_t piece) override;
  void OnComplete() override;
  void OnError(const absl::Status& status) override;
  void OnTick() override;

 private:
  // Pieces as they verify, for readers waiting on them (ReadSource).
  std::shared_ptr<PieceEvents> arriving_ = std::make_shared<PieceEvents>();
  void SetState(TorrentState s);
  // Starts the work a pause holds back: trackers, peers, the metadata.
  void Begin();
  void ApplyPriorities();
  // Applies config_.select_only to fresh file priorities.
  void SelectOnly(const chunk::Metainfo& m);
  std::vector<uint8_t> PiecePriorities(const chunk::Metainfo& m) const;
  void Finish(const chunk::Bitfield& have);
  // Sends "started" once the torrent may announce (see the .cc), unless it
  // already did.
  void MaybeStartAnnouncing();
  // Sends "stopped" where "started" went; `done` runs after (or at once).
  void StopAnnouncing(std::function<void()> done);
  // With file_states, the files' sizes and mtimes too (call after a flush).
  store::ResumeData MakeResume(bool file_states = true) const;
  // SaveResume() with the files' flush (an fdatasync of each) and the save on
  // the pool, so the network thread never waits for the disk.
  void SaveResumeInBackground();
  void Publish(EventKind kind, std::string message = "");

  asio::io_context& io_;
  ThreadPool& pool_;
  store::ChunkStore& store_;
  TorrentConfig config_;
  const tracker::AnnouncerOptions announce_options_;
  EventBus& events_;
  TorrentState state_ = TorrentState::kMetadata;
  // The state to return to after a pause.
  TorrentState resume_state_ = TorrentState::kMetadata;
  absl::Status error_;
  // A .torrent's metadata (or a magnet's from resume data), until Begin().
  std::shared_ptr<chunk::Metainfo> pending_metainfo_;
  bool begun_ = false;
  // The pieces resume data says are held, for status while not started.
  chunk::Bitfield saved_have_;
  bool metadata_announced_ = false;
  // files_ in file mode, the chunk store's pieces in store mode; set once the
  // metadata is known and the torrent starts.
  std::shared_ptr<store::PieceStorage> pieces_;
  std::shared_ptr<store::FileStorage> files_;  // file mode
  std::vector<uint8_t> file_priorities_;
  std::unique_ptr<tracker::Announcer> announcer_;
  // "started" was sent (and no "stopped" since).
  bool announcing_ = false;
  // Scrapes (BEP 48) of the tracker that answered: once it has, then every
  // kScrapeTicks, and again after a reannounce or a completed download.
  void MaybeScrape();
  // BEP 19: while downloading, each web seed (the url-list and the magnet's
  // ws=) is a link in the swarm (node/web_seed.h); one that fails waits (15 s,
  // doubling, or the server's Retry-After) and after kWebSeedFailures
  // failures in a row, or a ban for bad data, is dropped.
  void ManageWebSeeds();
  struct WebSeed {
    std::string url;
    std::shared_ptr<WebSeedLink> link;
    int failures = 0;
    uint64_t retry_tick = 0;
    bool dropped = false;
    std::string error;
    uint64_t downloaded = 0;  // by links closed already
  };
  std::vector<WebSeed> web_seeds_;
  std::optional<tracker::ScrapeStats> scraped_;
  bool scraping_ = false;
  bool scrape_due_ = true;
  uint64_t scraped_at_tick_ = 0;
  bool force_check_ = false;
  bool resume_dirty_ = false;
  // Orders resume saves made on the pool and on this thread: an older save
  // never overwrites a newer one, and none lands after Remove().
  struct ResumeSaver {
    std::mutex mu;
    uint64_t saved = 0;  // the newest generation saved
    bool removed = false;
  };
  std::shared_ptr<ResumeSaver> saver_ = std::make_shared<ResumeSaver>();
  uint64_t resume_generation_ = 0;
  bool removed_ = false;
  uint64_t ticks_ = 0;
  // Totals from earlier sessions (resume data).
  uint64_t downloaded_before_ = 0;
  uint64_t uploaded_before_ = 0;
  int64_t added_time_ = 0;
  double last_progress_ = -1;
  uint64_t queue_position_ = 0;
  // Seeding limits (SeedLimits): the torrent's own, the node's, the time
  // seeded, and why it stopped (empty until it does).
  void CheckSeedLimits();
  double ShareRatio() const;
  SeedLimits seed_limits_;
  std::shared_ptr<const SeedLimits> node_seed_limits_;
  uint64_t seeding_seconds_ = 0;
  bool seed_limit_reached_ = false;
  bool super_seeding_ = false;
  std::string stopped_by_;
};

}  // namespace shoal::node

#endif  // SHOAL_NODE_TORRENT_SWARM_H_
