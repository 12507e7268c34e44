// The RocksDB chunk store's internals (store/chunk_store.h is the interface):
// its column families, key layouts, in-memory index and the class itself,
// shared by its source files (chunk_store.cc: opening, recovery, adds, reads;
// chunk_store_contents.cc: directories, removal and eviction, pins, state and
// torrent pieces). Not for use outside store/.
#ifndef SHOAL_STORE_INTERNAL_ROCKSDB_CHUNK_STORE_H_
#define SHOAL_STORE_INTERNAL_ROCKSDB_CHUNK_STORE_H_

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

namespace shoal::store::internal {

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
// The memtables of the blob column families: small, as they hold piece bytes
// until a flush (a fetching node's peak memory). While such a large add runs,
// `chunks` takes larger ones: each flush costs a blob file, a table per column
// family and their syncs, and a 1 GiB add made 256 of them
// (docs/ARCHITECTURE.md, "Large adds skip the WAL").
constexpr uint64_t kBlobMemtableBytes = 4 << 20;
constexpr uint64_t kLargeAddMemtableBytes = 16 << 20;
// The store's RocksDB options, without its listener: the database's, those of
// the column families of small values, and those of the blob column families
// (`chunks`, `torrents`). store/write_paths_bench.cc measures with them too.
rocksdb::DBOptions StoreDbOptions();
rocksdb::ColumnFamilyOptions SmallCfOptions();
rocksdb::ColumnFamilyOptions BlobCfOptions();
// What a write batch holds beside a piece's bytes (headers, keys, the index
// entry). A batch that writes a piece reserves the piece's size plus this:
// grown by appends, its buffer was sized to the piece, then doubled (and the
// piece copied again) by the next small record.
constexpr size_t kBatchBytesBesidePiece = 512;
// Fetched pieces are written without the WAL too, and count as stored once a
// flush has made them durable: when a memtable fills (write_buffer_size below),
// at Sync(), or when the store closes.
constexpr char kUploadOwner = 'u';
// Index entries (empty values) of torrent pieces, so listing a torrent's pieces
// reads no piece bytes.
constexpr char kTorrentOwner = 't';

inline absl::Status FromRocks(const rocksdb::Status& s,
                              const std::string& what) {
  if (s.ok()) return absl::OkStatus();
  std::string msg = absl::StrCat(what, ": ", s.ToString());
  if (s.IsNotFound()) return absl::NotFoundError(msg);
  if (s.IsCorruption()) return absl::DataLossError(msg);
  if (s.IsNoSpace()) return absl::ResourceExhaustedError(msg);
  if (s.IsBusy() || s.IsTimedOut() || s.IsTryAgain())
    return absl::UnavailableError(msg);
  return absl::InternalError(msg);
}

inline std::string_view DigestView(const Sha256Digest& d) {
  return {reinterpret_cast<const char*>(d.data()), d.size()};
}

inline Sha256Digest DigestFrom(std::string_view s) {
  Sha256Digest d{};
  std::memcpy(d.data(), s.data(), std::min(s.size(), d.size()));
  return d;
}

inline std::string HaveKey(char owner, std::string_view id, uint32_t index) {
  std::string k;
  k.reserve(1 + id.size() + 4);
  k.push_back(owner);
  k.append(id);
  internal::AppendBE32(k, index);
  return k;
}

inline std::string HaveValue(const Sha256Digest& hash, int levels,
                             uint32_t size) {
  std::string v(DigestView(hash));
  v.push_back(static_cast<char>(levels));
  internal::AppendBE32(v, size);
  return v;
}

inline std::string_view UploadView(const UploadId& u) {
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
  std::vector<std::string> TruncatedIds() override;
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
  // The write_buffer_size `chunks` has now.
  uint64_t ChunkMemtableBytesForTesting();
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
  // Counts a WAL-less add in (+1) or out (-1), switching the memtable size of
  // `chunks` when the first starts and the last ends.
  void CountLargeAddLocked(int delta) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
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
  // WAL-less adds under way: while any is, `chunks` has large memtables.
  int large_adds_ ABSL_GUARDED_BY(mu_) = 0;
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

}  // namespace shoal::store::internal

#endif  // SHOAL_STORE_INTERNAL_ROCKSDB_CHUNK_STORE_H_
