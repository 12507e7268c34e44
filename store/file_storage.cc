#include "store/file_storage.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/ordered_work.h"
#include "base/status_macros.h"

namespace shoal::store {
namespace {

absl::Status ErrnoStatus(int err, std::string_view what) {
  std::string msg =
      absl::StrCat(std::string(what), ": ", std::string(std::strerror(err)));
  switch (err) {
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
    case EMFILE:
    case ENFILE:
    case ENOMEM:
      return absl::ResourceExhaustedError(msg);
    case EACCES:
    case EPERM:
    case EROFS:
      return absl::PermissionDeniedError(msg);
    case ELOOP:
      return absl::PermissionDeniedError(
          absl::StrCat(std::string(what), ": refusing to follow a symlink"));
    case ENOENT:
      return absl::NotFoundError(msg);
    case EEXIST:
      return absl::AlreadyExistsError(msg);
    case ENOTDIR:
    case EISDIR:
      return absl::FailedPreconditionError(msg);
    case EIO:
      return absl::DataLossError(msg);
    case EINVAL:
      return absl::InvalidArgumentError(msg);
    default:
      return absl::InternalError(msg);
  }
}

// Runs a system call until it is not interrupted.
template <typename F>
auto NoEintr(F f) {
  decltype(f()) r;
  do {
    r = f();
  } while (r < 0 && errno == EINTR);
  return r;
}

// Closes a descriptor at scope exit.
class ScopedFd {
 public:
  explicit ScopedFd(int fd) : fd_(fd) {}
  ~ScopedFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// Reads up to n bytes at `offset`; fewer only at end of file.
absl::StatusOr<size_t> PreadAll(int fd, char* out, size_t n, uint64_t offset,
                                std::string_view what) {
  size_t done = 0;
  while (done < n) {
    ssize_t r =
        ::pread(fd, out + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno,
                         absl::StrCat("cannot read ", std::string(what)));
    }
    if (r == 0) break;
    done += static_cast<size_t>(r);
  }
  return done;
}

absl::Status PwriteAll(int fd, const char* data, size_t n, uint64_t offset,
                       std::string_view what) {
  size_t done = 0;
  while (done < n) {
    ssize_t r =
        ::pwrite(fd, data + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno,
                         absl::StrCat("cannot write ", std::string(what)));
    }
    if (r == 0) {
      return absl::InternalError(
          absl::StrCat("cannot write ", std::string(what), ": no progress"));
    }
    done += static_cast<size_t>(r);
  }
  // Start writing the range back now, without waiting. The kernel limits
  // each device's dirty pages by its measured writeback speed, far below the
  // global thresholds: without this a fast download hit that limit and was
  // throttled (1 GiB from libtorrent: 3.6-4.6 s without, 1.7-3.6 s with).
  ::sync_file_range(fd, static_cast<off_t>(offset), static_cast<off_t>(n),
                    SYNC_FILE_RANGE_WRITE);
  return absl::OkStatus();
}

bool SafeElement(std::string_view e) {
  return !e.empty() && e != "." && e != ".." &&
         e.find('\0') == std::string_view::npos;
}

// Splits a '/'-separated relative path; nullopt if it is absolute or has an
// empty, "." or ".." element.
std::optional<std::vector<std::string>> SplitSafe(std::string_view path) {
  std::vector<std::string> out =
      absl::StrSplit(absl::string_view(path.data(), path.size()), '/');
  for (const std::string& e : out) {
    if (!SafeElement(e)) return std::nullopt;
  }
  return out;
}

void PutLe32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>(v >> (8 * i));
}
uint32_t GetLe32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i)
    v |= uint32_t{static_cast<uint8_t>(p[i])} << (8 * i);
  return v;
}

}  // namespace

struct FileStorage::OpenFile {
  OpenFile(int fd, bool writable) : fd(fd), writable(writable) {}
  ~OpenFile() { ::close(fd); }
  OpenFile(const OpenFile&) = delete;
  OpenFile& operator=(const OpenFile&) = delete;
  const int fd;
  const bool writable;
};

// The part file: piece-sized slots for the bytes of unwanted files that
// wanted pieces overlap. Layout: "SHOALPT1", num_pieces and piece_length
// (little-endian u32 each), then one u32 slot number per piece (0xffffffff:
// none); slots start at the next 4 KiB boundary; a piece's bytes sit at their
// offset within its slot (the rest stays a hole). A slot's data is written
// before its table entry. Thread-safe.
class FileStorage::PartFile {
 public:
  PartFile(FileStorage& owner, std::string name, uint32_t num_pieces,
           uint32_t piece_length)
      : owner_(owner),
        name_(std::move(name)),
        num_pieces_(num_pieces),
        piece_length_(piece_length),
        data_start_((kHeader + uint64_t{4} * num_pieces + 4095) / 4096 * 4096) {
  }
  ~PartFile() {
    if (fd_ >= 0) ::close(fd_);
  }

  const std::string& name() const { return name_; }

  absl::StatusOr<bool> HasSlot(uint32_t piece) {
    absl::MutexLock lock(&mu_);
    SHOAL_RETURN_IF_ERROR(LoadLocked(/*create=*/false));
    return slots_[piece] != kNone;
  }

  // Writes `data` at `offset` in piece `piece`'s slot, allocating it.
  absl::Status Write(uint32_t piece, uint32_t offset, std::string_view data) {
    uint64_t at;
    int fd;
    bool new_slot = false;
    uint32_t slot;
    {
      absl::MutexLock lock(&mu_);
      SHOAL_RETURN_IF_ERROR(LoadLocked(/*create=*/true));
      slot = slots_[piece];
      if (slot == kNone) {
        auto free = std::find(used_.begin(), used_.end(), false);
        slot = static_cast<uint32_t>(free - used_.begin());
        if (free == used_.end()) used_.push_back(false);
        used_[slot] = true;
        slots_[piece] = slot;
        new_slot = true;
      }
      at = data_start_ + uint64_t{slot} * piece_length_ + offset;
      fd = fd_;
    }
    SHOAL_RETURN_IF_ERROR(PwriteAll(fd, data.data(), data.size(), at, name_));
    if (new_slot) {
      char e[4];
      PutLe32(e, slot);
      absl::MutexLock lock(&mu_);
      SHOAL_RETURN_IF_ERROR(
          PwriteAll(fd_, e, 4, kHeader + uint64_t{4} * piece, name_));
    }
    return absl::OkStatus();
  }

  // UNAVAILABLE if the piece has no slot.
  absl::Status Read(uint32_t piece, uint32_t offset, uint32_t n, char* out) {
    uint64_t at;
    int fd;
    {
      absl::MutexLock lock(&mu_);
      SHOAL_RETURN_IF_ERROR(LoadLocked(/*create=*/false));
      if (slots_[piece] == kNone) {
        return absl::UnavailableError(
            absl::StrCat("piece ", piece, " is not in ", name_));
      }
      at = data_start_ + uint64_t{slots_[piece]} * piece_length_ + offset;
      fd = fd_;
    }
    SHOAL_ASSIGN_OR_RETURN(size_t got, PreadAll(fd, out, n, at, name_));
    std::memset(out + got, 0, n - got);  // a hole at the end
    return absl::OkStatus();
  }

  // Drops piece `piece`'s slot; removes the file once no slot is used.
  absl::Status Free(uint32_t piece) {
    absl::MutexLock lock(&mu_);
    SHOAL_RETURN_IF_ERROR(LoadLocked(/*create=*/false));
    const uint32_t slot = slots_[piece];
    if (slot == kNone) return absl::OkStatus();
    char e[4];
    PutLe32(e, kNone);
    SHOAL_RETURN_IF_ERROR(
        PwriteAll(fd_, e, 4, kHeader + uint64_t{4} * piece, name_));
    // Give the space back; failure only costs disk space.
    (void)::fallocate(
        fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
        static_cast<off_t>(data_start_ + uint64_t{slot} * piece_length_),
        piece_length_);
    slots_[piece] = kNone;
    used_[slot] = false;
    if (std::find(used_.begin(), used_.end(), true) == used_.end()) {
      return DeleteLocked();
    }
    return absl::OkStatus();
  }

  absl::Status Delete() {
    absl::MutexLock lock(&mu_);
    return DeleteLocked();
  }

  absl::Status Sync() {
    absl::MutexLock lock(&mu_);
    if (fd_ >= 0 && ::fdatasync(fd_) != 0) {
      return ErrnoStatus(errno, absl::StrCat("cannot sync ", name_));
    }
    return absl::OkStatus();
  }

 private:
  static constexpr uint32_t kNone = 0xffffffff;
  static constexpr uint64_t kHeader = 16;
  static constexpr char kMagic[] = "SHOALPT1";

  absl::Status DeleteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    loaded_ = false;
    auto dir = owner_.OpenParent({name_}, /*create=*/false);
    if (!dir.ok()) {
      return absl::IsNotFound(dir.status()) ? absl::OkStatus() : dir.status();
    }
    ScopedFd d(*dir);
    if (::unlinkat(d.get(), name_.c_str(), 0) != 0 && errno != ENOENT) {
      return ErrnoStatus(errno, absl::StrCat("cannot remove ", name_));
    }
    return absl::OkStatus();
  }

  // Reads the table, opening (or with `create`, creating) the file. Without
  // `create`, a missing file is an empty table.
  absl::Status LoadLocked(bool create) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (fd_ >= 0) return absl::OkStatus();
    if (loaded_ && !create) return absl::OkStatus();
    slots_.assign(num_pieces_, kNone);
    used_.clear();
    loaded_ = true;
    auto dir = owner_.OpenParent({name_}, create);
    if (!dir.ok()) {
      return absl::IsNotFound(dir.status()) && !create ? absl::OkStatus()
                                                       : dir.status();
    }
    ScopedFd d(*dir);
    int fd = NoEintr([&] {
      return ::openat(
          d.get(), name_.c_str(),
          O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | (create ? O_CREAT : 0),
          0666);
    });
    if (fd < 0) {
      if (errno == ENOENT && !create) return absl::OkStatus();
      return ErrnoStatus(errno, absl::StrCat("cannot open ", name_));
    }
    struct stat st;
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd);
      return absl::FailedPreconditionError(
          absl::StrCat(name_, " is not a regular file"));
    }
    std::string header(data_start_, '\0');
    auto got = PreadAll(fd, header.data(), header.size(), 0, name_);
    if (!got.ok()) {
      ::close(fd);
      return got.status();
    }
    const bool valid = *got >= kHeader + uint64_t{4} * num_pieces_ &&
                       std::memcmp(header.data(), kMagic, 8) == 0 &&
                       GetLe32(header.data() + 8) == num_pieces_ &&
                       GetLe32(header.data() + 12) == piece_length_;
    if (valid) {
      for (uint32_t p = 0; p < num_pieces_; ++p) {
        uint32_t s = GetLe32(header.data() + kHeader + 4 * p);
        if (s == kNone || s >= num_pieces_) continue;
        if (used_.size() <= s) used_.resize(s + 1, false);
        if (used_[s]) continue;  // a corrupt table: keep the first owner
        used_[s] = true;
        slots_[p] = s;
      }
    } else {
      // Not ours or unfinished: start an empty table.
      std::memset(header.data(), 0xff, header.size());
      std::memcpy(header.data(), kMagic, 8);
      PutLe32(header.data() + 8, num_pieces_);
      PutLe32(header.data() + 12, piece_length_);
      absl::Status s =
          ::ftruncate(fd, 0) == 0
              ? PwriteAll(fd, header.data(), header.size(), 0, name_)
              : ErrnoStatus(errno, name_);
      if (!s.ok()) {
        ::close(fd);
        return s;
      }
    }
    fd_ = fd;
    return absl::OkStatus();
  }

  FileStorage& owner_;
  const std::string name_;
  const uint32_t num_pieces_;
  const uint32_t piece_length_;
  const uint64_t data_start_;

  absl::Mutex mu_;
  bool loaded_ ABSL_GUARDED_BY(mu_) = false;
  int fd_ ABSL_GUARDED_BY(mu_) = -1;
  std::vector<uint32_t> slots_ ABSL_GUARDED_BY(mu_);  // per piece
  std::vector<bool> used_ ABSL_GUARDED_BY(mu_);       // per slot
};

absl::StatusOr<std::unique_ptr<FileStorage>> FileStorage::Create(
    const chunk::Metainfo& metainfo, std::filesystem::path save_path,
    FileStorageOptions options) {
  std::vector<std::vector<std::string>> components;
  components.reserve(metainfo.files.size());
  for (const chunk::FileEntry& f : metainfo.files) {
    auto c = SplitSafe(f.path);
    if (!c && !f.pad_file) {
      return absl::InvalidArgumentError(
          absl::StrCat("unsafe file path '", f.path, "'"));
    }
    components.push_back(c.value_or(std::vector<std::string>{}));
  }
  if (!SafeElement(metainfo.name) ||
      metainfo.name.find('/') != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("unsafe torrent name '", metainfo.name, "'"));
  }
  if (options.max_open_files == 0) options.max_open_files = 1;
  return std::unique_ptr<FileStorage>(new FileStorage(
      metainfo, std::move(save_path), std::move(components), options));
}

FileStorage::FileStorage(const chunk::Metainfo& m,
                         std::filesystem::path save_path,
                         std::vector<std::vector<std::string>> components,
                         FileStorageOptions options)
    : m_(m),
      save_path_(std::move(save_path)),
      components_(std::move(components)),
      options_(options),
      priorities_(m.files.size(), kPriorityDefault),
      part_(std::make_unique<PartFile>(*this,
                                       absl::StrCat(".", m.name, ".parts"),
                                       m.num_pieces, m.piece_length)) {}

FileStorage::~FileStorage() { CloseAll(); }

void FileStorage::CloseAll() {
  absl::MutexLock lock(&cache_mu_);
  cache_.clear();
  lru_.clear();
}

absl::StatusOr<int> FileStorage::OpenParent(
    const std::vector<std::string>& components, bool create) {
  int fd = NoEintr([&] {
    return ::open(save_path_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  });
  if (fd < 0 && errno == ENOENT && create) {
    std::error_code ec;
    std::filesystem::create_directories(save_path_, ec);
    fd = NoEintr([&] {
      return ::open(save_path_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    });
  }
  if (fd < 0) {
    return ErrnoStatus(
        errno, absl::StrCat("cannot open save path ", save_path_.string()));
  }
  for (size_t k = 0; k + 1 < components.size(); ++k) {
    const char* name = components[k].c_str();
    auto open_dir = [&] {
      return NoEintr([&] {
        return ::openat(fd, name,
                        O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      });
    };
    int next = open_dir();
    if (next < 0 && errno == ENOENT && create) {
      if (::mkdirat(fd, name, 0777) != 0 && errno != EEXIST) {
        int err = errno;
        ::close(fd);
        return ErrnoStatus(err, absl::StrCat("cannot create directory ", name));
      }
      next = open_dir();
    }
    if (next < 0) {
      int err = errno;
      // O_NOFOLLOW | O_DIRECTORY on a symlink gives ELOOP or ENOTDIR.
      struct stat st;
      if (err == ENOTDIR &&
          ::fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
          S_ISLNK(st.st_mode)) {
        err = ELOOP;
      }
      ::close(fd);
      return ErrnoStatus(
          err, absl::StrCat("cannot open directory ",
                            absl::StrJoin(components.begin(),
                                          components.begin() + k + 1, "/")));
    }
    ::close(fd);
    fd = next;
  }
  return fd;
}

absl::StatusOr<std::shared_ptr<FileStorage::OpenFile>> FileStorage::Open(
    size_t i, OpenMode mode) {
  absl::MutexLock lock(&cache_mu_);
  auto it = cache_.find(i);
  if (it != cache_.end() &&
      (mode == OpenMode::kRead || it->second.file->writable)) {
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    return it->second.file;
  }
  const chunk::FileEntry& f = m_.files[i];
  SHOAL_ASSIGN_OR_RETURN(int dir_fd,
                         OpenParent(components_[i], mode == OpenMode::kCreate));
  ScopedFd dir(dir_fd);
  const bool writable = mode != OpenMode::kRead;
  const int flags = O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK |
                    (writable ? O_RDWR : O_RDONLY) |
                    (mode == OpenMode::kCreate ? O_CREAT : 0);
  int fd = NoEintr([&] {
    return ::openat(dir.get(), components_[i].back().c_str(), flags,
                    f.executable ? 0777 : 0666);
  });
  if (fd < 0) return ErrnoStatus(errno, absl::StrCat("cannot open ", f.path));
  auto file = std::make_shared<OpenFile>(fd, writable);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    return ErrnoStatus(errno, absl::StrCat("cannot stat ", f.path));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(f.path, " is not a regular file"));
  }
  if (writable && static_cast<uint64_t>(st.st_size) < f.length &&
      NoEintr([&] { return ::ftruncate(fd, static_cast<off_t>(f.length)); }) !=
          0) {
    return ErrnoStatus(errno, absl::StrCat("cannot size ", f.path));
  }
  if (it != cache_.end()) {
    lru_.erase(it->second.lru);
    cache_.erase(it);
  }
  lru_.push_front(i);
  cache_[i] = {file, lru_.begin()};
  while (cache_.size() > options_.max_open_files) {
    cache_.erase(lru_.back());
    lru_.pop_back();
  }
  return file;
}

absl::StatusOr<bool> FileStorage::UsesPartFile(size_t i) {
  if (priorities_[i] != kPriorityDontDownload) return false;
  auto file = Open(i, OpenMode::kRead);
  if (file.ok()) return false;
  if (absl::IsNotFound(file.status())) return true;
  return file.status();
}

absl::Status FileStorage::WritePiece(uint32_t piece, std::string_view data) {
  if (piece >= m_.num_pieces) {
    return absl::OutOfRangeError(absl::StrCat(
        "piece ", piece, " of ", m_.num_pieces, " is out of range"));
  }
  if (data.size() != chunk::PieceSize(m_, piece)) {
    return absl::InvalidArgumentError(
        absl::StrCat("piece ", piece, " has ", chunk::PieceSize(m_, piece),
                     " bytes, not ", data.size()));
  }
  absl::ReaderMutexLock lock(&mu_);
  for (const chunk::FileSlice& s : chunk::MapPiece(m_, piece)) {
    const chunk::FileEntry& f = m_.files[s.file_index];
    if (f.pad_file) continue;
    std::string_view bytes = data.substr(s.piece_offset, s.length);
    SHOAL_ASSIGN_OR_RETURN(bool part, UsesPartFile(s.file_index));
    if (part) {
      SHOAL_RETURN_IF_ERROR(part_->Write(piece, s.piece_offset, bytes));
      continue;
    }
    SHOAL_ASSIGN_OR_RETURN(
        std::shared_ptr<OpenFile> file,
        Open(s.file_index, priorities_[s.file_index] == kPriorityDontDownload
                               ? OpenMode::kWriteExisting
                               : OpenMode::kCreate));
    SHOAL_RETURN_IF_ERROR(
        PwriteAll(file->fd, bytes.data(), bytes.size(), s.file_offset, f.path));
    DropWhenWritten(s.file_index, s.file_offset, bytes.size());
  }
  return absl::OkStatus();
}

void FileStorage::DropWhenWritten(size_t file, uint64_t offset,
                                  uint64_t length) {
  absl::MutexLock lock(&drop_mu_);
  written_.push_back({file, offset, length});
  written_bytes_ += length;
  while (written_bytes_ > kDropLagBytes) {
    const Written w = std::move(written_.front());
    written_.pop_front();
    written_bytes_ -= w.length;
    // Only while the file is open anyway: the descriptor bound stands (a
    // closed file's pages just stay cached).
    std::shared_ptr<OpenFile> f;
    {
      absl::MutexLock cache_lock(&cache_mu_);
      if (auto it = cache_.find(w.file); it != cache_.end())
        f = it->second.file;
    }
    if (f == nullptr) continue;
    // Long since handed to writeback (PwriteAll started it): wait for it to
    // finish, then give the pages back. The pages of the next writes are then
    // recently freed ones: on this project's VMs, page cache grown into fresh
    // memory cost half a download's CPU (1 GiB from libtorrent: 2.5-3.0 s of
    // CPU and 2.9-3.3 s before, 1.3 s and 1.6 s after). Waiting here is also
    // the backpressure when the disk is slower than the network.
    ::sync_file_range(f->fd, static_cast<off_t>(w.offset),
                      static_cast<off_t>(w.length),
                      SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                          SYNC_FILE_RANGE_WAIT_AFTER);
    ::posix_fadvise(f->fd, static_cast<off_t>(w.offset),
                    static_cast<off_t>(w.length), POSIX_FADV_DONTNEED);
  }
}

absl::Status FileStorage::ReadRange(uint32_t piece, uint32_t offset,
                                    uint32_t length, char* out) {
  const uint64_t end = uint64_t{offset} + length;
  for (const chunk::FileSlice& s : chunk::MapPiece(m_, piece)) {
    const uint64_t lo = std::max<uint64_t>(offset, s.piece_offset);
    const uint64_t hi =
        std::min<uint64_t>(end, uint64_t{s.piece_offset} + s.length);
    if (lo >= hi) continue;
    char* dst = out + (lo - offset);
    const uint32_t n = static_cast<uint32_t>(hi - lo);
    const chunk::FileEntry& f = m_.files[s.file_index];
    if (f.pad_file) {
      std::memset(dst, 0, n);
      continue;
    }
    SHOAL_ASSIGN_OR_RETURN(bool part, UsesPartFile(s.file_index));
    if (part) {
      SHOAL_RETURN_IF_ERROR(
          part_->Read(piece, static_cast<uint32_t>(lo), n, dst));
      continue;
    }
    auto file = Open(s.file_index, OpenMode::kRead);
    if (absl::IsNotFound(file.status())) {
      return absl::UnavailableError(
          absl::StrCat("piece ", piece, ": ", f.path, " does not exist"));
    }
    if (!file.ok()) return file.status();
    SHOAL_ASSIGN_OR_RETURN(
        size_t got, PreadAll((*file)->fd, dst, n,
                             s.file_offset + (lo - s.piece_offset), f.path));
    if (got < n) {
      return absl::UnavailableError(
          absl::StrCat("piece ", piece, ": ", f.path, " is too short"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> FileStorage::ReadBlock(uint32_t piece,
                                                   uint32_t offset,
                                                   uint32_t length) {
  if (piece >= m_.num_pieces ||
      uint64_t{offset} + length > chunk::PieceSize(m_, piece)) {
    return absl::OutOfRangeError(absl::StrCat("block ", offset, "+", length,
                                              " of piece ", piece,
                                              " is out of range"));
  }
  std::string out(length, '\0');
  absl::ReaderMutexLock lock(&mu_);
  SHOAL_RETURN_IF_ERROR(ReadRange(piece, offset, length, out.data()));
  return out;
}

absl::StatusOr<std::string> FileStorage::ReadPiece(uint32_t piece) {
  if (piece >= m_.num_pieces) {
    return absl::OutOfRangeError(absl::StrCat(
        "piece ", piece, " of ", m_.num_pieces, " is out of range"));
  }
  return ReadBlock(piece, 0, chunk::PieceSize(m_, piece));
}

absl::Status FileStorage::SetFilePriorities(std::vector<uint8_t> priorities) {
  if (priorities.size() != m_.files.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        priorities.size(), " priorities for ", m_.files.size(), " files"));
  }
  absl::MutexLock lock(&mu_);
  std::vector<size_t> now_wanted;
  for (size_t i = 0; i < priorities.size(); ++i) {
    if (priorities_[i] != kPriorityDontDownload ||
        priorities[i] == kPriorityDontDownload || m_.files[i].pad_file) {
      continue;
    }
    SHOAL_ASSIGN_OR_RETURN(bool part, UsesPartFile(i));
    if (part) now_wanted.push_back(i);
  }
  priorities_ = std::move(priorities);
  for (size_t i : now_wanted) SHOAL_RETURN_IF_ERROR(MoveFromPartFile(i));
  return absl::OkStatus();
}

std::vector<uint8_t> FileStorage::FilePriorities() const {
  absl::ReaderMutexLock lock(&mu_);
  return priorities_;
}

absl::Status FileStorage::MoveFromPartFile(size_t file) {
  const chunk::PieceRange range = chunk::FilePieces(m_, file);
  for (uint32_t p = range.first; p < range.end; ++p) {
    SHOAL_ASSIGN_OR_RETURN(bool has, part_->HasSlot(p));
    if (!has) continue;
    bool still_needed = false;
    for (const chunk::FileSlice& s : chunk::MapPiece(m_, p)) {
      if (m_.files[s.file_index].pad_file) continue;
      if (s.file_index != file) {
        SHOAL_ASSIGN_OR_RETURN(bool part, UsesPartFile(s.file_index));
        still_needed |= part;
        continue;
      }
      std::string buf(s.length, '\0');
      SHOAL_RETURN_IF_ERROR(
          part_->Read(p, s.piece_offset, s.length, buf.data()));
      SHOAL_ASSIGN_OR_RETURN(std::shared_ptr<OpenFile> f,
                             Open(file, OpenMode::kCreate));
      SHOAL_RETURN_IF_ERROR(PwriteAll(f->fd, buf.data(), buf.size(),
                                      s.file_offset, m_.files[file].path));
    }
    if (!still_needed) SHOAL_RETURN_IF_ERROR(part_->Free(p));
  }
  // A file of the torrent exists now, even if no piece held its bytes.
  return Open(file, OpenMode::kCreate).status();
}

absl::StatusOr<chunk::Bitfield> FileStorage::Check(
    ThreadPool& pool, const chunk::PieceVerifier& verifier) {
  const std::vector<FileState> states = FileStates();
  chunk::Bitfield have(m_.num_pieces);
  absl::Status error;
  OrderedWork<std::pair<uint32_t, absl::Status>> work(
      pool, 2 * static_cast<size_t>(pool.size()));
  auto drain = [&] {
    auto [piece, status] = work.PopOldest();
    if (status.ok()) {
      have.set(piece);
    } else if (!absl::IsDataLoss(status) && !absl::IsUnavailable(status) &&
               !absl::IsNotFound(status) && error.ok()) {
      error = status;
    }
  };
  for (uint32_t p = 0; p < m_.num_pieces && error.ok(); ++p) {
    // Skip the read when a file the piece needs is missing.
    bool missing = false;
    for (const chunk::FileSlice& s : chunk::MapPiece(m_, p)) {
      if (!m_.files[s.file_index].pad_file && !states[s.file_index].exists) {
        auto slot = part_->HasSlot(p);
        missing = !slot.ok() || !*slot;
        if (missing) break;
      }
    }
    if (missing) continue;
    if (work.full()) drain();
    work.Submit([this, &verifier, p]() -> std::pair<uint32_t, absl::Status> {
      auto data = ReadPiece(p);
      if (!data.ok()) return {p, data.status()};
      return {p, verifier.Verify(p, *data)};
    });
  }
  while (!work.empty()) drain();
  if (!error.ok()) return error;
  return have;
}

absl::StatusOr<std::vector<std::string>> FileStorage::Finalize() {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> skipped;
  for (size_t i = 0; i < m_.files.size(); ++i) {
    const chunk::FileEntry& f = m_.files[i];
    if (f.pad_file) continue;
    if (f.symlink) {
      // The target, from the save path: the torrent's root directory, then
      // the target's elements, none of which may climb ("..").
      std::vector<std::string> target;
      if (m_.multi_file) target.push_back(m_.name);
      auto rel = SplitSafe(f.symlink_target);
      if (!rel || f.symlink_target.empty()) {
        skipped.push_back(f.path);
        continue;
      }
      target.insert(target.end(), rel->begin(), rel->end());
      const std::vector<std::string>& link = components_[i];
      if (target == link) {
        skipped.push_back(f.path);
        continue;
      }
      // Relative to the link's directory.
      size_t common = 0;
      while (common + 1 < link.size() && common < target.size() &&
             link[common] == target[common]) {
        ++common;
      }
      std::string value;
      for (size_t k = common; k + 1 < link.size(); ++k) value.append("../");
      value.append(absl::StrJoin(target.begin() + common, target.end(), "/"));
      if (value.empty()) value.push_back('.');
      SHOAL_ASSIGN_OR_RETURN(int dir_fd, OpenParent(link, /*create=*/true));
      ScopedFd dir(dir_fd);
      const char* name = link.back().c_str();
      struct stat st;
      if (::fstatat(dir.get(), name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (!S_ISLNK(st.st_mode)) continue;  // never clobber data
        ::unlinkat(dir.get(), name, 0);
      }
      if (::symlinkat(value.c_str(), dir.get(), name) != 0) {
        return ErrnoStatus(errno,
                           absl::StrCat("cannot create symlink ", f.path));
      }
      continue;
    }
    if (f.length == 0) {
      if (priorities_[i] == kPriorityDontDownload) continue;
      SHOAL_RETURN_IF_ERROR(Open(i, OpenMode::kCreate).status());
    }
    if (f.executable) {
      auto file = Open(i, OpenMode::kRead);
      if (absl::IsNotFound(file.status())) continue;
      SHOAL_RETURN_IF_ERROR(file.status());
      struct stat st;
      if (::fstat((*file)->fd, &st) != 0) {
        return ErrnoStatus(errno, absl::StrCat("cannot stat ", f.path));
      }
      const mode_t mode = (st.st_mode & 07777) | ((st.st_mode & 0444) >> 2);
      if (mode != (st.st_mode & 07777) && ::fchmod((*file)->fd, mode) != 0) {
        return ErrnoStatus(errno, absl::StrCat("cannot chmod ", f.path));
      }
    }
  }
  return skipped;
}

absl::Status FileStorage::DeleteFiles() {
  absl::MutexLock lock(&mu_);
  CloseAll();
  absl::Status result = part_->Delete();
  std::set<std::vector<std::string>> dirs;
  for (size_t i = 0; i < m_.files.size(); ++i) {
    if (m_.files[i].pad_file) continue;
    const std::vector<std::string>& c = components_[i];
    for (size_t k = 1; k < c.size(); ++k) {
      dirs.insert(std::vector<std::string>(c.begin(), c.begin() + k));
    }
    auto dir = OpenParent(c, /*create=*/false);
    if (!dir.ok()) {
      if (!absl::IsNotFound(dir.status()) && result.ok()) result = dir.status();
      continue;
    }
    ScopedFd d(*dir);
    if (::unlinkat(d.get(), c.back().c_str(), 0) != 0 && errno != ENOENT &&
        errno != EISDIR && result.ok()) {
      result =
          ErrnoStatus(errno, absl::StrCat("cannot remove ", m_.files[i].path));
    }
  }
  // Deepest first, so parents empty out; non-empty ones (user files) stay.
  std::vector<std::vector<std::string>> order(dirs.begin(), dirs.end());
  std::stable_sort(
      order.begin(), order.end(),
      [](const auto& a, const auto& b) { return a.size() > b.size(); });
  for (const auto& c : order) {
    auto dir = OpenParent(c, /*create=*/false);
    if (!dir.ok()) continue;
    ScopedFd d(*dir);
    ::unlinkat(d.get(), c.back().c_str(), AT_REMOVEDIR);
  }
  return result;
}

std::vector<FileState> FileStorage::FileStates() {
  std::vector<FileState> out(m_.files.size());
  for (size_t i = 0; i < m_.files.size(); ++i) {
    if (m_.files[i].pad_file) continue;
    auto dir = OpenParent(components_[i], /*create=*/false);
    if (!dir.ok()) continue;
    ScopedFd d(*dir);
    struct stat st;
    if (::fstatat(d.get(), components_[i].back().c_str(), &st,
                  AT_SYMLINK_NOFOLLOW) != 0) {
      continue;
    }
    const bool want_link = m_.files[i].symlink;
    if (want_link ? !S_ISLNK(st.st_mode) : !S_ISREG(st.st_mode)) continue;
    out[i].exists = true;
    out[i].size = want_link ? 0 : static_cast<uint64_t>(st.st_size);
    out[i].mtime_ns =
        int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec;
  }
  return out;
}

absl::Status FileStorage::Flush() {
  std::vector<std::shared_ptr<OpenFile>> files;
  {
    absl::MutexLock lock(&cache_mu_);
    for (const auto& [i, e] : cache_) {
      if (e.file->writable) files.push_back(e.file);
    }
  }
  for (const auto& f : files) {
    if (::fdatasync(f->fd) != 0)
      return ErrnoStatus(errno, "cannot sync a file");
  }
  return part_->Sync();
}

}  // namespace shoal::store
