// The chunk store: CDN content kept in RocksDB.
//
// A chunk is one piece of content, keyed by the hash that verifies it (its
// piece-layer hash, or the pieces root for content of one piece). Chunks are
// shared by every content that contains them and checked on every read, so a
// corrupt chunk is never served: RocksDB checks the CRC32C of every blob it
// reads, and a chunk's hash is checked at its first read after the store opens.
//
// Column families:
//   chunks    piece hash (32)                -> piece bytes + tree levels (1)
//   [integrated BlobDB] contents  content ID (32)                ->
//   ContentRecord haves     owner (1 + 32) + index (4, BE) -> piece hash (32) +
//   tree levels (1) + size (4, BE)
//             owner 'c' + content ID for stored content, 'u' + upload ID for
//             adds in progress
//   pins      content ID (32)                -> empty
//   torrents  [integrated BlobDB] length (1) + info-hash + index (4, BE) ->
//             piece bytes, for torrents kept in the store
//   state     name                           -> node state (identity, DHT
//   table, ...)
//
// Every piece is written in one atomic batch (chunk + have), and an add becomes
// visible in one batch that writes the record and turns the upload's haves into
// the content's. After a crash the store opens with every piece whose batch
// committed; adds in progress are rolled back and chunks that nothing
// references are dropped. Reference counts and usage live in memory and are
// rebuilt from `haves` at open.
//
//   SHOAL_ASSIGN_OR_RETURN(auto store, ChunkStore::Open({.dir =
//   "/var/lib/shoal/db"})); SHOAL_ASSIGN_OR_RETURN(UploadId up,
//   store->BeginUpload(length));
//   ... store->PutUploadPiece(up, i, hash, levels, bytes) for every piece ...
//   SHOAL_ASSIGN_OR_RETURN(ContentState st, store->CommitUpload(up, record));
#ifndef SHOAL_STORE_CHUNK_STORE_H_
#define SHOAL_STORE_CHUNK_STORE_H_

#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "chunk/content_id.h"
#include "chunk/directory.h"

namespace shoal::store {

struct StoreOptions {
  // The RocksDB directory; created if missing.
  std::filesystem::path dir;
  // Bytes of chunk data the store may hold; 0 means no limit. When an add would
  // exceed it, unpinned content is evicted least-recently-used first.
  uint64_t capacity_bytes = 0;
  // The clock for added and last-access times.
  std::function<absl::Time()> clock = [] { return absl::Now(); };
};

// What the store knows of one content. A value type.
struct ContentRecord {
  chunk::ContentId id;
  uint64_t length = 0;
  uint32_t piece_length = 0;
  codec::Sha256Digest pieces_root{};
  // One hash per piece (a single entry, the pieces root, for content of one
  // piece).
  std::vector<codec::Sha256Digest> piece_layer;
  // A name to show (the file name it was added from); not part of the ID.
  std::string name;
  absl::Time added = absl::UnixEpoch();
  absl::Time last_access = absl::UnixEpoch();
  // Set for a directory (length is then its total size, piece_length its
  // torrent's, and it has no pieces of its own: its files are contents of
  // their own). Shared because it is immutable and may be large.
  std::shared_ptr<const chunk::Directory> directory;
  // A file stored only because directories hold it: it goes with the last of
  // them. Cleared when it is added or pinned on its own.
  bool in_directory_only = false;

  chunk::ContentLayout layout() const { return {length, piece_length}; }
  bool is_directory() const { return directory != nullptr; }
};

// A content record with its local state. A value type.
struct ContentState {
  ContentRecord record;
  uint32_t pieces_local = 0;
  bool pinned = false;
  // Directories: how many of its files are complete here.
  uint32_t files_local = 0;
  bool complete() const {
    return record.is_directory()
               ? files_local == record.directory->files().size()
               : pieces_local == record.layout().num_pieces();
  }
};

// What serving a content needs, without copying its piece layer (Stat()
// copies the whole record).
struct ContentBrief {
  uint64_t length = 0;
  uint32_t piece_length = 0;
  // Single file: every piece here. Directory: false (Stat() counts its
  // files; a directory is served file by file).
  bool complete = false;
  std::shared_ptr<const chunk::Directory> directory;  // set for a directory

  chunk::ContentLayout layout() const { return {length, piece_length}; }
  bool is_directory() const { return directory != nullptr; }
};

struct StoreStats {
  uint64_t capacity_bytes = 0;  // 0: unlimited
  uint64_t used_bytes = 0;      // bytes of distinct chunks held
  uint64_t reserved_bytes = 0;  // held back for adds in progress
  uint64_t num_contents = 0;
  uint64_t num_chunks = 0;
  uint64_t data_loss_events = 0;  // chunks found corrupt or missing since open
  uint64_t evictions = 0;         // contents evicted since open
};

// Identifies an add in progress.
struct UploadId {
  std::array<uint8_t, 16> bytes{};
  friend bool operator==(const UploadId&, const UploadId&) = default;
  template <typename H>
  friend H AbslHashValue(H h, const UploadId& id) {
    return H::combine_contiguous(std::move(h), id.bytes.data(),
                                 id.bytes.size());
  }
};

// What happened to a stored content, for the node's events. A value type.
struct StoreEvent {
  enum class Kind { kAdded, kRemoved, kEvicted, kPinned, kUnpinned, kDataLoss };
  Kind kind = Kind::kAdded;
  chunk::ContentId id;
  std::string name;
  uint64_t length = 0;
  uint32_t piece = 0;  // kDataLoss
  std::string reason;  // kEvicted, kDataLoss
};

// Thread-safe: every method may be called from any thread.
class ChunkStore {
 public:
  // Gets every StoreEvent, on the thread that caused it, under the store's
  // lock: it must not call the store. Set before the store is shared.
  void set_observer(std::function<void(const StoreEvent&)> observer) {
    observer_ = std::move(observer);
  }

  // Opens (creating if needed) the store in options.dir, rolls back adds that a
  // crash interrupted, and rebuilds reference counts. Errors: UNAVAILABLE if
  // another process holds the database, INTERNAL/DATA_LOSS if RocksDB cannot
  // open it.
  static absl::StatusOr<std::unique_ptr<ChunkStore>> Open(StoreOptions options);

  virtual ~ChunkStore() = default;

  // Starts an add of `length` bytes, reserving that much capacity and evicting
  // unpinned content, least recently used first, to make room.
  // RESOURCE_EXHAUSTED if it cannot fit even with every unpinned content
  // evicted (nothing is evicted then).
  virtual absl::StatusOr<UploadId> BeginUpload(uint64_t length) = 0;

  // Stores piece `index` of an upload: `data` whose merkle root, padded to
  // 2^tree_levels leaves, is `hash` (the caller has verified this). Atomic.
  // Storing a piece twice is a no-op. NOT_FOUND for an unknown upload.
  virtual absl::Status PutUploadPiece(const UploadId& upload, uint32_t index,
                                      const codec::Sha256Digest& hash,
                                      int tree_levels,
                                      std::span<const uint8_t> data) = 0;

  // Makes an upload's pieces the content `record` describes (its piece layer
  // indexes the pieces stored), in one atomic write, and releases the
  // reservation. Adding content that is already stored keeps the existing
  // record and fills in any pieces it lacked. FAILED_PRECONDITION if a piece is
  // missing.
  virtual absl::StatusOr<ContentState> CommitUpload(const UploadId& upload,
                                                    ContentRecord record) = 0;

  // Drops an upload and the chunks only it referenced.
  virtual void AbortUpload(const UploadId& upload) = 0;

  // Creates the record of content being fetched from peers, with no pieces yet
  // (its piece layer is known and verified), reserving capacity like
  // BeginUpload. Content already stored is left as it is. A file that a stored
  // directory holds is created as stored for directories only.
  // RESOURCE_EXHAUSTED if it cannot fit.
  virtual absl::StatusOr<ContentState> CreateContent(ContentRecord record) = 0;

  // Stores piece `index` of content `id` created by CreateContent (or of stored
  // content that lost a piece); the caller verified `data` against the piece
  // layer. Atomic; storing a piece twice is a no-op. NOT_FOUND for unknown
  // content, OUT_OF_RANGE for a bad index, INVALID_ARGUMENT for data of the
  // wrong size.
  //
  // The piece is readable at once, but written without RocksDB's WAL (so its
  // bytes reach the disk once, not twice): it counts in pieces_local, and
  // survives a crash, once a flush has made it durable. That happens after
  // every 8 MiB of such pieces, at Sync(), and when the store closes.
  virtual absl::Status PutContentPiece(const chunk::ContentId& id,
                                       uint32_t index,
                                       std::span<const uint8_t> data) = 0;

  // Makes every piece PutContentPiece stored so far durable (a flush). Cheap
  // when there is nothing to flush; blocks for the flush otherwise.
  virtual absl::Status Sync() = 0;

  // The content whose ID starts with these 20 bytes (the info-hash BitTorrent
  // handshakes carry for a v2 torrent), if stored. NOT_FOUND otherwise.
  virtual absl::StatusOr<chunk::ContentId> FindByTruncatedId(
      std::string_view prefix20) = 0;
  // The first 20 bytes of every stored content's ID (an encrypted handshake
  // names its torrent by a hash of them).
  virtual std::vector<std::string> TruncatedIds() = 0;

  // Returns piece `index` of `id`, verified against its hash. NOT_FOUND for
  // unknown content, OUT_OF_RANGE for a bad index, UNAVAILABLE for a piece not
  // held locally, DATA_LOSS if the stored chunk was missing or corrupt (it is
  // dropped and the content becomes incomplete).
  virtual absl::StatusOr<std::string> ReadPiece(const chunk::ContentId& id,
                                                uint32_t index) = 0;

  // Which pieces of `id` are stored. NOT_FOUND for unknown content.
  virtual absl::StatusOr<std::vector<bool>> PiecesHeld(
      const chunk::ContentId& id) = 0;

  // Stores a directory's record (its files are contents of their own, added
  // or fetched separately, and may be missing). Files it names that are
  // stored already become part of it. Storing it again is a no-op.
  virtual absl::StatusOr<ContentState> PutDirectory(
      std::shared_ptr<const chunk::Directory> directory, std::string name) = 0;

  // The directory stored under `id`, without the cost of Stat() (which counts
  // the files held). NOT_FOUND if absent or not a directory.
  virtual absl::StatusOr<std::shared_ptr<const chunk::Directory>> GetDirectory(
      const chunk::ContentId& id) = 0;

  // Removes those of `ids` that are stored only for directories and that no
  // directory holds any more (what a failed directory add leaves behind).
  virtual void RemoveOrphans(const std::vector<chunk::ContentId>& ids) = 0;

  // Records an access for LRU eviction. NOT_FOUND for unknown content.
  virtual absl::Status Touch(const chunk::ContentId& id) = 0;

  // The brief of `id`, and with `touch` an access recorded as Touch() does,
  // under one lock. std::nullopt for unknown content (a miss allocates
  // nothing: the gateway asks this for every request).
  virtual std::optional<ContentBrief> Brief(const chunk::ContentId& id,
                                            bool touch) = 0;

  // NOT_FOUND for unknown content.
  virtual absl::StatusOr<ContentState> Stat(const chunk::ContentId& id) = 0;

  // Every content, ordered by ID.
  virtual std::vector<ContentState> List() = 0;

  // Pins (never evicted) or unpins content; a pinned directory keeps its files
  // too. NOT_FOUND for unknown content.
  virtual absl::Status SetPinned(const chunk::ContentId& id, bool pinned) = 0;

  // Removes content and the chunks no other content uses. A directory takes
  // with it the files nothing else holds (no other directory, no add or pin of
  // their own). A file that directories hold stays for them: if it was also
  // added on its own it stops being so (OK), else FAILED_PRECONDITION naming a
  // directory. NOT_FOUND for unknown content.
  virtual absl::Status Remove(const chunk::ContentId& id) = 0;

  virtual StoreStats Stats() = 0;

  // Torrents kept in the store instead of in files (`shoal torrent add
  // --in-store`). `torrent` names one (its info-hash bytes); the caller has
  // verified each piece. Pieces are written with the WAL: durable on return.
  virtual absl::Status PutTorrentPiece(std::string_view torrent, uint32_t index,
                                       std::string_view data) = 0;
  // UNAVAILABLE if the piece is not stored; DATA_LOSS if RocksDB finds its
  // bytes damaged (its CRC32C fails).
  virtual absl::StatusOr<std::string> ReadTorrentPiece(std::string_view torrent,
                                                       uint32_t index) = 0;
  // The indexes of the pieces stored, ascending.
  virtual absl::StatusOr<std::vector<uint32_t>> TorrentPieces(
      std::string_view torrent) = 0;
  // Drops every piece of a torrent.
  virtual absl::Status RemoveTorrentPieces(std::string_view torrent) = 0;

  // Node state (small values in the `state` column family). NOT_FOUND if
  // absent.
  virtual absl::StatusOr<std::string> GetState(std::string_view key) = 0;
  virtual absl::Status PutState(std::string_view key,
                                std::string_view value) = 0;

  // Test hook: overwrites the stored bytes of a chunk without updating anything
  // else, to simulate disk corruption.
  virtual absl::Status CorruptChunkForTesting(const codec::Sha256Digest& hash,
                                              std::string_view bytes) = 0;

 protected:
  void Notify(StoreEvent e) const {
    if (observer_) observer_(e);
  }

 private:
  std::function<void(const StoreEvent&)> observer_;
};

}  // namespace shoal::store

#endif  // SHOAL_STORE_CHUNK_STORE_H_
