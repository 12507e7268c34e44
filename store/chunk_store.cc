#include "store/chunk_store.h"

#include <sodium.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <deque>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "base/hex.h"
#include "base/status_macros.h"
#include "rocksdb/db.h"
#include "rocksdb/listener.h"
#include "rocksdb/options.h"
#include "rocksdb/write_batch.h"
#include "spdlog/spdlog.h"
#include "store/internal/fast_crc32c.h"
#include "store/internal/record_codec.h"

namespace shoal::store {
namespace {

using chunk::ContentId;
using codec::Sha256Digest;

constexpr char kChunksCf[] = "chunks";
constexpr char kContentsCf[] = "contents";
constexpr char kHavesCf[] = "haves";
constexpr char kPinsCf[] = "pins";
constexpr char kStateCf[] = "state";
constexpr char kTorrentsCf[] = "torrents";

constexpr char kContentOwner = 'c';

// Records the sequence numbers that finished flushes made durable.
class FlushListener final : public rocksdb::EventListener {
 public:
  explicit FlushListener(
      std::shared_ptr<std::atomic<rocksdb::SequenceNumber>> flushed)
      : flushed_(std::move(flushed)) {}
  void OnFlushCompleted(rocksdb::DB* /*db*/,
                        const rocksdb::FlushJobInfo& info) override {
    // Column families flush atomically, so the haves' flush (every piece's
    // batch writes a have) speaks for the whole batch.
    if (info.cf_name != kHavesCf) return;
    rocksdb::SequenceNumber cur = flushed_->load();
    while (cur < info.largest_seqno &&
           !flushed_->compare_exchange_weak(cur, info.largest_seqno)) {
    }
  }

 private:
  std::shared_ptr<std::atomic<rocksdb::SequenceNumber>> flushed_;
};
// Adds at least this large write their pieces without the WAL and flush before
// they commit: the bytes then reach the disk once (in blob files) instead of
// twice (WAL, then blob files).
constexpr uint64_t kWalLessAddBytes = 16 << 20;
// Fetched pieces are written without the WAL too, and count as stored once a
// flush has made them durable: when a memtable fills (write_buffer_size below),
// at Sync(), or when the store closes.
constexpr char kUploadOwner = 'u';
// Index entries (empty values) of torrent pieces, so listing a torrent's pieces
// reads no piece bytes.
constexpr char kTorrentOwner = 't';

absl::Status FromRocks(const rocksdb::Status& s, const std::string& what) {
  if (s.ok()) return absl::OkStatus();
  std::string msg = absl::StrCat(what, ": ", s.ToString());
  if (s.IsNotFound()) return absl::NotFoundError(msg);
  if (s.IsCorruption()) return absl::DataLossError(msg);
  if (s.IsNoSpace()) return absl::ResourceExhaustedError(msg);
  if (s.IsBusy() || s.IsTimedOut() || s.IsTryAgain())
    return absl::UnavailableError(msg);
  return absl::InternalError(msg);
}

std::string_view DigestView(const Sha256Digest& d) {
  return {reinterpret_cast<const char*>(d.data()), d.size()};
}

Sha256Digest DigestFrom(std::string_view s) {
  Sha256Digest d{};
  std::memcpy(d.data(), s.data(), std::min(s.size(), d.size()));
  return d;
}

std::string HaveKey(char owner, std::string_view id, uint32_t index) {
  std::string k;
  k.reserve(1 + id.size() + 4);
  k.push_back(owner);
  k.append(id);
  internal::AppendBE32(k, index);
  return k;
}

std::string HaveValue(const Sha256Digest& hash, int levels, uint32_t size) {
  std::string v(DigestView(hash));
  v.push_back(static_cast<char>(levels));
  internal::AppendBE32(v, size);
  return v;
}

std::string_view UploadView(const UploadId& u) {
  return {reinterpret_cast<const char*>(u.bytes.data()), u.bytes.size()};
}

struct ChunkInfo {
  uint32_t refs = 0;
  uint32_t size = 0;
  // The value is gone (found missing or corrupt) though haves still point at
  // it.
  bool lost = false;
  // The value was written without the WAL and may not be flushed yet: a crash
  // could lose it, so a WAL-logged add that needs it writes it again.
  bool volatile_value = false;
  // The bytes were hash-checked since the store opened (written by a caller
  // that verified them, or read and checked). Later reads rely on RocksDB's
  // CRC32C of the blob record instead of hashing the piece again.
  bool verified = false;
};

struct ContentEntry {
  ContentRecord record;
  // Readable pieces.
  std::vector<bool> have;
  // Fetched pieces written without the WAL and not yet flushed: readable, but
  // not counted in pieces_local until durable. Empty when none ever were.
  std::vector<bool> pending;
  // Durable pieces.
  uint32_t pieces_local = 0;

  bool IsPending(uint32_t i) const { return i < pending.size() && pending[i]; }
  bool pinned = false;
  // The last_access that the stored record holds (Touch writes it lazily).
  absl::Time stored_access = absl::InfinitePast();

  ContentState State() const { return {record, pieces_local, pinned}; }
  uint64_t LocalBytes() const {
    uint64_t n = 0;
    chunk::ContentLayout layout = record.layout();
    for (uint32_t i = 0; i < have.size(); ++i)
      if (have[i]) n += layout.piece_size(i);
    return n;
  }
};

struct UploadEntry {
  uint64_t length = 0;
  uint64_t reserved = 0;
  // Pieces are written without the WAL; commit flushes first.
  bool wal_less = false;
  // index -> (hash, levels, size) of each piece stored so far.
  absl::flat_hash_map<uint32_t, std::pair<Sha256Digest, uint32_t>> pieces;
};

class RocksDbChunkStore final : public ChunkStore {
 public:
  explicit RocksDbChunkStore(StoreOptions options)
      : options_(std::move(options)) {}

  ~RocksDbChunkStore() override {
    for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h);
    if (db_) db_->Close();
  }

  absl::Status Init();

  absl::StatusOr<UploadId> BeginUpload(uint64_t length) override;
  absl::Status PutUploadPiece(const UploadId& upload, uint32_t index,
                              const Sha256Digest& hash, int tree_levels,
                              std::span<const uint8_t> data) override;
  absl::StatusOr<ContentState> CommitUpload(const UploadId& upload,
                                            ContentRecord record) override;
  void AbortUpload(const UploadId& upload) override;
  absl::StatusOr<ContentState> CreateContent(ContentRecord record) override;
  absl::Status PutContentPiece(const ContentId& id, uint32_t index,
                               std::span<const uint8_t> data) override;
  absl::Status Sync() override;
  absl::StatusOr<ContentId> FindByTruncatedId(
      std::string_view prefix20) override;
  absl::StatusOr<std::vector<bool>> PiecesHeld(const ContentId& id) override;
  absl::StatusOr<std::string> ReadPiece(const ContentId& id,
                                        uint32_t index) override;
  absl::StatusOr<ContentState> PutDirectory(
      std::shared_ptr<const chunk::Directory> directory,
      std::string name) override;
  void RemoveOrphans(const std::vector<ContentId>& ids) override;
  absl::StatusOr<std::shared_ptr<const chunk::Directory>> GetDirectory(
      const ContentId& id) override;
  absl::Status Touch(const ContentId& id) override;
  absl::Status TouchLocked(ContentEntry& e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::optional<ContentBrief> Brief(const ContentId& id, bool touch) override;
  absl::StatusOr<ContentState> Stat(const ContentId& id) override;
  std::vector<ContentState> List() override;
  absl::Status SetPinned(const ContentId& id, bool pinned) override;
  absl::Status Remove(const ContentId& id) override;
  StoreStats Stats() override;
  absl::Status PutTorrentPiece(std::string_view torrent, uint32_t index,
                               std::string_view data) override;
  absl::StatusOr<std::string> ReadTorrentPiece(std::string_view torrent,
                                               uint32_t index) override;
  absl::StatusOr<std::vector<uint32_t>> TorrentPieces(
      std::string_view torrent) override;
  absl::Status RemoveTorrentPieces(std::string_view torrent) override;
  absl::StatusOr<std::string> GetState(std::string_view key) override;
  absl::Status PutState(std::string_view key, std::string_view value) override;
  absl::Status CorruptChunkForTesting(const Sha256Digest& hash,
                                      std::string_view bytes) override;

 private:
  rocksdb::ColumnFamilyHandle* chunks() { return handles_[1]; }
  rocksdb::ColumnFamilyHandle* contents() { return handles_[2]; }
  rocksdb::ColumnFamilyHandle* haves() { return handles_[3]; }
  rocksdb::ColumnFamilyHandle* pins() { return handles_[4]; }
  rocksdb::ColumnFamilyHandle* state() { return handles_[5]; }
  rocksdb::ColumnFamilyHandle* torrents() { return handles_[6]; }

  absl::Status Recover();
  // Adds to `batch` the removal of one reference to `hash`; returns the bytes
  // freed if it was the last one. `pending` counts references already dropped
  // in this batch.
  uint64_t DropRefLocked(const Sha256Digest& hash, rocksdb::WriteBatch& batch,
                         absl::flat_hash_map<Sha256Digest, uint32_t>& pending)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ApplyDroppedRefsLocked(
      const absl::flat_hash_map<Sha256Digest, uint32_t>& pending)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes one piece (the chunk if not already held, and the have under
  // `have_key`) in one batch, and counts the reference.
  absl::Status WritePieceLocked(const std::string& have_key,
                                const Sha256Digest& hash, int tree_levels,
                                std::span<const uint8_t> data, bool wal_less)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Counts as stored the fetched pieces that flushes up to `seq` made durable.
  void MarkDurableLocked(rocksdb::SequenceNumber seq)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status PutContentPieceLocked(const ContentId& id, uint32_t index,
                                     std::span<const uint8_t> data)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Removes one record and its pieces, nothing more.
  absl::Status RemoveLocked(const ContentId& id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Remove() (see the header): directories release their files.
  absl::Status RemoveContentLocked(const ContentId& id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Drops a directory's hold on its files, removing those nothing else holds.
  void ReleaseFilesLocked(const chunk::Directory& dir)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A file stored for directories only that none holds.
  bool IsOrphanLocked(const ContentEntry& e) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  ContentState StateLocked(const ContentEntry& e) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status EvictForLocked(uint64_t length)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status HandleBadChunk(const ContentId& id, uint32_t index,
                              const Sha256Digest& hash, std::string_view why);
  absl::Status WriteRecordLocked(const ContentRecord& record)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const StoreOptions options_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  rocksdb::WriteOptions write_options_;
  rocksdb::WriteOptions wal_less_options_;

  absl::Mutex mu_;
  absl::flat_hash_map<ContentId, ContentEntry> contents_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<Sha256Digest, ChunkInfo> chunks_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<UploadId, UploadEntry> uploads_ ABSL_GUARDED_BY(mu_);
  // Every content by the first 20 bytes of its ID (the v2 info-hash peers'
  // handshakes carry): a directory of 100,000 files makes a scan too slow.
  absl::flat_hash_map<std::string, ContentId> by_prefix_ ABSL_GUARDED_BY(mu_);
  void IndexLocked(const ContentId& id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    by_prefix_[std::string(id.AsStringView().substr(0, 20))] = id;
  }
  // For each file ID, how many stored directories hold it.
  absl::flat_hash_map<ContentId, uint32_t> dir_refs_ ABSL_GUARDED_BY(mu_);
  uint64_t used_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t reserved_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t data_loss_events_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t evictions_ ABSL_GUARDED_BY(mu_) = 0;
  // Fetched pieces waiting for a flush (see ContentEntry::pending).
  // In write order; `seq` is at least the sequence number of the piece's
  // batch.
  struct Unsynced {
    rocksdb::SequenceNumber seq;
    ContentId id;
    uint32_t index;
  };
  std::deque<Unsynced> unsynced_ ABSL_GUARDED_BY(mu_);
  // The largest sequence number a finished flush made durable (set by the
  // listener, which takes no lock of ours: a flush must never wait for mu_).
  std::shared_ptr<std::atomic<rocksdb::SequenceNumber>> flushed_seq_ =
      std::make_shared<std::atomic<rocksdb::SequenceNumber>>(0);
};

absl::Status RocksDbChunkStore::Init() {
  std::error_code ec;
  std::filesystem::create_directories(options_.dir, ec);
  if (ec) {
    return absl::InternalError(absl::StrCat(
        "cannot create ", options_.dir.string(), ": ", ec.message()));
  }

  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.max_background_jobs = 2;
  db_options.bytes_per_sync = 1 << 20;
  db_options.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
  db_options.keep_log_file_num = 3;
  // Large piece values fill the WAL quickly; bound it so recovery stays short.
  db_options.max_total_wal_size = 256 << 20;
  // Large adds skip the WAL (see kWalLessAddBytes); flushing every column
  // family at one sequence number keeps a chunk and the have that references it
  // on the same side of a crash.
  db_options.atomic_flush = true;
  db_options.listeners.push_back(std::make_shared<FlushListener>(flushed_seq_));

  rocksdb::ColumnFamilyOptions small;
  rocksdb::ColumnFamilyOptions blobs;
  blobs.enable_blob_files = true;
  blobs.min_blob_size = 4096;
  blobs.blob_file_size = 256 << 20;
  // No blob garbage collection: it rewrites live chunks during compaction
  // (and Debian's RocksDB checksums them with its portable, slow CRC32C). A
  // blob file is deleted once every chunk in it is gone; an add writes its
  // chunks side by side, so removing or evicting content frees whole files.
  blobs.enable_blob_garbage_collection = false;
  // Memtables hold piece bytes until a flush: keep them small (peak RSS).
  blobs.write_buffer_size = 4 << 20;
  blobs.max_write_buffer_number = 3;

  std::vector<rocksdb::ColumnFamilyDescriptor> cfs = {
      {rocksdb::kDefaultColumnFamilyName, small},
      {kChunksCf, blobs},
      {kContentsCf, small},
      {kHavesCf, small},
      {kPinsCf, small},
      {kStateCf, small},
      {kTorrentsCf, blobs},
  };
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(db_options, options_.dir.string(), cfs,
                                        &handles_, &raw);
  if (!s.ok()) {
    if (s.IsIOError() && s.ToString().find("lock") != std::string::npos) {
      return absl::UnavailableError(
          absl::StrCat("chunk store ", options_.dir.string(),
                       " is in use by another process"));
    }
    return FromRocks(
        s, absl::StrCat("opening chunk store ", options_.dir.string()));
  }
  db_.reset(raw);
  wal_less_options_.disableWAL = true;
  return Recover();
}

absl::Status RocksDbChunkStore::Recover() {
  absl::MutexLock lock(&mu_);
  rocksdb::ReadOptions ro;
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, contents()));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      auto record = internal::DecodeRecord(it->key().ToStringView(),
                                           it->value().ToStringView());
      if (!record.ok()) {
        spdlog::error("store: dropping unreadable content record {}: {}",
                      HexEncode(it->key().ToStringView()),
                      record.status().ToString());
        continue;
      }
      ContentEntry entry;
      if (!record->is_directory())
        entry.have.assign(record->layout().num_pieces(), false);
      entry.record = *std::move(record);
      if (entry.record.is_directory()) {
        for (const ContentId& f : entry.record.directory->file_ids())
          ++dir_refs_[f];
      }
      IndexLocked(entry.record.id);
      contents_[entry.record.id] = std::move(entry);
    }
    SHOAL_RETURN_IF_ERROR(FromRocks(it->status(), "reading content records"));
  }
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, pins()));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      auto c = contents_.find(ContentId::FromBytes(it->key().ToStringView()));
      if (c != contents_.end()) c->second.pinned = true;
    }
    SHOAL_RETURN_IF_ERROR(FromRocks(it->status(), "reading pins"));
  }
  rocksdb::WriteBatch cleanup;
  std::vector<Sha256Digest> upload_hashes;
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, haves()));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      std::string_view key = it->key().ToStringView();
      if (!key.empty() && key[0] == kTorrentOwner) continue;
      std::string_view value = it->value().ToStringView();
      if (key.size() < 5 || value.size() != 37) {
        cleanup.Delete(haves(), it->key());
        continue;
      }
      Sha256Digest hash = DigestFrom(value.substr(0, 32));
      uint32_t size = internal::ReadBE32(value.substr(33));
      if (key[0] == kUploadOwner) {
        // An add that a crash interrupted: roll it back.
        cleanup.Delete(haves(), it->key());
        upload_hashes.push_back(hash);
        continue;
      }
      uint32_t index = internal::ReadBE32(key.substr(key.size() - 4));
      auto c = contents_.find(ContentId::FromBytes(key.substr(1, 32)));
      if (key[0] != kContentOwner || key.size() != 37 || c == contents_.end() ||
          index >= c->second.have.size() ||
          c->second.record.piece_layer[index] != hash) {
        cleanup.Delete(haves(), it->key());
        upload_hashes.push_back(hash);
        continue;
      }
      if (!c->second.have[index]) {
        c->second.have[index] = true;
        ++c->second.pieces_local;
      }
      ChunkInfo& info = chunks_[hash];
      ++info.refs;
      info.size = size;
    }
    SHOAL_RETURN_IF_ERROR(FromRocks(it->status(), "reading piece index"));
  }
  for (const Sha256Digest& h : upload_hashes) {
    if (!chunks_.contains(h)) cleanup.Delete(chunks(), DigestView(h));
  }
  if (cleanup.Count() > 0) {
    spdlog::info("store: rolled back {} piece entries of interrupted adds",
                 upload_hashes.size());
    SHOAL_RETURN_IF_ERROR(
        FromRocks(db_->Write(write_options_, &cleanup), "rolling back adds"));
  }
  for (const auto& [hash, info] : chunks_) used_bytes_ += info.size;
  // Files of a directory add that a crash interrupted.
  std::vector<ContentId> orphans;
  for (const auto& [id, e] : contents_)
    if (IsOrphanLocked(e)) orphans.push_back(id);
  for (const ContentId& id : orphans) SHOAL_RETURN_IF_ERROR(RemoveLocked(id));
  if (!orphans.empty()) {
    spdlog::info("store: removed {} files of an interrupted directory add",
                 orphans.size());
  }
  return absl::OkStatus();
}

bool RocksDbChunkStore::IsOrphanLocked(const ContentEntry& e) const {
  return e.record.in_directory_only && !e.pinned &&
         !dir_refs_.contains(e.record.id);
}

ContentState RocksDbChunkStore::StateLocked(const ContentEntry& e) const {
  ContentState st = e.State();
  if (e.record.is_directory()) {
    for (const ContentId& f : e.record.directory->file_ids()) {
      auto c = contents_.find(f);
      if (c != contents_.end() &&
          c->second.pieces_local == c->second.have.size())
        ++st.files_local;
    }
  }
  return st;
}

absl::StatusOr<ContentState> RocksDbChunkStore::PutDirectory(
    std::shared_ptr<const chunk::Directory> directory, std::string name) {
  absl::MutexLock lock(&mu_);
  MarkDurableLocked(flushed_seq_->load());
  const ContentId id = directory->id();
  if (auto c = contents_.find(id); c != contents_.end())
    return StateLocked(c->second);
  ContentRecord record;
  record.id = id;
  record.length = directory->total_length();
  record.piece_length = directory->piece_length();
  record.name = std::move(name);
  record.added = record.last_access = options_.clock();
  record.directory = std::move(directory);
  SHOAL_RETURN_IF_ERROR(WriteRecordLocked(record));
  for (const ContentId& f : record.directory->file_ids()) ++dir_refs_[f];
  // Empty files have nothing to fetch: they are held at once.
  const auto& files = record.directory->files();
  for (size_t i = 0; i < files.size(); ++i) {
    const ContentId& fid = record.directory->file_id(i);
    if (files[i].length > 0 || contents_.contains(fid)) continue;
    ContentRecord empty;
    empty.id = fid;
    empty.piece_length = chunk::kMinCanonicalPieceLength;
    empty.added = empty.last_access = record.added;
    empty.in_directory_only = true;
    SHOAL_RETURN_IF_ERROR(WriteRecordLocked(empty));
    contents_[fid].record = std::move(empty);
    IndexLocked(fid);
  }
  IndexLocked(id);
  ContentEntry& e = contents_[id];
  e.record = std::move(record);
  return StateLocked(e);
}

absl::StatusOr<std::shared_ptr<const chunk::Directory>>
RocksDbChunkStore::GetDirectory(const ContentId& id) {
  absl::MutexLock lock(&mu_);
  auto c = contents_.find(id);
  if (c == contents_.end() || !c->second.record.is_directory())
    return absl::NotFoundError(absl::StrCat("no directory ", id.Hex()));
  return c->second.record.directory;
}

void RocksDbChunkStore::RemoveOrphans(const std::vector<ContentId>& ids) {
  absl::MutexLock lock(&mu_);
  for (const ContentId& id : ids) {
    auto c = contents_.find(id);
    if (c == contents_.end() || !IsOrphanLocked(c->second)) continue;
    if (absl::Status s = RemoveLocked(id); !s.ok())
      spdlog::warn("store: removing {}: {}", id.Hex(), s.ToString());
  }
}

void RocksDbChunkStore::ReleaseFilesLocked(const chunk::Directory& dir) {
  for (const ContentId& fid : dir.file_ids()) {
    auto r = dir_refs_.find(fid);
    if (r == dir_refs_.end()) continue;
    if (--r->second > 0) continue;
    dir_refs_.erase(r);
    auto c = contents_.find(fid);
    if (c == contents_.end() || !IsOrphanLocked(c->second)) continue;
    if (absl::Status s = RemoveLocked(fid); !s.ok()) {
      // Its record stays, an orphan that the next open removes.
      spdlog::warn("store: removing {} of directory {}: {}", fid.Hex(),
                   dir.id().Hex(), s.ToString());
    }
  }
}

absl::Status RocksDbChunkStore::RemoveContentLocked(const ContentId& id) {
  auto c = contents_.find(id);
  if (c == contents_.end())
    return absl::NotFoundError(absl::StrCat("no content ", id.Hex()));
  if (c->second.record.is_directory()) {
    std::shared_ptr<const chunk::Directory> dir = c->second.record.directory;
    SHOAL_RETURN_IF_ERROR(RemoveLocked(id));
    ReleaseFilesLocked(*dir);
    return absl::OkStatus();
  }
  if (dir_refs_.contains(id)) {
    ContentEntry& e = c->second;
    if (e.record.in_directory_only) {
      for (const auto& [did, d] : contents_) {
        if (!d.record.is_directory()) continue;
        const chunk::Directory& dir = *d.record.directory;
        for (size_t i = 0; i < dir.files().size(); ++i) {
          if (dir.file_id(i) == id) {
            return absl::FailedPreconditionError(absl::StrCat(
                "content ", id.Hex(), " is file '", dir.files()[i].path,
                "' of directory ", did.Hex(), ": remove the directory"));
          }
        }
      }
    }
    // Added on its own as well: it stays, for the directories.
    e.record.in_directory_only = true;
    rocksdb::WriteBatch batch;
    batch.Put(contents(), id.AsStringView(), internal::EncodeRecord(e.record));
    batch.Delete(pins(), id.AsStringView());
    SHOAL_RETURN_IF_ERROR(
        FromRocks(db_->Write(write_options_, &batch), "removing content"));
    e.pinned = false;
    return absl::OkStatus();
  }
  return RemoveLocked(id);
}

absl::StatusOr<UploadId> RocksDbChunkStore::BeginUpload(uint64_t length) {
  absl::MutexLock lock(&mu_);
  if (options_.capacity_bytes > 0)
    SHOAL_RETURN_IF_ERROR(EvictForLocked(length));
  UploadId id;
  do {
    randombytes_buf(id.bytes.data(), id.bytes.size());
  } while (uploads_.contains(id));
  UploadEntry& up = uploads_[id];
  up.length = length;
  up.reserved = length;
  up.wal_less = length >= kWalLessAddBytes;
  reserved_bytes_ += length;
  return id;
}

absl::Status RocksDbChunkStore::EvictForLocked(uint64_t length) {
  const uint64_t cap = options_.capacity_bytes;
  auto fits = [&] { return used_bytes_ + reserved_bytes_ + length <= cap; };
  if (fits()) return absl::OkStatus();
  // Check first that evicting every unpinned content could make room, so a
  // hopeless add evicts nothing.
  uint64_t pinned_bytes = 0;
  absl::flat_hash_set<ContentId> kept;  // files of pinned directories
  for (const auto& [id, e] : contents_) {
    if (!e.pinned || !e.record.is_directory()) continue;
    for (const ContentId& f : e.record.directory->file_ids()) kept.insert(f);
  }
  for (const auto& [id, e] : contents_)
    if (e.pinned || kept.contains(id)) pinned_bytes += e.LocalBytes();
  if (pinned_bytes + reserved_bytes_ + length > cap) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "store capacity exceeded: ", length, " bytes needed, capacity ", cap,
        ", ", pinned_bytes, " bytes pinned, ", reserved_bytes_,
        " reserved by adds in progress"));
  }
  while (!fits()) {
    const ContentEntry* victim = nullptr;
    for (const auto& [id, e] : contents_) {
      // Files that directories hold go with their directories.
      if (e.pinned || dir_refs_.contains(id)) continue;
      if (victim == nullptr ||
          e.record.last_access < victim->record.last_access ||
          (e.record.last_access == victim->record.last_access &&
           id < victim->record.id)) {
        victim = &e;
      }
    }
    if (victim == nullptr) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "store capacity exceeded: ", length, " bytes needed, ",
          cap - std::min(cap, used_bytes_), " free and nothing left to evict"));
    }
    ContentId id = victim->record.id;
    spdlog::info("store: evicting {} ({} bytes, last access {})", id.Hex(),
                 victim->record.length,
                 absl::FormatTime(victim->record.last_access));
    SHOAL_RETURN_IF_ERROR(RemoveContentLocked(id));
    ++evictions_;
  }
  return absl::OkStatus();
}

absl::Status RocksDbChunkStore::WritePieceLocked(const std::string& have_key,
                                                 const Sha256Digest& hash,
                                                 int tree_levels,
                                                 std::span<const uint8_t> data,
                                                 bool wal_less) {
  const uint32_t size = static_cast<uint32_t>(data.size());
  rocksdb::WriteBatch batch;
  auto c = chunks_.find(hash);
  // A chunk written without the WAL may not survive a crash: a WAL-logged write
  // that relies on it writes it again.
  const bool write_value = c == chunks_.end() || c->second.lost ||
                           (c->second.volatile_value && !wal_less);
  if (write_value) {
    const char levels = static_cast<char>(tree_levels);
    rocksdb::Slice key(DigestView(hash));
    rocksdb::Slice parts[2] = {
        rocksdb::Slice(reinterpret_cast<const char*>(data.data()), data.size()),
        rocksdb::Slice(&levels, 1)};
    batch.Put(chunks(), rocksdb::SliceParts(&key, 1),
              rocksdb::SliceParts(parts, 2));
  }
  batch.Put(haves(), have_key, HaveValue(hash, tree_levels, size));
  SHOAL_RETURN_IF_ERROR(FromRocks(
      db_->Write(wal_less ? wal_less_options_ : write_options_, &batch),
      "writing piece"));
  ChunkInfo& info = chunks_[hash];
  ++info.refs;
  info.size = size;
  if (write_value) {
    if (info.refs == 1 || info.lost) used_bytes_ += size;
    info.lost = false;
    info.volatile_value = wal_less;
    info.verified = true;
  }
  return absl::OkStatus();
}

absl::Status RocksDbChunkStore::PutUploadPiece(const UploadId& upload,
                                               uint32_t index,
                                               const Sha256Digest& hash,
                                               int tree_levels,
                                               std::span<const uint8_t> data) {
  absl::MutexLock lock(&mu_);
  auto u = uploads_.find(upload);
  if (u == uploads_.end()) return absl::NotFoundError("unknown upload");
  UploadEntry& up = u->second;
  if (up.pieces.contains(index)) return absl::OkStatus();
  const uint32_t size = static_cast<uint32_t>(data.size());

  SHOAL_RETURN_IF_ERROR(
      WritePieceLocked(HaveKey(kUploadOwner, UploadView(upload), index), hash,
                       tree_levels, data, up.wal_less));
  up.pieces[index] = {hash, size};
  uint64_t release = std::min<uint64_t>(up.reserved, size);
  up.reserved -= release;
  reserved_bytes_ -= release;
  return absl::OkStatus();
}

absl::StatusOr<ContentState> RocksDbChunkStore::CommitUpload(
    const UploadId& upload, ContentRecord record) {
  bool flushed = false;
  {
    absl::MutexLock lock(&mu_);
    auto u = uploads_.find(upload);
    if (u == uploads_.end()) return absl::NotFoundError("unknown upload");
    flushed = u->second.wal_less;
  }
  if (flushed) {
    // The pieces were written without the WAL: make them durable before the
    // record that refers to them. Outside the lock, as a flush takes a while.
    rocksdb::FlushOptions fo;
    fo.wait = true;
    fo.allow_write_stall = true;
    SHOAL_RETURN_IF_ERROR(FromRocks(db_->Flush(fo, handles_), "flushing add"));
  }
  absl::MutexLock lock(&mu_);
  auto u = uploads_.find(upload);
  if (u == uploads_.end()) return absl::NotFoundError("unknown upload");
  UploadEntry& up = u->second;
  const uint32_t n = record.layout().num_pieces();
  if (record.piece_layer.size() != n || up.pieces.size() != n) {
    return absl::FailedPreconditionError(
        absl::StrCat("upload has ", up.pieces.size(), " of ", n, " pieces"));
  }
  for (uint32_t i = 0; i < n; ++i) {
    auto p = up.pieces.find(i);
    if (p == up.pieces.end() || p->second.first != record.piece_layer[i]) {
      return absl::FailedPreconditionError(
          absl::StrCat("upload piece ", i, " is missing"));
    }
  }

  auto existing = contents_.find(record.id);
  ContentEntry fresh;
  ContentEntry& entry = existing != contents_.end() ? existing->second : fresh;
  const absl::Time now = options_.clock();
  if (existing == contents_.end()) {
    record.added = now;
    record.last_access = now;
    entry.record = std::move(record);
    entry.have.assign(n, false);
  } else {
    entry.record.last_access = now;
    if (!record.in_directory_only) entry.record.in_directory_only = false;
  }

  rocksdb::WriteBatch batch;
  absl::flat_hash_map<Sha256Digest, uint32_t> dropped;
  uint64_t freed = 0;
  std::vector<uint32_t> gained;
  std::vector<uint32_t> made_durable;
  for (const auto& [index, piece] : up.pieces) {
    batch.Delete(haves(), HaveKey(kUploadOwner, UploadView(upload), index));
    // A fetched piece not yet flushed: the add's chunk is durable, so its have
    // is logged now. It already holds the chunk's reference, like a held one.
    const bool pending = entry.IsPending(index);
    if (entry.have[index]) freed += DropRefLocked(piece.first, batch, dropped);
    if (pending || !entry.have[index]) {
      batch.Put(
          haves(),
          HaveKey(kContentOwner, entry.record.id.AsStringView(), index),
          HaveValue(piece.first, entry.record.layout().piece_tree_levels(index),
                    piece.second));
      (pending ? made_durable : gained).push_back(index);
    }
  }
  batch.Put(contents(), entry.record.id.AsStringView(),
            internal::EncodeRecord(entry.record));
  SHOAL_RETURN_IF_ERROR(
      FromRocks(db_->Write(write_options_, &batch), "committing add"));

  ApplyDroppedRefsLocked(dropped);
  used_bytes_ -= freed;
  if (flushed) {
    for (const auto& [index, piece] : up.pieces) {
      auto c = chunks_.find(piece.first);
      if (c != chunks_.end()) c->second.volatile_value = false;
    }
  }
  for (uint32_t i : gained) entry.have[i] = true;
  entry.pieces_local += gained.size();
  for (uint32_t i : made_durable) entry.pending[i] = false;
  entry.pieces_local += made_durable.size();
  reserved_bytes_ -= up.reserved;
  uploads_.erase(u);
  if (existing == contents_.end()) {
    IndexLocked(entry.record.id);
    contents_[entry.record.id] = std::move(fresh);
  }
  return contents_[entry.record.id].State();
}

void RocksDbChunkStore::AbortUpload(const UploadId& upload) {
  absl::MutexLock lock(&mu_);
  auto u = uploads_.find(upload);
  if (u == uploads_.end()) return;
  rocksdb::WriteBatch batch;
  absl::flat_hash_map<Sha256Digest, uint32_t> dropped;
  uint64_t freed = 0;
  for (const auto& [index, piece] : u->second.pieces) {
    batch.Delete(haves(), HaveKey(kUploadOwner, UploadView(upload), index));
    freed += DropRefLocked(piece.first, batch, dropped);
  }
  rocksdb::Status s = db_->Write(write_options_, &batch);
  if (!s.ok()) {
    // The haves stay behind; the next open rolls them back.
    spdlog::warn("store: aborting add: {}", s.ToString());
  } else {
    ApplyDroppedRefsLocked(dropped);
    used_bytes_ -= freed;
  }
  reserved_bytes_ -= u->second.reserved;
  uploads_.erase(u);
}

uint64_t RocksDbChunkStore::DropRefLocked(
    const Sha256Digest& hash, rocksdb::WriteBatch& batch,
    absl::flat_hash_map<Sha256Digest, uint32_t>& pending) {
  auto c = chunks_.find(hash);
  if (c == chunks_.end()) return 0;
  uint32_t& dropped = pending[hash];
  ++dropped;
  if (dropped < c->second.refs) return 0;
  batch.Delete(chunks(), DigestView(hash));
  return c->second.lost ? 0 : c->second.size;
}

void RocksDbChunkStore::ApplyDroppedRefsLocked(
    const absl::flat_hash_map<Sha256Digest, uint32_t>& pending) {
  for (const auto& [hash, n] : pending) {
    auto c = chunks_.find(hash);
    if (c == chunks_.end()) continue;
    if (n >= c->second.refs) {
      chunks_.erase(c);
    } else {
      c->second.refs -= n;
    }
  }
}

absl::Status RocksDbChunkStore::RemoveLocked(const ContentId& id) {
  auto c = contents_.find(id);
  if (c == contents_.end())
    return absl::NotFoundError(absl::StrCat("no content ", id.Hex()));
  ContentEntry& e = c->second;
  rocksdb::WriteBatch batch;
  absl::flat_hash_map<Sha256Digest, uint32_t> dropped;
  uint64_t freed = 0;
  for (uint32_t i = 0; i < e.have.size(); ++i) {
    if (!e.have[i]) continue;
    batch.Delete(haves(), HaveKey(kContentOwner, id.AsStringView(), i));
    freed += DropRefLocked(e.record.piece_layer[i], batch, dropped);
  }
  batch.Delete(contents(), id.AsStringView());
  batch.Delete(pins(), id.AsStringView());
  SHOAL_RETURN_IF_ERROR(
      FromRocks(db_->Write(write_options_, &batch), "removing content"));
  ApplyDroppedRefsLocked(dropped);
  used_bytes_ -= freed;
  by_prefix_.erase(std::string(id.AsStringView().substr(0, 20)));
  contents_.erase(c);
  return absl::OkStatus();
}

absl::StatusOr<ContentState> RocksDbChunkStore::CreateContent(
    ContentRecord record) {
  absl::MutexLock lock(&mu_);
  if (auto c = contents_.find(record.id); c != contents_.end()) {
    return c->second.State();
  }
  const uint32_t n = record.layout().num_pieces();
  if (record.piece_layer.size() != n) {
    return absl::InvalidArgumentError("piece layer does not match the length");
  }
  if (options_.capacity_bytes > 0) {
    SHOAL_RETURN_IF_ERROR(EvictForLocked(record.length));
  }
  const absl::Time now = options_.clock();
  record.added = now;
  record.last_access = now;
  record.in_directory_only = dir_refs_.contains(record.id);
  SHOAL_RETURN_IF_ERROR(WriteRecordLocked(record));
  ContentEntry entry;
  entry.have.assign(n, false);
  entry.record = std::move(record);
  ContentId id = entry.record.id;
  IndexLocked(id);
  auto& e = contents_[id] = std::move(entry);
  return e.State();
}

absl::Status RocksDbChunkStore::PutContentPiece(const ContentId& id,
                                                uint32_t index,
                                                std::span<const uint8_t> data) {
  bool last = false;
  {
    absl::MutexLock lock(&mu_);
    SHOAL_RETURN_IF_ERROR(PutContentPieceLocked(id, index, data));
    // The content's last missing piece: make the whole of it durable before
    // the caller reports it complete.
    const ContentEntry& e = contents_.find(id)->second;
    last = std::find(e.have.begin(), e.have.end(), false) == e.have.end();
  }
  return last ? Sync() : absl::OkStatus();
}

absl::Status RocksDbChunkStore::PutContentPieceLocked(
    const ContentId& id, uint32_t index, std::span<const uint8_t> data) {
  auto c = contents_.find(id);
  if (c == contents_.end()) {
    return absl::NotFoundError(absl::StrCat("no content ", id.Hex()));
  }
  ContentEntry& e = c->second;
  if (index >= e.have.size()) {
    return absl::OutOfRangeError(
        absl::StrCat("piece ", index, " out of range"));
  }
  const chunk::ContentLayout layout = e.record.layout();
  if (data.size() != layout.piece_size(index)) {
    return absl::InvalidArgumentError(absl::StrCat("piece ", index, " has ",
                                                   data.size(), " bytes, want ",
                                                   layout.piece_size(index)));
  }
  if (e.have[index]) return absl::OkStatus();
  const Sha256Digest& hash = e.record.piece_layer[index];
  const int levels = layout.piece_tree_levels(index);
  SHOAL_RETURN_IF_ERROR(
      WritePieceLocked(HaveKey(kContentOwner, id.AsStringView(), index), hash,
                       levels, data, /*wal_less=*/true));
  e.have[index] = true;
  if (e.pending.empty()) e.pending.assign(e.have.size(), false);
  e.pending[index] = true;
  unsynced_.push_back({db_->GetLatestSequenceNumber(), id, index});
  MarkDurableLocked(flushed_seq_->load());
  return absl::OkStatus();
}

absl::Status RocksDbChunkStore::Sync() {
  rocksdb::SequenceNumber target;
  {
    absl::MutexLock lock(&mu_);
    MarkDurableLocked(flushed_seq_->load());
    if (unsynced_.empty()) return absl::OkStatus();
    target = unsynced_.back().seq;
  }
  // Every piece recorded so far was written before this flush began, so the
  // flush makes it durable (with its have: all column families flush
  // atomically).
  rocksdb::FlushOptions fo;
  fo.wait = true;
  fo.allow_write_stall = true;
  SHOAL_RETURN_IF_ERROR(
      FromRocks(db_->Flush(fo, handles_), "flushing fetched pieces"));
  absl::MutexLock lock(&mu_);
  MarkDurableLocked(std::max(target, flushed_seq_->load()));
  return absl::OkStatus();
}

void RocksDbChunkStore::MarkDurableLocked(rocksdb::SequenceNumber seq) {
  while (!unsynced_.empty() && unsynced_.front().seq <= seq) {
    const Unsynced u = unsynced_.front();
    unsynced_.pop_front();
    auto c = contents_.find(u.id);
    if (c == contents_.end() || !c->second.IsPending(u.index)) continue;
    ContentEntry& e = c->second;
    e.pending[u.index] = false;
    ++e.pieces_local;
    if (auto info = chunks_.find(e.record.piece_layer[u.index]);
        info != chunks_.end()) {
      info->second.volatile_value = false;
    }
  }
}

absl::StatusOr<std::vector<bool>> RocksDbChunkStore::PiecesHeld(
    const ContentId& id) {
  absl::MutexLock lock(&mu_);
  auto c = contents_.find(id);
  if (c == contents_.end()) {
    return absl::NotFoundError(absl::StrCat("no content ", id.Hex()));
  }
  return c->second.have;
}

absl::StatusOr<ContentId> RocksDbChunkStore::FindByTruncatedId(
    std::string_view prefix20) {
  absl::MutexLock lock(&mu_);
  if (prefix20.size() != 20) return absl::InvalidArgumentError("need 20 bytes");
  auto it = by_prefix_.find(std::string(prefix20));
  if (it == by_prefix_.end())
    return absl::NotFoundError("no content with that info-hash");
  return it->second;
}

absl::Status RocksDbChunkStore::Remove(const ContentId& id) {
  absl::MutexLock lock(&mu_);
  return RemoveContentLocked(id);
}

absl::StatusOr<std::string> RocksDbChunkStore::ReadPiece(const ContentId& id,
                                                         uint32_t index) {
  Sha256Digest hash;
  int levels;
  uint32_t size;
  bool verified = false;
  {
    absl::MutexLock lock(&mu_);
    auto c = contents_.find(id);
    if (c == contents_.end())
      return absl::NotFoundError(absl::StrCat("no content ", id.Hex()));
    const ContentEntry& e = c->second;
    if (index >= e.have.size()) {
      return absl::OutOfRangeError(absl::StrCat(
          "piece ", index, " is past the last piece ", e.have.size()));
    }
    if (!e.have[index]) {
      return absl::UnavailableError(absl::StrCat(
          "piece ", index, " of ", id.Hex(), " is not stored here"));
    }
    hash = e.record.piece_layer[index];
    levels = e.record.layout().piece_tree_levels(index);
    size = e.record.layout().piece_size(index);
    if (auto info = chunks_.find(hash); info != chunks_.end())
      verified = info->second.verified;
  }
  std::string value;
  rocksdb::ReadOptions ro;
  // RocksDB checks the CRC32C of every blob record it reads (with ISA-L's
  // CRC32C, see internal/fast_crc32c.h), which catches bytes damaged on disk;
  // the piece's hash is checked at its first read since the store opened.
  ro.verify_checksums = true;
  rocksdb::Status s = db_->Get(ro, chunks(), DigestView(hash), &value);
  if (s.IsNotFound()) return HandleBadChunk(id, index, hash, "chunk missing");
  if (s.IsCorruption()) return HandleBadChunk(id, index, hash, s.ToString());
  SHOAL_RETURN_IF_ERROR(FromRocks(s, "reading chunk"));
  if (value.size() != size + 1 ||
      static_cast<int>(static_cast<uint8_t>(value.back())) != levels) {
    return HandleBadChunk(id, index, hash, "chunk has the wrong size");
  }
  value.pop_back();  // the tree height, stored last so that dropping it is free
  if (!verified) {
    if (chunk::HashPiece(codec::AsBytes(value), levels) != hash) {
      return HandleBadChunk(id, index, hash, "chunk fails its hash");
    }
    absl::MutexLock lock(&mu_);
    if (auto info = chunks_.find(hash); info != chunks_.end())
      info->second.verified = true;
  }
  return value;
}

absl::Status RocksDbChunkStore::HandleBadChunk(const ContentId& id,
                                               uint32_t index,
                                               const Sha256Digest& hash,
                                               std::string_view why) {
  absl::MutexLock lock(&mu_);
  ++data_loss_events_;
  spdlog::error("store: DATA LOSS: piece {} of {} (chunk {}): {}; dropped",
                index, id.Hex(), HexEncode(DigestView(hash)), why);
  auto c = contents_.find(id);
  auto info = chunks_.find(hash);
  if (c != contents_.end() && index < c->second.have.size() &&
      c->second.have[index] && info != chunks_.end()) {
    rocksdb::WriteBatch batch;
    batch.Delete(haves(), HaveKey(kContentOwner, id.AsStringView(), index));
    batch.Delete(chunks(), DigestView(hash));
    rocksdb::Status s = db_->Write(write_options_, &batch);
    if (s.ok()) {
      c->second.have[index] = false;
      if (c->second.IsPending(index)) {
        c->second.pending[index] = false;
      } else {
        --c->second.pieces_local;
      }
      if (!info->second.lost) used_bytes_ -= info->second.size;
      info->second.lost = true;
      if (--info->second.refs == 0) chunks_.erase(info);
    } else {
      spdlog::error("store: dropping bad chunk: {}", s.ToString());
    }
  }
  return absl::DataLossError(absl::StrCat(
      "piece ", index, " of ", id.Hex(), " was corrupt on disk (",
      std::string(why), "); it was dropped and the content is incomplete"));
}

absl::Status RocksDbChunkStore::WriteRecordLocked(const ContentRecord& record) {
  return FromRocks(
      db_->Put(write_options_, contents(), record.id.AsStringView(),
               internal::EncodeRecord(record)),
      "writing content record");
}

absl::Status RocksDbChunkStore::Touch(const ContentId& id) {
  absl::MutexLock lock(&mu_);
  auto c = contents_.find(id);
  if (c == contents_.end())
    return absl::NotFoundError(absl::StrCat("no content ", id.Hex()));
  return TouchLocked(c->second);
}

absl::Status RocksDbChunkStore::TouchLocked(ContentEntry& e) {
  const absl::Time now = options_.clock();
  e.record.last_access = now;
  // Reads are frequent (a gateway serves thousands a second): the stored
  // record follows at most once a minute. Eviction order only needs minutes,
  // and after a crash an access is at most a minute older than it was.
  if (now - e.stored_access < absl::Minutes(1)) return absl::OkStatus();
  e.stored_access = now;
  return WriteRecordLocked(e.record);
}

std::optional<ContentBrief> RocksDbChunkStore::Brief(const ContentId& id,
                                                     bool touch) {
  absl::MutexLock lock(&mu_);
  auto c = contents_.find(id);
  if (c == contents_.end()) return std::nullopt;
  ContentEntry& e = c->second;
  ContentBrief b;
  b.length = e.record.length;
  b.piece_length = e.record.piece_length;
  b.directory = e.record.directory;
  b.complete = !b.directory && e.pieces_local == e.record.layout().num_pieces();
  if (touch) {
    if (absl::Status s = TouchLocked(e); !s.ok())
      spdlog::warn("store: recording an access to {}: {}", id.Hex(),
                   s.ToString());
  }
  return b;
}

absl::StatusOr<ContentState> RocksDbChunkStore::Stat(const ContentId& id) {
  absl::MutexLock lock(&mu_);
  MarkDurableLocked(flushed_seq_->load());
  auto c = contents_.find(id);
  if (c == contents_.end())
    return absl::NotFoundError(absl::StrCat("no content ", id.Hex()));
  return StateLocked(c->second);
}

std::vector<ContentState> RocksDbChunkStore::List() {
  absl::MutexLock lock(&mu_);
  MarkDurableLocked(flushed_seq_->load());
  std::vector<ContentState> out;
  out.reserve(contents_.size());
  for (const auto& [id, e] : contents_) out.push_back(StateLocked(e));
  std::sort(out.begin(), out.end(),
            [](const ContentState& a, const ContentState& b) {
              return a.record.id < b.record.id;
            });
  return out;
}

absl::Status RocksDbChunkStore::SetPinned(const ContentId& id, bool pinned) {
  absl::MutexLock lock(&mu_);
  auto c = contents_.find(id);
  if (c == contents_.end())
    return absl::NotFoundError(absl::StrCat("no content ", id.Hex()));
  rocksdb::WriteBatch batch;
  if (pinned) {
    batch.Put(pins(), id.AsStringView(), "");
    // Pinned on its own, a directory's file is held by more than directories.
    if (c->second.record.in_directory_only) {
      ContentRecord r = c->second.record;
      r.in_directory_only = false;
      batch.Put(contents(), id.AsStringView(), internal::EncodeRecord(r));
    }
  } else {
    batch.Delete(pins(), id.AsStringView());
  }
  SHOAL_RETURN_IF_ERROR(
      FromRocks(db_->Write(write_options_, &batch), "writing pin"));
  c->second.pinned = pinned;
  if (pinned) c->second.record.in_directory_only = false;
  return absl::OkStatus();
}

StoreStats RocksDbChunkStore::Stats() {
  absl::MutexLock lock(&mu_);
  StoreStats s;
  s.capacity_bytes = options_.capacity_bytes;
  s.used_bytes = used_bytes_;
  s.reserved_bytes = reserved_bytes_;
  s.num_contents = contents_.size();
  s.num_chunks = chunks_.size();
  s.data_loss_events = data_loss_events_;
  s.evictions = evictions_;
  return s;
}

absl::StatusOr<std::string> RocksDbChunkStore::GetState(std::string_view key) {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), state(), key, &value);
  if (s.IsNotFound())
    return absl::NotFoundError(absl::StrCat("no state ", std::string(key)));
  SHOAL_RETURN_IF_ERROR(FromRocks(s, "reading node state"));
  return value;
}

std::string TorrentPrefix(std::string_view torrent) {
  std::string k(1, static_cast<char>(torrent.size()));
  k.append(torrent);
  return k;
}

std::string TorrentPieceKey(std::string_view torrent, uint32_t index) {
  std::string k = TorrentPrefix(torrent);
  internal::AppendBE32(k, index);
  return k;
}

absl::Status RocksDbChunkStore::PutTorrentPiece(std::string_view torrent,
                                                uint32_t index,
                                                std::string_view data) {
  const std::string key = TorrentPieceKey(torrent, index);
  rocksdb::WriteBatch batch;
  batch.Put(torrents(), key, data);
  batch.Put(haves(), std::string(1, kTorrentOwner) + key, "");
  return FromRocks(db_->Write(write_options_, &batch), "writing torrent piece");
}

absl::StatusOr<std::string> RocksDbChunkStore::ReadTorrentPiece(
    std::string_view torrent, uint32_t index) {
  std::string value;
  rocksdb::ReadOptions ro;
  ro.verify_checksums = true;
  rocksdb::Status s =
      db_->Get(ro, torrents(), TorrentPieceKey(torrent, index), &value);
  if (s.IsNotFound()) {
    return absl::UnavailableError(
        absl::StrCat("piece ", index, " is not stored here"));
  }
  SHOAL_RETURN_IF_ERROR(FromRocks(s, absl::StrCat("reading piece ", index)));
  return value;
}

absl::StatusOr<std::vector<uint32_t>> RocksDbChunkStore::TorrentPieces(
    std::string_view torrent) {
  const std::string prefix = kTorrentOwner + TorrentPrefix(torrent);
  std::vector<uint32_t> out;
  rocksdb::ReadOptions ro;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, haves()));
  for (it->Seek(prefix); it->Valid(); it->Next()) {
    std::string_view key = it->key().ToStringView();
    if (key.size() != prefix.size() + 4 || !key.starts_with(prefix)) break;
    out.push_back(internal::ReadBE32(key.substr(prefix.size())));
  }
  SHOAL_RETURN_IF_ERROR(FromRocks(it->status(), "listing torrent pieces"));
  return out;
}

absl::Status RocksDbChunkStore::RemoveTorrentPieces(std::string_view torrent) {
  const std::string begin = TorrentPrefix(torrent);
  std::string end = begin;
  end.append(5, '\xff');  // past every 4-byte index
  rocksdb::WriteBatch batch;
  batch.DeleteRange(torrents(), begin, end);
  batch.DeleteRange(haves(), kTorrentOwner + begin, kTorrentOwner + end);
  return FromRocks(db_->Write(write_options_, &batch),
                   "removing torrent pieces");
}

absl::Status RocksDbChunkStore::PutState(std::string_view key,
                                         std::string_view value) {
  return FromRocks(db_->Put(write_options_, state(), key, value),
                   "writing node state");
}

absl::Status RocksDbChunkStore::CorruptChunkForTesting(const Sha256Digest& hash,
                                                       std::string_view bytes) {
  {
    // Bytes replaced behind the store's back, with a valid CRC: only the hash
    // check can tell, as for damage found at the first read after an open.
    absl::MutexLock lock(&mu_);
    if (auto info = chunks_.find(hash); info != chunks_.end())
      info->second.verified = false;
  }
  return FromRocks(db_->Put(write_options_, chunks(), DigestView(hash), bytes),
                   "corrupting");
}

}  // namespace

absl::StatusOr<std::unique_ptr<ChunkStore>> ChunkStore::Open(
    StoreOptions options) {
  if (sodium_init() < 0)
    return absl::InternalError("libsodium failed to initialize");
  static const bool fast_crc = [] {
    bool active = internal::FastCrc32cActive();
    if (!active)
      spdlog::warn("store: RocksDB is using its slow portable CRC32C");
    return active;
  }();
  (void)fast_crc;
  auto store = std::make_unique<RocksDbChunkStore>(std::move(options));
  SHOAL_RETURN_IF_ERROR(store->Init());
  return store;
}

}  // namespace shoal::store
