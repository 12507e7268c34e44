#include "node/torrent_swarm.h"

#include <algorithm>
#include <cmath>
#include <ctime>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "node/web_seed.h"
#include "spdlog/spdlog.h"

namespace shoal::node {
namespace {

// Resume data is saved at most this often while it changes (seconds).
constexpr uint64_t kResumeSaveTicks = 30;
// Seconds between scrapes of a torrent's tracker: a tracker's usual
// announce interval.
constexpr uint64_t kScrapeTicks = 1800;
// Failures in a row after which a web seed is dropped.
constexpr int kWebSeedFailures = 5;
// Pieces hashed per job when checking files.
constexpr uint32_t kCheckBatch = 8;

// What names a torrent's pieces in the chunk store: its v2 info-hash if it has
// one, else its v1 info-hash.
std::string StoreKey(const chunk::InfoHashes& h) {
  return std::string(h.v2 ? h.v2->AsStringView() : h.v1->AsStringView());
}

// A torrent's pieces kept in the chunk store.
class StorePieces final : public store::PieceStorage {
 public:
  StorePieces(store::ChunkStore& store, std::string key,
              std::shared_ptr<const chunk::Metainfo> m)
      : store_(store), key_(std::move(key)), m_(std::move(m)) {}

  absl::Status WritePiece(uint32_t piece, std::string_view data) override {
    if (piece >= m_->num_pieces)
      return absl::OutOfRangeError("piece index past the torrent");
    return store_.PutTorrentPiece(key_, piece,
                                  data.substr(0, chunk::PieceSize(*m_, piece)));
  }
  absl::StatusOr<std::string> ReadBlock(uint32_t piece, uint32_t offset,
                                        uint32_t length) override {
    auto data = store_.ReadTorrentPiece(key_, piece);
    if (!data.ok()) return data.status();
    if (uint64_t{offset} + length > data->size())
      return absl::OutOfRangeError("block past the piece");
    return data->substr(offset, length);
  }
  absl::StatusOr<std::string> ReadPiece(uint32_t piece) override {
    return store_.ReadTorrentPiece(key_, piece);
  }

 private:
  store::ChunkStore& store_;
  const std::string key_;
  const std::shared_ptr<const chunk::Metainfo> m_;
};

}  // namespace

const char* TorrentStateName(TorrentState s) {
  switch (s) {
    case TorrentState::kMetadata:
      return "metadata";
    case TorrentState::kChecking:
      return "checking";
    case TorrentState::kDownloading:
      return "downloading";
    case TorrentState::kSeeding:
      return "seeding";
    case TorrentState::kPaused:
      return "paused";
    case TorrentState::kError:
      return "error";
    case TorrentState::kQueued:
      return "queued";
  }
  return "unknown";
}

TorrentSwarm::TorrentSwarm(SwarmEnv& env, asio::io_context& io,
                           store::ChunkStore& store, ThreadPool& pool,
                           chunk::InfoHashes hashes,
                           std::shared_ptr<chunk::Metainfo> metainfo,
                           TorrentConfig config, SwarmOptions options,
                           tracker::AnnouncerOptions announce,
                           std::string client_name, uint16_t listen_port,
                           EventBus& events)
    : Swarm(env, std::move(hashes), options, std::move(client_name),
            listen_port),
      io_(io),
      pool_(pool),
      store_(store),
      config_(std::move(config)),
      announce_options_(std::move(announce)),
      events_(events) {
  pending_metainfo_ = std::move(metainfo);
  set_event_bus(&events);
}

TorrentSwarm::~TorrentSwarm() = default;

void TorrentSwarm::Publish(EventKind kind, std::string message) {
  Event e;
  e.kind = kind;
  e.id = id();
  const TorrentStatus st = Status();
  e.name = st.name;
  e.state = TorrentStateName(st.state);
  e.progress = st.progress;
  e.download_rate = st.download_rate;
  e.upload_rate = st.upload_rate;
  e.num_peers = st.num_peers;
  e.eta_seconds = st.eta_seconds;
  e.message = std::move(message);
  events_.Publish(std::move(e));
}

void TorrentSwarm::SetState(TorrentState s) {
  if (s == state_) return;
  state_ = s;
  Publish(EventKind::kState);
}

void TorrentSwarm::Start(bool queued) {
  added_time_ = static_cast<int64_t>(std::time(nullptr));
  auto resume = store::LoadResumeData(store_, hashes());
  if (resume.ok()) {
    downloaded_before_ = resume->downloaded;
    uploaded_before_ = resume->uploaded;
    added_time_ = resume->added_time;
    file_priorities_ = resume->file_priorities;
    config_.sequential = resume->sequential;
    config_.paused = resume->paused;
    saved_have_ = resume->have;
    seeding_seconds_ = resume->seeding_seconds;
    seed_limits_.share_ratio = resume->share_ratio_limit;
    seed_limits_.seed_time = resume->seed_time_limit;
    seed_limit_reached_ = resume->seed_limit_reached;
    if (seed_limit_reached_) stopped_by_ = "a seeding limit";
    super_seeding_ = resume->super_seed;
    SetSuperSeed(super_seeding_);
    if (!pending_metainfo_ && !resume->info_bytes.empty()) {
      // A magnet whose metadata an earlier session fetched.
      auto m = chunk::ParseInfoDict(resume->info_bytes);
      if (m.ok() && chunk::InfoHashes{m->info_hashes} == hashes()) {
        pending_metainfo_ = std::make_shared<chunk::Metainfo>(*std::move(m));
      }
    }
  }
  if (config_.sequential) SetStrategy(chunk::PickStrategy::kSequential);
  if (!config_.trackers.empty()) {
    announcer_ = std::make_unique<tracker::Announcer>(
        io_, hashes(), config_.trackers, announce_options_,
        [this] {
          tracker::TransferStats s;
          s.uploaded = static_cast<int64_t>(uploaded_before_ + uploaded());
          s.downloaded =
              static_cast<int64_t>(downloaded_before_ + downloaded());
          s.left =
              has_metadata()
                  ? static_cast<int64_t>(bytes_wanted() -
                                         std::min(bytes_wanted(), bytes_have()))
                  : 1;
          return s;
        },
        [this](const std::vector<PeerEndpoint>& peers) { ConnectTo(peers); });
  }
  Publish(EventKind::kAdded);
  if (config_.paused || queued) {
    Shutdown();
    state_ = config_.paused ? TorrentState::kPaused : TorrentState::kQueued;
    Publish(EventKind::kState);
    return;
  }
  Begin();
}

void TorrentSwarm::Queue() {
  if ((state_ != TorrentState::kDownloading &&
       state_ != TorrentState::kSeeding) ||
      removed_)
    return;
  resume_state_ = state_;
  Shutdown();
  StopAnnouncing([] {});
  state_ = TorrentState::kQueued;
  Publish(EventKind::kState);
}

void TorrentSwarm::Requeue() {
  if (state_ != TorrentState::kPaused || removed_) return;
  config_.paused = false;
  state_ = TorrentState::kQueued;
  SaveResume();
  Publish(EventKind::kState);
}

bool TorrentSwarm::LikelySeed() const {
  if (state_ == TorrentState::kSeeding) return true;
  if (begun_) {
    return (state_ == TorrentState::kQueued ||
            state_ == TorrentState::kPaused) &&
           resume_state_ == TorrentState::kSeeding;
  }
  return saved_have_.size() > 0 && saved_have_.all();
}

void TorrentSwarm::Begin() {
  begun_ = true;
  Reopen();
  MaybeStartAnnouncing();
  ConnectTo(config_.peers);
  if (pending_metainfo_) {
    auto m = std::move(pending_metainfo_);
    SetMetadata(std::move(m));
  } else if (!has_metadata()) {
    SetState(TorrentState::kMetadata);
  }
}

void TorrentSwarm::Pause() {
  if (state_ == TorrentState::kPaused || removed_) return;
  // Queued, it keeps the state it was queued from.
  if (state_ != TorrentState::kQueued) resume_state_ = state_;
  Shutdown();
  StopAnnouncing([] {});
  state_ = TorrentState::kPaused;
  config_.paused = true;
  SaveResume();
  Publish(EventKind::kState);
}

void TorrentSwarm::Resume() {
  if ((state_ != TorrentState::kPaused && state_ != TorrentState::kQueued) ||
      removed_)
    return;
  config_.paused = false;
  if (!begun_) {
    state_ = TorrentState::kMetadata;
    Begin();
  } else {
    Reopen();
    SetState(resume_state_);
    MaybeStartAnnouncing();
    ConnectTo(config_.peers);
  }
  SaveResume();
}

void TorrentSwarm::Remove(bool delete_data, std::function<void()> done) {
  removed_ = true;
  arriving_->Fail(absl::NotFoundError("the torrent was removed"));
  Shutdown();
  {
    std::lock_guard<std::mutex> lock(saver_->mu);
    saver_->removed = true;
  }
  if (absl::Status s = store::DeleteResumeData(store_, hashes()); !s.ok())
    spdlog::warn("torrent {}: deleting resume data: {}", id(), s.ToString());
  Publish(EventKind::kRemoved);
  auto finish = [this, delete_data, done = std::move(done),
                 alive = std::weak_ptr<bool>(alive())]() mutable {
    if (alive.expired() || !delete_data) {
      done();
      return;
    }
    if (config_.source.in_store) {
      pool_.Post([&store = store_, key = StoreKey(hashes()), &io = io_,
                  done = std::move(done)]() mutable {
        if (absl::Status s = store.RemoveTorrentPieces(key); !s.ok())
          spdlog::warn("deleting pieces: {}", s.ToString());
        asio::post(io, std::move(done));
      });
      return;
    }
    if (!files_) {
      done();
      return;
    }
    pool_.Post([files = files_, m = metainfo_ptr(), &io = io_,
                done = std::move(done)]() mutable {
      if (absl::Status s = files->DeleteFiles(); !s.ok())
        spdlog::warn("deleting files: {}", s.ToString());
      asio::post(io, std::move(done));
    });
  };
  StopAnnouncing(std::move(finish));
}

void TorrentSwarm::Recheck() {
  if (!ready() || state_ == TorrentState::kPaused) return;
  force_check_ = true;
  Restart();
}

void TorrentSwarm::Reannounce() {
  if (!announcing_) return;
  announcer_->Reannounce();
  scrape_due_ = true;
}

void TorrentSwarm::MaybeStartAnnouncing() {
  // A torrent with metadata announces once its check has found what it holds,
  // so that the tracker's first "started" carries the true `left` (a seed is
  // counted as a seed at once). A magnet announces at once: it needs peers to
  // fetch the metadata from.
  if (!announcer_ || announcing_ || state_ == TorrentState::kPaused || removed_)
    return;
  if (has_metadata() ? !ready() : pending_metainfo_ != nullptr) return;
  announcing_ = true;
  announcer_->Start();
}

void TorrentSwarm::StopAnnouncing(std::function<void()> done) {
  if (!announcer_) return done();
  announcing_ = false;
  announcer_->Stop(std::move(done));
}

void TorrentSwarm::SetSequential(bool on) {
  config_.sequential = on;
  SetStrategy(on ? chunk::PickStrategy::kSequential
                 : chunk::PickStrategy::kRarestFirst);
  resume_dirty_ = true;
}

// --- Checking
// -------------------------------------------------------------------------

void TorrentSwarm::Prepare() {
  const chunk::Metainfo& m = *metainfo();
  if (!metadata_announced_) {
    metadata_announced_ = true;
    if (config_.source.torrent_bytes.empty()) Publish(EventKind::kMetadata);
  }
  SetState(TorrentState::kChecking);
  if (config_.source.in_store) {
    if (!pieces_) {
      pieces_ = std::make_shared<StorePieces>(store_, StoreKey(hashes()),
                                              metainfo_ptr());
    }
  } else if (!files_) {
    auto files = store::FileStorage::Create(m, config_.source.save_path);
    if (!files.ok()) return OnError(files.status());
    files_ = std::shared_ptr<store::FileStorage>(std::move(*files));
    pieces_ = files_;
  }
  if (file_priorities_.size() != m.files.size()) {
    file_priorities_.assign(m.files.size(), store::kPriorityDefault);
    SelectOnly(m);
  }
  ApplyPriorities();
  if (config_.source.in_store && !force_check_) {
    // The store holds verified pieces only (each written after its hash
    // check, and read back under RocksDB's CRC32C).
    auto held = store_.TorrentPieces(StoreKey(hashes()));
    if (!held.ok()) return OnError(held.status());
    chunk::Bitfield have(m.num_pieces);
    for (uint32_t i : *held)
      if (i < m.num_pieces) have.set(i);
    spdlog::info("torrent {}: {} of {} pieces in the store", id(), have.count(),
                 m.num_pieces);
    Finish(have);
    return;
  }
  // Resume data vouches for the pieces of files unchanged since it was saved.
  if (!force_check_ && files_) {
    auto resume = store::LoadResumeData(store_, hashes());
    if (resume.ok()) {
      const std::vector<store::FileState> now = files_->FileStates();
      chunk::Bitfield trusted = store::ValidateResumeData(*resume, m, now);
      // Trusted only if no file changed since the save: a piece written after
      // it (the node was killed) changed its file, and must be found by a
      // check.
      if (resume->file_states == now &&
          trusted.count() == resume->have.count()) {
        spdlog::info("torrent {}: resumed with {} of {} pieces", id(),
                     trusted.count(), m.num_pieces);
        Finish(trusted);
        return;
      }
    }
  }
  force_check_ = false;
  // Hash what is on disk, kCheckBatch pieces per pool job.
  struct Check {
    chunk::Bitfield have;
    uint32_t jobs_left = 0;
    absl::Status error;
  };
  auto check = std::make_shared<Check>();
  check->have = chunk::Bitfield(m.num_pieces);
  check->jobs_left = (m.num_pieces + kCheckBatch - 1) / kCheckBatch;
  if (check->jobs_left == 0) {
    Finish(check->have);
    return;
  }
  spdlog::info("torrent {}: checking {} pieces", id(), m.num_pieces);
  for (uint32_t first = 0; first < m.num_pieces; first += kCheckBatch) {
    const uint32_t end = std::min(m.num_pieces, first + kCheckBatch);
    pool_.Post([this, alive = std::weak_ptr<bool>(alive()), &io = io_,
                pieces = pieces_, verifier = verifier(), m = metainfo_ptr(),
                check, first, end] {
      std::vector<uint32_t> good;
      absl::Status error;
      for (uint32_t i = first; i < end && !alive.expired(); ++i) {
        auto data = pieces->ReadPiece(i);
        if (!data.ok()) {
          // Missing or short files are simply not there yet.
          if (data.status().code() != absl::StatusCode::kUnavailable &&
              data.status().code() != absl::StatusCode::kNotFound)
            error = data.status();
          continue;
        }
        if (verifier->Verify(i, *data).ok()) good.push_back(i);
      }
      asio::post(io, [this, alive, check, good = std::move(good), error] {
        if (alive.expired()) return;
        for (uint32_t i : good) check->have.set(i);
        if (check->error.ok() && !error.ok()) check->error = error;
        if (--check->jobs_left > 0) return;
        if (!check->error.ok()) return OnError(check->error);
        spdlog::info("torrent {}: check found {} of {} pieces", id(),
                     check->have.count(), check->have.size());
        Finish(check->have);
      });
    });
  }
}

void TorrentSwarm::Finish(const chunk::Bitfield& have) {
  if (removed_) return;
  arriving_->SetNumPieces(have.size());
  for (uint32_t i = 0; i < have.size(); ++i)
    if (have.test(i)) arriving_->MarkHave(i);
  if (state_ != TorrentState::kPaused) SetState(TorrentState::kDownloading);
  StartDownloading(pieces_, have);
  if (announcing_) {
    // Announced before the metadata was known (a magnet), or rechecked: the
    // trackers learn the new `left` now rather than at the next interval.
    announcer_->Reannounce();
  } else {
    MaybeStartAnnouncing();
  }
  resume_dirty_ = true;
  SaveResume();
}

std::vector<uint8_t> TorrentSwarm::PiecePriorities(
    const chunk::Metainfo& m) const {
  // A piece takes the highest priority of the (real) files it holds bytes of.
  std::vector<uint8_t> pieces(m.num_pieces, 0);
  for (size_t f = 0; f < m.files.size(); ++f) {
    if (m.files[f].pad_file || m.files[f].length == 0) continue;
    const uint8_t prio = f < file_priorities_.size() ? file_priorities_[f]
                                                     : store::kPriorityDefault;
    const chunk::PieceRange r = chunk::FilePieces(m, f);
    for (uint32_t i = r.first; i < r.end; ++i)
      pieces[i] = std::max(pieces[i], prio);
  }
  return pieces;
}

void TorrentSwarm::SelectOnly(const chunk::Metainfo& m) {
  if (config_.select_only.empty()) return;
  std::vector<uint8_t> prio(m.files.size(), 0);
  bool any = false;
  for (const chunk::FileIndexRange& r : config_.select_only) {
    for (uint64_t f = r.first; f <= r.last && f < m.files.size(); ++f) {
      prio[f] = store::kPriorityDefault;
      any = true;
    }
  }
  if (!any) {
    spdlog::warn(
        "torrent {}: the magnet's so= names no file of its {}: "
        "every file is wanted",
        id(), m.files.size());
    return;
  }
  file_priorities_ = std::move(prio);
  resume_dirty_ = true;
}

void TorrentSwarm::ApplyPriorities() {
  if (files_) {
    if (absl::Status s = files_->SetFilePriorities(file_priorities_); !s.ok())
      spdlog::warn("torrent {}: file priorities: {}", id(), s.ToString());
  }
  SetPiecePriorities(PiecePriorities(*metainfo()));
}

absl::Status TorrentSwarm::SetFilePriorities(std::vector<uint8_t> priorities) {
  const chunk::Metainfo* m = known_metainfo();
  if (m == nullptr) {
    return absl::FailedPreconditionError(
        "the torrent's metadata is not known yet");
  }
  if (priorities.size() != m->files.size()) {
    return absl::InvalidArgumentError(absl::StrCat("expected ", m->files.size(),
                                                   " file priorities, got ",
                                                   priorities.size()));
  }
  for (uint8_t p : priorities)
    if (p > 7)
      return absl::InvalidArgumentError("file priorities range from 0 to 7");
  file_priorities_ = std::move(priorities);
  if (!pieces_) {
    // Not started or not checked yet: applied when it is.
    resume_dirty_ = true;
    SaveResume();
    return absl::OkStatus();
  }
  const bool was_complete = complete();
  ApplyPriorities();
  if (was_complete && !complete()) {
    if (state_ == TorrentState::kSeeding) SetState(TorrentState::kDownloading);
    // Seeds closed our connections while we wanted nothing (BEP 21): ask the
    // trackers for peers again (as soon as their min interval allows).
    Reannounce();
  }
  resume_dirty_ = true;
  SaveResume();
  return absl::OkStatus();
}

// --- Progress
// -------------------------------------------------------------------------

void TorrentSwarm::OnPieceHave(uint32_t piece) {
  resume_dirty_ = true;
  arriving_->MarkHave(piece);
}

void TorrentSwarm::OnComplete() {
  const bool downloaded_now =
      state_ == TorrentState::kDownloading && downloaded() > 0;
  SetState(TorrentState::kSeeding);
  if (files_) {
    if (auto skipped = files_->Finalize(); !skipped.ok()) {
      spdlog::warn("torrent {}: finalizing files: {}", id(),
                   skipped.status().ToString());
    }
  }
  if (announcer_ && downloaded_now) {
    announcer_->Complete();
    scrape_due_ = true;
  }
  // The files are flushed (fdatasync) with the resume data, on the pool.
  resume_dirty_ = true;
  SaveResumeInBackground();
  Publish(EventKind::kComplete);
}

void TorrentSwarm::OnError(const absl::Status& status) {
  arriving_->Fail(status);
  error_ = status;
  spdlog::error("torrent {}: {}", id(), status.ToString());
  Shutdown();
  StopAnnouncing([] {});
  state_ = TorrentState::kError;
  Publish(EventKind::kError, status.ToString());
}

void TorrentSwarm::OnTick() {
  ++ticks_;
  if (state_ == TorrentState::kDownloading) {
    const double p = Status().progress;
    if (p != last_progress_) {
      last_progress_ = p;
      Publish(EventKind::kProgress);
    }
  }
  if (resume_dirty_ && ticks_ % kResumeSaveTicks == 0) SaveResumeInBackground();
  MaybeScrape();
  ManageWebSeeds();
  if (state_ == TorrentState::kSeeding) {
    ++seeding_seconds_;
    CheckSeedLimits();
  }
}

SeedLimits TorrentSwarm::EffectiveSeedLimits() const {
  SeedLimits e = seed_limits_;
  if (!e.share_ratio)
    e.share_ratio = node_seed_limits_ ? node_seed_limits_->share_ratio : 0;
  if (!e.seed_time)
    e.seed_time = node_seed_limits_ ? node_seed_limits_->seed_time : 0;
  return e;
}

void TorrentSwarm::SetSeedLimits(const SeedLimits& limits) {
  if (limits.share_ratio) seed_limits_.share_ratio = limits.share_ratio;
  if (limits.seed_time) seed_limits_.seed_time = limits.seed_time;
  seed_limit_reached_ = false;
  stopped_by_.clear();
  SaveResume();
  if (state_ == TorrentState::kSeeding) CheckSeedLimits();
}

void TorrentSwarm::SetSuperSeeding(bool on) {
  super_seeding_ = on;
  SetSuperSeed(on);
  SaveResume();
}

double TorrentSwarm::ShareRatio() const {
  const uint64_t up = uploaded_before_ + uploaded();
  const uint64_t base =
      std::max(downloaded_before_ + downloaded(), bytes_wanted());
  return base == 0 ? 0 : static_cast<double>(up) / static_cast<double>(base);
}

void TorrentSwarm::CheckSeedLimits() {
  if (seed_limit_reached_ || removed_) return;
  const SeedLimits e = EffectiveSeedLimits();
  const double ratio = ShareRatio();
  std::string why;
  if (*e.share_ratio > 0 && ratio >= *e.share_ratio) {
    why = absl::StrFormat("share ratio %.2f reached its limit %.2f", ratio,
                          *e.share_ratio);
  } else if (*e.seed_time > 0 && seeding_seconds_ >= *e.seed_time) {
    why = absl::StrCat("seeded ", seeding_seconds_, " s, its limit is ",
                       *e.seed_time, " s");
  }
  if (why.empty()) return;
  spdlog::info("torrent {}: stops seeding: {}", id(), why);
  seed_limit_reached_ = true;
  stopped_by_ = why;
  Pause();
}

void TorrentSwarm::ManageWebSeeds() {
  const chunk::Metainfo* m = metainfo();
  if (m == nullptr) return;
  if (web_seeds_.empty()) {
    std::vector<std::string> urls = m->url_seeds;
    urls.insert(urls.end(), config_.web_seeds.begin(), config_.web_seeds.end());
    for (std::string& url : urls) {
      if (std::any_of(web_seeds_.begin(), web_seeds_.end(),
                      [&](const WebSeed& w) { return w.url == url; }))
        continue;
      WebSeed w;
      w.url = std::move(url);
      web_seeds_.push_back(std::move(w));
    }
  }
  const bool want = state_ == TorrentState::kDownloading && !complete();
  for (WebSeed& w : web_seeds_) {
    if (w.link && w.link->closed()) {
      const absl::Status why = w.link->close_reason();
      w.downloaded += w.link->payload_received();
      if (w.link->payload_received() > 0) w.failures = 0;
      if (IsBannedKey(w.url)) {
        w.dropped = true;
        w.error = "banned: " + why.ToString();
      } else if (!why.ok() && why.code() != absl::StatusCode::kCancelled &&
                 state_ == TorrentState::kDownloading) {
        w.error = why.ToString();
        if (++w.failures >= kWebSeedFailures) {
          w.dropped = true;
        } else {
          const uint64_t wait =
              w.link->retry_after()
                  ? static_cast<uint64_t>(*w.link->retry_after())
                  : std::min<uint64_t>(600, uint64_t{15} << (w.failures - 1));
          w.retry_tick = ticks_ + wait;
        }
        spdlog::info("torrent {}: web seed {}: {}{}", id(), w.url, w.error,
                     w.dropped ? " (dropped)" : "");
      }
      w.link.reset();
    }
    if (!want || w.link || w.dropped || ticks_ < w.retry_tick) continue;
    // A full swarm has no slot: not the web seed's failure, try next tick.
    if (static_cast<int>(num_peers()) >= options().max_peers) continue;
    absl::StatusOr<std::shared_ptr<WebSeedLink>> link =
        WebSeedLink::Create(io_, w.url, metainfo_ptr());
    if (!link.ok()) {
      w.dropped = true;
      w.error = link.status().ToString();
      continue;
    }
    w.link = *link;
    AddPeer(w.link, w.link->handshake(handshake_hash()), /*incoming=*/false);
  }
}

void TorrentSwarm::MaybeScrape() {
  if (!announcing_ || scraping_ || !announcer_->multitracker().working())
    return;
  if (!scrape_due_ && ticks_ < scraped_at_tick_ + kScrapeTicks) return;
  scraping_ = true;
  scrape_due_ = false;
  announcer_->Scrape(
      [this, alive = std::weak_ptr<bool>(alive())](
          absl::StatusOr<std::vector<tracker::ScrapeEntry>> entries) {
        if (alive.expired()) return;
        scraping_ = false;
        scraped_at_tick_ = ticks_;
        if (!entries.ok() || entries->empty()) {
          spdlog::debug(
              "torrent {}: scrape: {}", id(),
              entries.ok() ? "no entry" : entries.status().ToString());
          return;
        }
        // A hybrid is scraped under both hashes: trackers count two swarms
        // of the same peers, so the larger count of each is the swarm's.
        tracker::ScrapeStats s;
        for (const tracker::ScrapeEntry& e : *entries) {
          s.complete = std::max(s.complete, e.stats.complete);
          s.incomplete = std::max(s.incomplete, e.stats.incomplete);
          s.downloaded = std::max(s.downloaded, e.stats.downloaded);
        }
        scraped_ = s;
      });
}

store::ResumeData TorrentSwarm::MakeResume(bool file_states) const {
  store::ResumeData r;
  if (const chunk::Bitfield* have = this->have()) r.have = *have;
  r.file_priorities = file_priorities_;
  if (files_ && file_states) {
    // Written pieces must be on disk before resume data vouches for them.
    r.file_states = files_->FileStates();
  }
  r.uploaded = uploaded_before_ + uploaded();
  r.downloaded = downloaded_before_ + downloaded();
  r.save_path = config_.source.save_path.string();
  r.added_time = added_time_;
  r.paused = config_.paused;
  r.sequential = config_.sequential;
  r.seeding_seconds = seeding_seconds_;
  r.share_ratio_limit = seed_limits_.share_ratio;
  r.seed_time_limit = seed_limits_.seed_time;
  r.seed_limit_reached = seed_limit_reached_;
  r.super_seed = super_seeding_;
  if (config_.source.torrent_bytes.empty() && has_metadata())
    r.info_bytes = metainfo()->info_bytes;
  return r;
}

void TorrentSwarm::SaveResume() {
  if (removed_) return;
  if (!ready()) {
    // Nothing verified yet: keep what an earlier session saved, but record
    // the settings.
    auto old = store::LoadResumeData(store_, hashes());
    if (old.ok()) {
      old->paused = config_.paused;
      old->sequential = config_.sequential;
      old->file_priorities = file_priorities_;
      (void)store::SaveResumeData(store_, hashes(), *old);
      return;
    }
  }
  const uint64_t generation = ++resume_generation_;
  std::lock_guard<std::mutex> lock(saver_->mu);
  if (files_) {
    if (absl::Status s = files_->Flush(); !s.ok())
      spdlog::warn("torrent {}: flushing files: {}", id(), s.ToString());
  }
  if (absl::Status s = store::SaveResumeData(store_, hashes(), MakeResume());
      !s.ok()) {
    spdlog::warn("torrent {}: saving resume data: {}", id(), s.ToString());
    return;
  }
  saver_->saved = generation;
  resume_dirty_ = false;
}

void TorrentSwarm::SaveResumeInBackground() {
  if (removed_ || !ready() || !files_) return SaveResume();
  // The pieces in `have` were written before this runs; the job's flush makes
  // them durable before the resume data that vouches for them is saved, and
  // it reads the files' states after the flush.
  store::ResumeData r = MakeResume(/*file_states=*/false);
  resume_dirty_ = false;
  pool_.Post([saver = saver_, files = files_, &store = store_,
              hashes = hashes(), id = id(), r = std::move(r),
              generation = ++resume_generation_]() mutable {
    std::lock_guard<std::mutex> lock(saver->mu);
    if (saver->removed || saver->saved > generation) return;
    if (absl::Status s = files->Flush(); !s.ok()) {
      spdlog::warn("torrent {}: flushing files: {}", id, s.ToString());
      return;
    }
    r.file_states = files->FileStates();
    if (absl::Status s = store::SaveResumeData(store, hashes, r); !s.ok()) {
      spdlog::warn("torrent {}: saving resume data: {}", id, s.ToString());
      return;
    }
    saver->saved = generation;
  });
}

TorrentStatus TorrentSwarm::Status() const {
  TorrentStatus s;
  s.id = id();
  if (hashes().v1) s.info_hash_v1 = hashes().v1->Hex();
  if (hashes().v2) s.info_hash_v2 = hashes().v2->Hex();
  const chunk::Metainfo* m = metainfo();
  if (m == nullptr && pending_metainfo_) m = pending_metainfo_.get();
  s.name = m ? m->name : config_.display_name;
  s.state = state_;
  if (!error_.ok()) s.error = error_.ToString();
  s.save_path = config_.source.save_path.string();
  s.in_store = config_.source.in_store;
  s.sequential = config_.sequential;
  if (m) {
    s.total_size = m->total_size;
    s.num_pieces = m->num_pieces;
    s.piece_length = m->piece_length;
  }
  s.wanted_size = bytes_wanted();
  if (!ready() && m != nullptr) {
    const std::vector<uint8_t> prio = PiecePriorities(*m);
    s.wanted_size = 0;
    for (uint32_t i = 0; i < m->num_pieces; ++i)
      if (prio[i] > 0) s.wanted_size += chunk::PieceSize(*m, i);
  }
  s.bytes_done = std::min(bytes_have(), s.wanted_size);
  if (!ready() && m != nullptr && saved_have_.size() == m->num_pieces) {
    // Not started (paused): what the resume data says is held.
    uint64_t done = 0;
    for (uint32_t i = 0; i < saved_have_.size(); ++i)
      if (saved_have_.test(i)) done += chunk::PieceSize(*m, i);
    s.bytes_done = std::min(done, s.wanted_size);
    s.pieces_done = saved_have_.count();
    s.pieces = std::string(saved_have_.bytes());
  }
  if (ready()) {
    // Pieces with priority 0 held anyway (they share bytes with wanted files)
    // count towards neither.
    uint64_t done = 0;
    const chunk::Bitfield& have = *this->have();
    for (uint32_t i = 0; i < have.size(); ++i)
      if (have.test(i) && piece_priority(i) > 0)
        done += chunk::PieceSize(*m, i);
    s.bytes_done = done;
    s.pieces_done = have.count();
    s.pieces = std::string(have.bytes());
  }
  s.progress = s.wanted_size == 0
                   ? (ready() ? 1.0 : 0.0)
                   : static_cast<double>(s.bytes_done) / s.wanted_size;
  s.downloaded = downloaded_before_ + downloaded();
  s.uploaded = uploaded_before_ + uploaded();
  s.download_rate = download_rate();
  s.upload_rate = upload_rate();
  s.num_peers = static_cast<uint32_t>(num_peers());
  s.num_seeds = static_cast<uint32_t>(num_seeds());
  s.known_peers = static_cast<uint32_t>(num_known_peers());
  s.added_time = added_time_;
  s.share_ratio = ShareRatio();
  s.seeding_seconds = seeding_seconds_;
  s.stopped_by = stopped_by_;
  s.super_seeding = super_seeding_;
  if (state_ == TorrentState::kDownloading && s.download_rate >= 1 &&
      s.wanted_size > s.bytes_done) {
    s.eta_seconds = static_cast<int64_t>(std::ceil(
        static_cast<double>(s.wanted_size - s.bytes_done) / s.download_rate));
  }
  for (const WebSeed& w : web_seeds_) {
    WebSeedStatus ws;
    ws.url = w.url;
    ws.error = w.error;
    ws.downloaded = w.downloaded + (w.link ? w.link->payload_received() : 0);
    ws.state = w.dropped                     ? "dropped"
               : w.link && !w.link->closed() ? "active"
               : ticks_ < w.retry_tick       ? "waiting"
                                             : "idle";
    s.web_seeds.push_back(std::move(ws));
  }
  if (announcer_) {
    const tracker::Multitracker& mt = announcer_->multitracker();
    for (size_t i = 0; i < mt.size(); ++i) {
      const tracker::TrackerState& t = mt.tracker(tracker::TrackerIndex{i});
      s.trackers.push_back(t.url);
      s.tracker_errors.push_back(
          t.last_error.ok() ? "" : std::string(t.last_error.message()));
    }
    if (scraped_) {
      s.tracker_seeders = scraped_->complete;
      s.tracker_leechers = scraped_->incomplete;
      s.tracker_completed = scraped_->downloaded;
    } else if (const auto w = mt.working()) {
      s.tracker_seeders = mt.tracker(*w).complete;
      s.tracker_leechers = mt.tracker(*w).incomplete;
    }
  }
  return s;
}

const chunk::Metainfo* TorrentSwarm::known_metainfo() const {
  return metainfo() != nullptr ? metainfo() : pending_metainfo_.get();
}

absl::StatusOr<TorrentSwarm::ReadSource> TorrentSwarm::GetReadSource() const {
  if (!ready() || storage() == nullptr) {
    return absl::FailedPreconditionError(
        state_ == TorrentState::kPaused
            ? "the torrent is paused: resume it to read its files"
            : "the torrent's data is not checked yet");
  }
  ReadSource src;
  src.metainfo = metainfo_ptr();
  src.storage = storage();
  if (!config_.source.in_store) src.verifier = verifier();
  src.have = *have();
  src.arriving = arriving_;
  return src;
}

std::vector<TorrentFileInfo> TorrentSwarm::Files() const {
  std::vector<TorrentFileInfo> out;
  const chunk::Metainfo* m = known_metainfo();
  if (m == nullptr) return out;
  const chunk::Bitfield* have = this->have();
  if (have == nullptr && saved_have_.size() == m->num_pieces)
    have = &saved_have_;
  for (size_t f = 0; f < m->files.size(); ++f) {
    const chunk::FileEntry& e = m->files[f];
    if (e.pad_file) continue;
    TorrentFileInfo i;
    i.index = f;
    i.path = e.path;
    i.size = e.length;
    i.priority = f < file_priorities_.size() ? file_priorities_[f]
                                             : store::kPriorityDefault;
    if (have != nullptr && e.length > 0) {
      const chunk::PieceRange r = chunk::FilePieces(*m, f);
      for (uint32_t p = r.first; p < r.end; ++p) {
        if (!have->test(p)) continue;
        const uint64_t ps = uint64_t{p} * m->piece_length;
        const uint64_t pe = ps + chunk::PieceSize(*m, p);
        const uint64_t lo = std::max(ps, e.offset);
        const uint64_t hi = std::min(pe, e.offset + e.length);
        if (hi > lo) i.bytes_done += hi - lo;
      }
    }
    out.push_back(std::move(i));
  }
  return out;
}

}  // namespace shoal::node
