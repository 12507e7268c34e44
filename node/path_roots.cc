#include "node/path_roots.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace shoal::node {
namespace {

namespace fs = std::filesystem;

fs::path ResolveExisting(const fs::path& p) {
  std::error_code ec;
  fs::path r = fs::weakly_canonical(p, ec);
  if (ec) r = p.lexically_normal();
  // "/a/b/" and "/a/b" are the same directory.
  if (!r.has_filename() && r.has_parent_path() && r != r.root_path())
    r = r.parent_path();
  return r;
}

bool Inside(const fs::path& p, const fs::path& root) {
  auto pi = p.begin();
  for (auto ri = root.begin(); ri != root.end(); ++ri, ++pi) {
    if (ri->empty()) continue;  // a trailing separator
    if (pi == p.end() || *pi != *ri) return false;
  }
  return true;
}

}  // namespace

PathRoots::PathRoots(const std::vector<fs::path>& roots) {
  for (const fs::path& r : roots) roots_.push_back(ResolveExisting(r));
}

absl::StatusOr<fs::path> PathRoots::Resolve(const fs::path& path,
                                            std::string_view what) const {
  const fs::path resolved = ResolveExisting(path);
  if (roots_.empty()) return resolved;
  for (const fs::path& root : roots_)
    if (Inside(resolved, root)) return resolved;
  std::vector<std::string> names;
  for (const fs::path& r : roots_) names.push_back(r.string());
  return absl::PermissionDeniedError(absl::StrCat(
      std::string(what), " ", path.string(),
      path == resolved ? "" : absl::StrCat(" (", resolved.string(), ")"),
      " is outside the node's path roots (path_roots / --path-root: ",
      absl::StrJoin(names, ", "), ")"));
}

}  // namespace shoal::node
