#include "base/tree_walk.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace shoal {
namespace {

absl::Status FsError(const std::filesystem::path& p, std::error_code ec) {
  std::string msg = absl::StrCat("reading ", p.string(), ": ", ec.message());
  if (ec == std::errc::no_such_file_or_directory)
    return absl::NotFoundError(msg);
  if (ec == std::errc::permission_denied)
    return absl::PermissionDeniedError(msg);
  if (ec == std::errc::not_a_directory) return absl::InvalidArgumentError(msg);
  return absl::InternalError(msg);
}

}  // namespace

absl::StatusOr<std::vector<TreeFile>> ListTreeFiles(
    const std::filesystem::path& root, size_t max_files) {
  std::error_code ec;
  auto root_status = std::filesystem::status(root, ec);
  if (ec) return FsError(root, ec);
  if (!std::filesystem::is_directory(root_status)) {
    return absl::InvalidArgumentError(
        absl::StrCat(root.string(), " is not a directory"));
  }
  std::vector<TreeFile> out;
  std::filesystem::recursive_directory_iterator it(root, ec), end;
  if (ec) return FsError(root, ec);
  for (; it != end; it.increment(ec)) {
    if (ec) return FsError(root, ec);
    const std::filesystem::directory_entry& e = *it;
    auto st = e.symlink_status(ec);
    if (ec) return FsError(e.path(), ec);
    // Lexically: relative() would follow a symbolic link.
    const std::string rel = e.path().lexically_relative(root).generic_string();
    if (std::filesystem::is_symlink(st)) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", rel,
                       "' is a symbolic link: directory content holds only "
                       "regular files and folders"));
    }
    if (std::filesystem::is_directory(st)) continue;
    if (!std::filesystem::is_regular_file(st)) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", rel,
                       "' is not a regular file: directory content holds only "
                       "regular files and folders"));
    }
    const uint64_t size = e.file_size(ec);
    if (ec) return FsError(e.path(), ec);
    out.push_back({rel, e.path(), size});
    if (out.size() > max_files) {
      return absl::InvalidArgumentError(
          absl::StrCat(root.string(), " holds more than ", max_files,
                       " files, the most a directory content may hold"));
    }
  }
  if (out.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(root.string(), " holds no file"));
  }
  return out;
}

}  // namespace shoal
