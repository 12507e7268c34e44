// Lists the regular files of a directory tree, for adding it as directory
// content (the daemon reads them itself, or the CLI streams them).
#ifndef SHOAL_BASE_TREE_WALK_H_
#define SHOAL_BASE_TREE_WALK_H_

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace shoal {

// One regular file of a tree. A value type.
struct TreeFile {
  // Relative to the tree's root, segments joined with '/'.
  std::string path;
  std::filesystem::path full;
  uint64_t size = 0;
};

// The regular files under `root`, in no particular order. Folders with no
// file are skipped. NOT_FOUND / PERMISSION_DENIED for a root or folder that
// cannot be read; INVALID_ARGUMENT if `root` is not a directory, holds a
// symbolic link or a special file (naming it), or holds no file at all, or
// more than `max_files`.
absl::StatusOr<std::vector<TreeFile>> ListTreeFiles(
    const std::filesystem::path& root, size_t max_files);

}  // namespace shoal

#endif  // SHOAL_BASE_TREE_WALK_H_
