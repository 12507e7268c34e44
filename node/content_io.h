// Adding content to the chunk store and reading it back, with hashing and
// verification spread over the hashing/disk pool.
//
// An add hashes each piece (BEP 52 merkle root of its 16 KiB blocks) on the
// pool as soon as it is complete and stores it; at the end the pieces root and
// content ID follow from the piece layer. A read verifies the next pieces on
// the pool while the current one is delivered. Both keep a bounded number of
// pieces in flight, so memory stays flat whatever the content's size.
#ifndef SHOAL_NODE_CONTENT_IO_H_
#define SHOAL_NODE_CONTENT_IO_H_

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "base/thread_pool.h"
#include "chunk/content_id.h"
#include "node/piece_events.h"
#include "store/chunk_store.h"

namespace shoal::node {

// What an add is for: content of its own, or a file of a directory (stored
// for directories only until added or pinned on its own).
enum class AddAs { kContent, kDirectoryFile };

// Receives content as a stream of writes and stores it.
// Not thread-safe: one caller feeds it. Destroying it unfinished aborts the
// add.
class ContentAdder {
 public:
  // Starts adding content. With `length`, pieces are hashed and stored as they
  // arrive; without, bytes are spooled to a temporary file in `spool_dir` and
  // added from there at Finish. RESOURCE_EXHAUSTED if the store cannot make
  // room for `length` bytes.
  static absl::StatusOr<std::unique_ptr<ContentAdder>> Start(
      store::ChunkStore& store, ThreadPool& pool,
      std::optional<uint64_t> length, std::string name,
      std::filesystem::path spool_dir, AddAs as = AddAs::kContent);
  ~ContentAdder();

  // Appends bytes. INVALID_ARGUMENT if they go past the announced length.
  absl::Status Write(std::string_view data);

  // Completes the add. INVALID_ARGUMENT if fewer bytes came than announced.
  absl::StatusOr<store::ContentState> Finish();

 private:
  class Impl;
  explicit ContentAdder(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Adds the regular file at `path`, reading and hashing its pieces in parallel.
// The name defaults to the file's base name. NOT_FOUND / PERMISSION_DENIED /
// INVALID_ARGUMENT (not a regular file) for a bad path; RESOURCE_EXHAUSTED if
// the store cannot make room; FAILED_PRECONDITION if the file changed size
// while being read.
absl::StatusOr<store::ContentState> AddFile(store::ChunkStore& store,
                                            ThreadPool& pool,
                                            const std::filesystem::path& path,
                                            std::string name,
                                            AddAs as = AddAs::kContent);

// Adds the tree at `root` as one directory content (chunk/directory.h): each
// regular file is added as content of its own (several at a time), then the
// directory's record. INVALID_ARGUMENT for a symbolic link, a special file, a
// path that is not UTF-8, no file or too many (naming the culprit); the
// errors of AddFile otherwise. Nothing is left behind on failure.
absl::StatusOr<store::ContentState> AddDirectory(
    store::ChunkStore& store, ThreadPool& pool,
    const std::filesystem::path& root, std::string name);

// Builds and stores a directory from files already added with
// AddAs::kDirectoryFile (their paths and records); removes them again if it
// fails.
absl::StatusOr<store::ContentState> CommitDirectory(
    store::ChunkStore& store, std::vector<chunk::DirectoryFile> files,
    std::string name);

// Receives the bytes of a read in order: `data` starts at content offset
// `offset`. Returns false to stop the read (the caller went away).
using ReadSink = std::function<bool(std::string&& data, uint64_t offset)>;

// Reads bytes [offset, offset + length) of `id` (to the end without `length`),
// verifying every piece, and hands them to `sink` in order. NOT_FOUND for
// unknown content; INVALID_ARGUMENT for a range outside the content;
// UNAVAILABLE if a piece in the range is not stored locally; DATA_LOSS if a
// stored piece failed verification (it is dropped); CANCELLED if the sink
// stopped.
//
// With `arriving`, the content is being fetched: pieces are read as `arriving`
// reports them, in order, waiting for each; UNAVAILABLE if none arrives for
// `idle_timeout`.
absl::Status ReadContent(store::ChunkStore& store, ThreadPool& pool,
                         const chunk::ContentId& id, uint64_t offset,
                         std::optional<uint64_t> length, const ReadSink& sink,
                         PieceEvents* arriving = nullptr,
                         absl::Duration idle_timeout = absl::Seconds(30));

}  // namespace shoal::node

#endif  // SHOAL_NODE_CONTENT_IO_H_
