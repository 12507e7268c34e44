#include "node/content_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "base/hex.h"
#include "base/ordered_work.h"
#include "base/status_macros.h"
#include "base/tree_walk.h"
#include "spdlog/spdlog.h"

namespace shoal::node {
namespace {

using chunk::ContentLayout;
using codec::Sha256Digest;

// Pieces in flight per add or read: enough to keep every pool thread busy while
// the caller stores or sends, and small enough that memory stays bounded (at
// most 4 MiB per piece).
size_t Window(const ThreadPool& pool) {
  return static_cast<size_t>(pool.size()) * 2 + 2;
}

// A read's pieces in flight: the same bound, and fewer (at least 2). A reader
// of fetched content is part of the fetching node's peak memory: 6 pieces of
// 1 MiB were 6.5 MB of a 1 GiB fetch's.
size_t ReadWindow(const ThreadPool& pool, uint32_t piece_length) {
  // 2 MiB, or half a MiB per pool thread where there are more than four: on 2
  // cores 4 MiB held four 1 MiB pieces for two threads, each copied twice more
  // inside RocksDB's blob read, for no speed (a 1 GiB `cat --peer` peaked 2-3
  // MB higher).
  const uint64_t bytes =
      std::max<uint64_t>(2 << 20, uint64_t{512 << 10} * pool.size());
  return std::clamp<size_t>(bytes / piece_length, 2, Window(pool));
}

absl::Status ErrnoStatus(int err, const std::string& what) {
  std::string msg = absl::StrCat(what, ": ", std::strerror(err));
  switch (err) {
    case ENOENT:
      return absl::NotFoundError(msg);
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(msg);
    case ENOSPC:
      return absl::ResourceExhaustedError(msg);
    case EISDIR:
    case ENOTDIR:
      return absl::InvalidArgumentError(msg);
    default:
      return absl::InternalError(msg);
  }
}

// Owns a file descriptor.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

absl::Status PreadFully(int fd, char* buf, size_t len, uint64_t offset) {
  while (len > 0) {
    ssize_t n = ::pread(fd, buf, len, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "reading file");
    }
    if (n == 0)
      return absl::FailedPreconditionError(
          "file shrank while it was being added");
    buf += n;
    len -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return absl::OkStatus();
}

absl::Status WriteFully(int fd, const char* buf, size_t len) {
  while (len > 0) {
    ssize_t n = ::write(fd, buf, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "writing spool file");
    }
    buf += n;
    len -= static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

// Hashes piece `index` and stores it under `upload`; returns its hash.
absl::StatusOr<Sha256Digest> HashAndStore(store::ChunkStore& store,
                                          const store::UploadId& upload,
                                          const ContentLayout& layout,
                                          uint32_t index,
                                          std::string_view data) {
  auto bytes = codec::AsBytes(data);
  int levels = layout.piece_tree_levels(index);
  Sha256Digest hash = chunk::HashPiece(bytes, levels);
  SHOAL_RETURN_IF_ERROR(
      store.PutUploadPiece(upload, index, hash, levels, bytes));
  return hash;
}

// Collects the piece layer of an add and commits it.
absl::StatusOr<store::ContentState> Commit(store::ChunkStore& store,
                                           const store::UploadId& upload,
                                           const ContentLayout& layout,
                                           std::vector<Sha256Digest> layer,
                                           std::string name, AddAs as) {
  store::ContentRecord record;
  record.length = layout.length;
  record.piece_length = layout.piece_length;
  record.pieces_root = chunk::PiecesRoot(layout, layer);
  record.id = chunk::ComputeContentId(layout, record.pieces_root);
  record.piece_layer = std::move(layer);
  record.name = std::move(name);
  record.in_directory_only = as == AddAs::kDirectoryFile;
  return store.CommitUpload(upload, std::move(record));
}

// Aborts an upload unless released.
class UploadGuard {
 public:
  UploadGuard(store::ChunkStore& store, store::UploadId id)
      : store_(store), id_(id) {}
  ~UploadGuard() {
    if (active_) store_.AbortUpload(id_);
  }
  void Release() { active_ = false; }

 private:
  store::ChunkStore& store_;
  store::UploadId id_;
  bool active_ = true;
};

}  // namespace

class ContentAdder::Impl {
 public:
  Impl(store::ChunkStore& store, ThreadPool& pool, std::string name, AddAs as)
      : store_(store),
        pool_(pool),
        work_(pool, Window(pool)),
        name_(std::move(name)),
        as_(as) {}

  ~Impl() {
    // Let running jobs finish before the upload they write to goes away.
    while (!work_.empty()) work_.PopOldest().IgnoreError();
    if (upload_ && !finished_) store_.AbortUpload(*upload_);
    if (spool_fd_ >= 0) ::close(spool_fd_);
    if (!spool_path_.empty()) {
      std::error_code ec;
      std::filesystem::remove(spool_path_, ec);
    }
  }

  absl::Status StartKnown(uint64_t length) {
    layout_ = ContentLayout::ForLength(length);
    SHOAL_ASSIGN_OR_RETURN(upload_, store_.BeginUpload(length));
    layer_.reserve(layout_.num_pieces());
    return absl::OkStatus();
  }

  absl::Status StartSpool(const std::filesystem::path& dir) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec)
      return absl::InternalError(
          absl::StrCat("creating ", dir.string(), ": ", ec.message()));
    std::string tmpl = (dir / "add-XXXXXX").string();
    spool_fd_ = ::mkstemp(tmpl.data());
    if (spool_fd_ < 0) return ErrnoStatus(errno, "creating spool file");
    spool_path_ = tmpl;
    return absl::OkStatus();
  }

  absl::Status Write(std::string_view data) {
    if (spool_fd_ >= 0) {
      received_ += data.size();
      return WriteFully(spool_fd_, data.data(), data.size());
    }
    if (received_ + data.size() > layout_.length) {
      return absl::InvalidArgumentError(absl::StrCat(
          "more data than the announced length of ", layout_.length, " bytes"));
    }
    received_ += data.size();
    while (!data.empty()) {
      uint32_t size = layout_.piece_size(next_piece_);
      if (piece_.capacity() < size) piece_.reserve(size);
      size_t take = std::min<size_t>(size - piece_.size(), data.size());
      piece_.append(data.substr(0, take));
      data.remove_prefix(take);
      if (piece_.size() == size) SHOAL_RETURN_IF_ERROR(SubmitPiece());
    }
    return absl::OkStatus();
  }

  absl::StatusOr<store::ContentState> Finish() {
    if (spool_fd_ >= 0) {
      ::close(spool_fd_);
      spool_fd_ = -1;
      return AddFile(store_, pool_, spool_path_, name_, as_);
    }
    if (received_ != layout_.length) {
      return absl::InvalidArgumentError(
          absl::StrCat("stream ended after ", received_,
                       " bytes of the announced ", layout_.length));
    }
    while (!work_.empty()) SHOAL_RETURN_IF_ERROR(PopResult());
    finished_ = true;
    auto state =
        Commit(store_, *upload_, layout_, std::move(layer_), name_, as_);
    if (!state.ok()) store_.AbortUpload(*upload_);
    return state;
  }

 private:
  absl::Status PopResult() {
    SHOAL_ASSIGN_OR_RETURN(Sha256Digest h, work_.PopOldest());
    layer_.push_back(h);
    return absl::OkStatus();
  }

  absl::Status SubmitPiece() {
    if (work_.full()) SHOAL_RETURN_IF_ERROR(PopResult());
    auto data = std::make_shared<std::string>(std::move(piece_));
    piece_ = std::string();
    uint32_t index = next_piece_++;
    work_.Submit([this, data, index] {
      return HashAndStore(store_, *upload_, layout_, index, *data);
    });
    return absl::OkStatus();
  }

  store::ChunkStore& store_;
  ThreadPool& pool_;
  OrderedWork<absl::StatusOr<Sha256Digest>> work_;
  std::string name_;
  const AddAs as_;
  ContentLayout layout_;
  std::optional<store::UploadId> upload_;
  std::vector<Sha256Digest> layer_;
  std::string piece_;
  uint32_t next_piece_ = 0;
  uint64_t received_ = 0;
  bool finished_ = false;
  int spool_fd_ = -1;
  std::filesystem::path spool_path_;
};

ContentAdder::ContentAdder(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}
ContentAdder::~ContentAdder() = default;

absl::StatusOr<std::unique_ptr<ContentAdder>> ContentAdder::Start(
    store::ChunkStore& store, ThreadPool& pool, std::optional<uint64_t> length,
    std::string name, std::filesystem::path spool_dir, AddAs as) {
  auto impl = std::make_unique<Impl>(store, pool, std::move(name), as);
  if (length) {
    SHOAL_RETURN_IF_ERROR(impl->StartKnown(*length));
  } else {
    SHOAL_RETURN_IF_ERROR(impl->StartSpool(spool_dir));
  }
  return std::unique_ptr<ContentAdder>(new ContentAdder(std::move(impl)));
}

absl::Status ContentAdder::Write(std::string_view data) {
  return impl_->Write(data);
}

absl::StatusOr<store::ContentState> ContentAdder::Finish() {
  return impl_->Finish();
}

absl::StatusOr<store::ContentState> AddFile(store::ChunkStore& store,
                                            ThreadPool& pool,
                                            const std::filesystem::path& path,
                                            std::string name, AddAs as) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer (fstat refuses it).
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (fd.get() < 0)
    return ErrnoStatus(errno, absl::StrCat("opening ", path.string()));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0)
    return ErrnoStatus(errno, absl::StrCat("stat ", path.string()));
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path.string(), " is not a regular file"));
  }
  ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
  if (name.empty()) name = path.filename().string();
  const ContentLayout layout =
      ContentLayout::ForLength(static_cast<uint64_t>(st.st_size));
  SHOAL_ASSIGN_OR_RETURN(store::UploadId upload,
                         store.BeginUpload(layout.length));
  UploadGuard guard(store, upload);

  std::vector<Sha256Digest> layer;
  layer.reserve(layout.num_pieces());
  absl::Status status;
  {
    OrderedWork<absl::StatusOr<Sha256Digest>> work(pool, Window(pool));
    auto pop = [&]() -> absl::Status {
      SHOAL_ASSIGN_OR_RETURN(Sha256Digest h, work.PopOldest());
      layer.push_back(h);
      return absl::OkStatus();
    };
    for (uint32_t i = 0; i < layout.num_pieces() && status.ok(); ++i) {
      if (work.full()) status = pop();
      if (!status.ok()) break;
      work.Submit([&store, &upload, &layout, i,
                   fd = fd.get()]() -> absl::StatusOr<Sha256Digest> {
        // Not a std::string: its zero-fill would be one more pass over the
        // bytes.
        const uint32_t size = layout.piece_size(i);
        std::unique_ptr<char[]> data(new char[size]);
        SHOAL_RETURN_IF_ERROR(
            PreadFully(fd, data.get(), size, layout.piece_offset(i)));
        return HashAndStore(store, upload, layout, i,
                            std::string_view(data.get(), size));
      });
    }
    while (!work.empty()) {
      absl::Status s = pop();
      if (status.ok()) status = s;
    }
  }
  SHOAL_RETURN_IF_ERROR(status);
  struct stat after;
  if (::fstat(fd.get(), &after) == 0 && after.st_size != st.st_size) {
    return absl::FailedPreconditionError(
        absl::StrCat(path.string(), " changed size while it was being added"));
  }
  auto state =
      Commit(store, upload, layout, std::move(layer), std::move(name), as);
  if (state.ok()) guard.Release();
  return state;
}

absl::StatusOr<store::ContentState> CommitDirectory(
    store::ChunkStore& store, std::vector<chunk::DirectoryFile> files,
    std::string name) {
  std::vector<chunk::ContentId> ids;
  ids.reserve(files.size());
  for (const auto& f : files) ids.push_back(f.id());
  auto dir = chunk::Directory::Build(std::move(files));
  absl::StatusOr<store::ContentState> state =
      dir.ok() ? store.PutDirectory(*dir, std::move(name))
               : absl::StatusOr<store::ContentState>(dir.status());
  if (!state.ok()) store.RemoveOrphans(ids);
  return state;
}

absl::StatusOr<store::ContentState> AddDirectory(
    store::ChunkStore& store, ThreadPool& pool,
    const std::filesystem::path& root, std::string name) {
  SHOAL_ASSIGN_OR_RETURN(std::vector<TreeFile> tree,
                         ListTreeFiles(root, chunk::kMaxDirectoryFiles));
  if (name.empty()) name = root.filename().string();
  if (name.empty()) name = root.parent_path().filename().string();
  std::vector<chunk::DirectoryFile> files(tree.size());
  // Small files are mostly per-file overhead (a store commit each): several
  // adds at once keep the pool busy. Each add spreads its pieces on the pool.
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  absl::Mutex mu;
  absl::Status first_error;
  auto worker = [&] {
    for (size_t i = next++; i < tree.size() && !failed; i = next++) {
      auto st = AddFile(store, pool, tree[i].full, "", AddAs::kDirectoryFile);
      if (!st.ok()) {
        absl::MutexLock lock(&mu);
        if (first_error.ok()) {
          first_error = absl::Status(
              st.status().code(), absl::StrCat("adding '", tree[i].path,
                                               "': ", st.status().message()));
        }
        failed = true;
        return;
      }
      files[i] = {tree[i].path, st->record.length, st->record.pieces_root};
    }
  };
  const size_t n_threads =
      std::min<size_t>(tree.size(), std::max(2, pool.size()));
  std::vector<std::thread> threads;
  for (size_t t = 1; t < n_threads; ++t) threads.emplace_back(worker);
  worker();
  for (auto& t : threads) t.join();
  if (failed) {
    std::vector<chunk::ContentId> added;
    for (const auto& f : files)
      if (!f.path.empty()) added.push_back(f.id());
    store.RemoveOrphans(added);
    return first_error;
  }
  return CommitDirectory(store, std::move(files), std::move(name));
}

absl::Status ReadContent(store::ChunkStore& store, ThreadPool& pool,
                         const chunk::ContentId& id, uint64_t offset,
                         std::optional<uint64_t> length, const ReadSink& sink,
                         PieceEvents* arriving, absl::Duration idle_timeout) {
  SHOAL_ASSIGN_OR_RETURN(store::ContentState state, store.Stat(id));
  const ContentLayout layout = state.record.layout();
  if (offset > layout.length) {
    return absl::InvalidArgumentError(
        absl::StrCat("offset ", offset, " is past the end of the content (",
                     layout.length, " bytes)"));
  }
  uint64_t len = length.value_or(layout.length - offset);
  if (len > layout.length - offset) {
    return absl::InvalidArgumentError(absl::StrCat(
        "range ", offset, "+", len, " is past the end of the content (",
        layout.length, " bytes)"));
  }
  SHOAL_RETURN_IF_ERROR(store.Touch(id));
  if (len == 0) return absl::OkStatus();
  const uint64_t end = offset + len;
  const uint32_t first = static_cast<uint32_t>(offset / layout.piece_length);
  const uint32_t last = static_cast<uint32_t>((end - 1) / layout.piece_length);

  OrderedWork<absl::StatusOr<std::string>> work(
      pool, ReadWindow(pool, layout.piece_length));
  uint32_t next_submit = first;
  auto submit_more = [&] {
    while (next_submit <= last && !work.full() &&
           (arriving == nullptr || arriving->Has(next_submit))) {
      uint32_t i = next_submit++;
      work.Submit([&store, &id, i] { return store.ReadPiece(id, i); });
    }
  };
  submit_more();
  for (uint32_t i = first; i <= last; ++i) {
    if (work.empty() && arriving != nullptr) {
      // Fetching: wait for the next piece to arrive.
      SHOAL_RETURN_IF_ERROR(arriving->WaitForPiece(i, idle_timeout));
      submit_more();
    }
    SHOAL_ASSIGN_OR_RETURN(std::string piece, work.PopOldest());
    submit_more();
    const uint64_t piece_start = layout.piece_offset(i);
    const uint64_t from = std::max(offset, piece_start) - piece_start;
    const uint64_t to =
        std::min<uint64_t>(end, piece_start + piece.size()) - piece_start;
    if (from != 0 || to != piece.size()) piece = piece.substr(from, to - from);
    if (!sink(std::move(piece), piece_start + from)) {
      return absl::CancelledError("reader went away");
    }
  }
  return absl::OkStatus();
}

}  // namespace shoal::node
