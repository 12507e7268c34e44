// FileStorage: a torrent's pieces kept as its files under a save path, the
// way every BitTorrent client stores them.
//
// Pieces map onto files as chunk::MapPiece() says: a v1 piece may span many
// files; BEP 47 pad files are never written (they read as zeros). A file is
// created sparse, at its final size (ftruncate), on the first write into it.
// I/O is pread/pwrite (no mmap, whose page cache accounting made memory use
// libtorrent 2.x's most common complaint) through a bounded LRU cache of open
// descriptors.
//
// Files with priority 0 are not created. When a wanted piece spans into one,
// the bytes that belong to the unwanted file go to a part file,
// "<save path>/.<name>.parts" (libtorrent's scheme), and reads come back from
// it; if the file becomes wanted, SetFilePriorities() moves them into it.
//
// Paths: Create() refuses a metainfo path that is absolute or holds ".." (the
// parser sanitizes paths already; this is defence in depth), and every open
// walks the path from the save path one directory at a time without
// following symlinks (O_NOFOLLOW), so a symlink planted in the save path
// cannot redirect a write outside it (PERMISSION_DENIED).
//
//   SHOAL_ASSIGN_OR_RETURN(auto storage,
//                          FileStorage::Create(metainfo, "/downloads"));
//   SHOAL_RETURN_IF_ERROR(storage->WritePiece(i, verified_bytes));
//   ...
//   SHOAL_RETURN_IF_ERROR(storage->Finalize());  // empty files, symlinks
//
// Errors map errno: ENOSPC/EDQUOT/EFBIG/EMFILE -> RESOURCE_EXHAUSTED,
// EACCES/EPERM/EROFS -> PERMISSION_DENIED, EIO -> DATA_LOSS, others INTERNAL.
#ifndef SHOAL_STORE_FILE_STORAGE_H_
#define SHOAL_STORE_FILE_STORAGE_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "base/thread_pool.h"
#include "chunk/bitfield.h"
#include "chunk/metainfo.h"
#include "chunk/piece_verifier.h"
#include "store/piece_storage.h"

namespace shoal::store {

// A file's state on disk, to tell whether resume data still describes it. A
// value type.
struct FileState {
  bool exists = false;
  uint64_t size = 0;
  int64_t mtime_ns = 0;  // modification time, nanoseconds since the epoch
  friend bool operator==(const FileState&, const FileState&) = default;
};

// File priorities follow libtorrent: 0 = do not download, 1..7 = low..high.
inline constexpr uint8_t kPriorityDontDownload = 0;
inline constexpr uint8_t kPriorityDefault = 4;

struct FileStorageOptions {
  // Most descriptors kept open (least recently used are closed first).
  size_t max_open_files = 64;
};

// Thread-safe: every method may be called from any thread (the disk pool).
class FileStorage final : public PieceStorage {
 public:
  // Storage for `metainfo`'s files under `save_path` (created on the first
  // write if missing). Nothing is touched on disk. INVALID_ARGUMENT if a path
  // of the metainfo is empty, absolute, or holds "." or ".." elements.
  // `metainfo` must outlive the storage. Every file starts at
  // kPriorityDefault.
  static absl::StatusOr<std::unique_ptr<FileStorage>> Create(
      const chunk::Metainfo& metainfo, std::filesystem::path save_path,
      FileStorageOptions options = {});

  ~FileStorage() override;
  FileStorage(const FileStorage&) = delete;
  FileStorage& operator=(const FileStorage&) = delete;

  // PieceStorage. WritePiece: OUT_OF_RANGE for a bad index, INVALID_ARGUMENT
  // if data.size() != chunk::PieceSize(); PERMISSION_DENIED if a path would
  // leave the save path. Reads: UNAVAILABLE if a file holding the range is
  // missing or shorter than the range (not stored). Sparse files read as
  // zeros where nothing was written; the caller's hash check tells.
  absl::Status WritePiece(uint32_t piece, std::string_view data) override;
  absl::StatusOr<std::string> ReadBlock(uint32_t piece, uint32_t offset,
                                        uint32_t length) override;
  absl::StatusOr<std::string> ReadPiece(uint32_t piece) override;

  // Sets every file's priority (one per Metainfo::files entry; pad files'
  // values are ignored). A file that goes from 0 to wanted receives the bytes
  // the part file held for it (it is created then). A file that becomes
  // unwanted stays on disk if it exists. INVALID_ARGUMENT for a wrong count.
  absl::Status SetFilePriorities(std::vector<uint8_t> priorities);
  std::vector<uint8_t> FilePriorities() const;

  // Hashes every piece of the data found on disk on `pool`, at most
  // 2 * pool.size() pieces in flight, and returns the pieces that verify.
  // Pieces of missing or short files are simply absent (no error), and so is
  // a v2 piece whose piece layer `verifier` lacks. Errors: an I/O error other
  // than missing data (e.g. PERMISSION_DENIED for an unreadable file).
  // REQUIRES: not called from a thread of `pool` (it waits on the pool).
  absl::StatusOr<chunk::Bitfield> Check(ThreadPool& pool,
                                        const chunk::PieceVerifier& verifier);

  // Creates what pieces do not: empty files (of wanted files), symlinks (BEP
  // 47 attr 'l') as relative links, and the executable bit (attr 'x') on
  // existing files. A symlink is created only if its target stays inside the
  // save path; existing symlinks are replaced, other existing entries kept.
  // Returns the paths of symlinks skipped as unsafe. Call once every wanted
  // piece is stored (idempotent).
  absl::StatusOr<std::vector<std::string>> Finalize();

  // Removes the torrent's files, symlinks, the part file and the directories
  // that become empty (for `torrent rm --delete-data`). Missing entries are
  // not an error. Never follows a symlink out of the save path.
  absl::Status DeleteFiles();

  // Size and modification time of each file (one per Metainfo::files entry;
  // pad files and missing files have exists = false).
  std::vector<FileState> FileStates();

  // fdatasync()s every file open for writing (and the part file).
  absl::Status Flush();

  const std::filesystem::path& save_path() const { return save_path_; }

 private:
  class PartFile;
  struct OpenFile;  // an fd that closes itself
  enum class OpenMode { kRead, kWriteExisting, kCreate };

  FileStorage(const chunk::Metainfo& m, std::filesystem::path save_path,
              std::vector<std::vector<std::string>> components,
              FileStorageOptions options);

  // Opens file `i`. kRead/kWriteExisting: NOT_FOUND if it does not exist.
  absl::StatusOr<std::shared_ptr<OpenFile>> Open(size_t i, OpenMode mode)
      ABSL_LOCKS_EXCLUDED(cache_mu_);
  // Whether bytes of file `i` belong in the part file rather than the file.
  absl::StatusOr<bool> UsesPartFile(size_t i) ABSL_SHARED_LOCKS_REQUIRED(mu_);
  absl::Status ReadRange(uint32_t piece, uint32_t offset, uint32_t length,
                         char* out) ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Opens the directory holding file/symlink `components` (a path under the
  // save path) without following symlinks; creates missing ones if `create`.
  absl::StatusOr<int> OpenParent(const std::vector<std::string>& components,
                                 bool create);
  absl::Status MoveFromPartFile(size_t file) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CloseAll() ABSL_LOCKS_EXCLUDED(cache_mu_);

  // Constant after construction.
  const chunk::Metainfo& m_;
  const std::filesystem::path save_path_;
  // Per file: its path under the save path, split at '/'.
  const std::vector<std::vector<std::string>> components_;
  const FileStorageOptions options_;

  // Shared by piece I/O; exclusive for changes of layout (priorities, delete,
  // finalize).
  mutable absl::Mutex mu_;
  std::vector<uint8_t> priorities_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<PartFile> part_;  // internally synchronized

  // The descriptor cache. shared_ptr: an fd evicted while another thread
  // still reads through it closes when that thread is done.
  absl::Mutex cache_mu_ ABSL_ACQUIRED_AFTER(mu_);
  struct CacheEntry {
    std::shared_ptr<OpenFile> file;
    std::list<size_t>::iterator lru;
  };
  absl::flat_hash_map<size_t, CacheEntry> cache_ ABSL_GUARDED_BY(cache_mu_);
  std::list<size_t> lru_ ABSL_GUARDED_BY(cache_mu_);  // front: most recent

  // Written ranges whose page-cache pages are dropped once kDropLagBytes more
  // have been written after them.
  void DropWhenWritten(size_t file, uint64_t offset, uint64_t length)
      ABSL_LOCKS_EXCLUDED(drop_mu_, cache_mu_);
  static constexpr uint64_t kDropLagBytes = 64 << 20;
  struct Written {
    size_t file = 0;  // index in the metainfo
    uint64_t offset = 0;
    uint64_t length = 0;
  };
  absl::Mutex drop_mu_;
  std::deque<Written> written_ ABSL_GUARDED_BY(drop_mu_);
  uint64_t written_bytes_ ABSL_GUARDED_BY(drop_mu_) = 0;
};

}  // namespace shoal::store

#endif  // SHOAL_STORE_FILE_STORAGE_H_
