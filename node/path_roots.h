// Confines the file-system paths that API callers name (files added by path,
// torrent save paths) to the directories the operator configured
// (`path_roots`, `--path-root`).
#ifndef SHOAL_NODE_PATH_ROOTS_H_
#define SHOAL_NODE_PATH_ROOTS_H_

#include <filesystem>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace shoal::node {

// Immutable, so thread-safe.
class PathRoots {
 public:
  // The roots are resolved (symlinks followed) once, here.
  explicit PathRoots(const std::vector<std::filesystem::path>& roots);

  bool enabled() const { return !roots_.empty(); }

  // `path` with its symlinks resolved (for the part that exists; the rest
  // normalised), if it lies inside a root or no roots are set.
  // PERMISSION_DENIED naming `what`, the path and the setting otherwise. The
  // caller uses the returned path, so a symlink changed after the check can't
  // redirect it.
  absl::StatusOr<std::filesystem::path> Resolve(
      const std::filesystem::path& path, std::string_view what) const;

 private:
  std::vector<std::filesystem::path> roots_;
};

}  // namespace shoal::node

#endif  // SHOAL_NODE_PATH_ROOTS_H_
