#include "chunk/directory.h"

#include <algorithm>
#include <bit>

#include "absl/strings/str_cat.h"
#include "base/hex.h"
#include "chunk/merkle.h"
#include "codec/bdecode.h"
#include "codec/bencode.h"

namespace shoal::chunk {

using codec::Bdecode;
using codec::BdecodeOptions;
using codec::BEntry;
using codec::BNode;
using codec::Sha256;
using codec::Sha256Digest;
namespace bencode = codec::bencode;
namespace {

std::vector<std::string_view> Split(std::string_view s) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (;;) {
    const size_t slash = s.find('/', start);
    if (slash == std::string_view::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, slash - start));
    start = slash + 1;
  }
}

bool ValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<uint8_t>(s[i]);
    int extra = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      extra = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + extra >= s.size()) return false;
    for (int k = 1; k <= extra; ++k) {
      const auto d = static_cast<uint8_t>(s[i + k]);
      if ((d & 0xC0) != 0x80) return false;
      cp = cp << 6 | (d & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF.
    static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[extra] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += extra + 1;
  }
  return true;
}

absl::Status CheckPath(std::string_view path) {
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("file path '", std::string(path.substr(0, 200)), "' ",
                     std::string(why)));
  };
  if (path.empty()) return bad("is empty");
  if (!ValidUtf8(path)) return bad("is not valid UTF-8");
  if (path.find('\\') != std::string_view::npos) return bad("has a backslash");
  if (path.find('\0') != std::string_view::npos) return bad("has a NUL byte");
  for (std::string_view seg : Split(path)) {
    if (seg.empty()) return bad("has an empty segment");
    if (seg == "." || seg == "..") return bad("has a '.' or '..' segment");
  }
  return absl::OkStatus();
}

std::string RootBytes(const Sha256Digest& d) {
  return std::string(reinterpret_cast<const char*>(d.data()), d.size());
}

bool IsFileNode(const bencode::Value& v) {
  return v.is_dict() && v.as_dict().size() == 1 &&
         v.as_dict().begin()->first.empty();
}

// Walks a parsed file tree. The recursion depth is bounded by the decoder's.
absl::Status Walk(const BNode& folder, const std::string& prefix,
                  std::vector<DirectoryFile>& files) {
  if (!folder.is_dict())
    return absl::InvalidArgumentError("file tree: a folder is not a dict");
  for (const BEntry& e : folder.dict_items()) {
    if (e.key.empty())
      return absl::InvalidArgumentError("file tree: a folder has a '' key");
    std::string path = prefix.empty()
                           ? std::string(e.key)
                           : absl::StrCat(prefix, "/", std::string(e.key));
    if (!e.value.is_dict())
      return absl::InvalidArgumentError("file tree: an entry is not a dict");
    BNode leaf = e.value.Find("");
    if (!leaf) {
      if (auto s = Walk(e.value, path, files); !s.ok()) return s;
      if (files.size() > kMaxDirectoryFiles)
        return absl::InvalidArgumentError("file tree: too many files");
      continue;
    }
    if (e.value.size() != 1 || !leaf.is_dict())
      return absl::InvalidArgumentError(
          absl::StrCat("file tree: '", path.substr(0, 200),
                       "' is both a file and a folder"));
    DirectoryFile f;
    f.path = std::move(path);
    auto length = leaf.FindInt("length");
    if (!length || *length < 0)
      return absl::InvalidArgumentError("file tree: a file has no length");
    f.length = static_cast<uint64_t>(*length);
    if (auto root = leaf.FindString("pieces root")) {
      if (root->size() != 32)
        return absl::InvalidArgumentError(
            "file tree: a pieces root is not 32 bytes");
      std::copy(root->begin(), root->end(),
                reinterpret_cast<char*>(f.pieces_root.data()));
    }
    files.push_back(std::move(f));
  }
  return absl::OkStatus();
}

}  // namespace

ContentId DirectoryFile::id() const {
  return ComputeContentId(layout(), pieces_root);
}

absl::StatusOr<std::shared_ptr<const Directory>> Directory::Build(
    std::vector<DirectoryFile> files) {
  if (files.empty())
    return absl::InvalidArgumentError("a directory must hold at least a file");
  if (files.size() > kMaxDirectoryFiles) {
    return absl::InvalidArgumentError(
        absl::StrCat("a directory holds at most ", kMaxDirectoryFiles,
                     " files, this one ", files.size()));
  }
  bencode::Dict tree;
  uint64_t total = 0;
  for (const DirectoryFile& f : files) {
    if (auto s = CheckPath(f.path); !s.ok()) return s;
    if (f.length > (uint64_t{1} << 50))
      return absl::InvalidArgumentError("a file is too large");
    total += f.length;
    bencode::Dict* folder = &tree;
    std::vector<std::string_view> segs = Split(f.path);
    for (size_t k = 0; k + 1 < segs.size(); ++k) {
      auto [it, inserted] =
          folder->try_emplace(std::string(segs[k]), bencode::Dict());
      if (IsFileNode(it->second)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "'", f.path.substr(0, 200), "' is inside a path that is a file"));
      }
      folder = &it->second.as_dict();
    }
    bencode::Dict attrs;
    attrs["length"] = static_cast<int64_t>(f.length);
    if (f.length > 0) attrs["pieces root"] = RootBytes(f.pieces_root);
    bencode::Dict leaf;
    leaf[""] = std::move(attrs);
    auto [it, inserted] =
        folder->try_emplace(std::string(segs.back()), std::move(leaf));
    if (!inserted) {
      return absl::InvalidArgumentError(absl::StrCat(
          "'", f.path.substr(0, 200),
          IsFileNode(it->second) ? "' is listed twice"
                                 : "' is both a file and a folder"));
    }
  }
  auto dir = std::shared_ptr<Directory>(new Directory());
  const std::string tree_bytes = bencode::Encode(bencode::Value(tree));
  const Sha256Digest name_hash = Sha256::Hash(tree_bytes);
  dir->name_ = HexEncode(std::span<const uint8_t>(name_hash));
  dir->total_length_ = total;
  dir->piece_length_ = CanonicalPieceLength(total);
  // The dict by hand around the encoded tree (keys in order), to avoid copying
  // a large tree into another Value.
  std::string& d = dir->info_dict_;
  d.reserve(tree_bytes.size() + 128);
  d.append("d9:file tree");
  d.append(tree_bytes);
  absl::StrAppend(&d, "12:meta versioni2e4:name64:", dir->name_,
                  "12:piece lengthi", dir->piece_length_, "ee");
  if (d.size() > kMaxDirectoryDictBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("the directory's info dict would take ", d.size(),
                     " bytes, over the limit of ", kMaxDirectoryDictBytes));
  }
  dir->id_ = ContentId{Sha256::Hash(d)};
  // Dict order: sort the paths segment by segment.
  std::sort(files.begin(), files.end(),
            [](const DirectoryFile& a, const DirectoryFile& b) {
              std::vector<std::string_view> x = Split(a.path);
              std::vector<std::string_view> y = Split(b.path);
              return std::lexicographical_compare(x.begin(), x.end(), y.begin(),
                                                  y.end());
            });
  dir->files_ = std::move(files);
  dir->file_ids_.reserve(dir->files_.size());
  for (const DirectoryFile& f : dir->files_) dir->file_ids_.push_back(f.id());
  uint32_t piece = 0;
  dir->first_piece_.reserve(dir->files_.size());
  for (const DirectoryFile& f : dir->files_) {
    dir->first_piece_.push_back(piece);
    piece += static_cast<uint32_t>((f.length + dir->piece_length_ - 1) /
                                   dir->piece_length_);
  }
  dir->num_pieces_ = piece;
  dir->by_path_.resize(dir->files_.size());
  for (uint32_t i = 0; i < dir->by_path_.size(); ++i) dir->by_path_[i] = i;
  std::sort(dir->by_path_.begin(), dir->by_path_.end(),
            [&](uint32_t a, uint32_t b) {
              return dir->files_[a].path < dir->files_[b].path;
            });
  return std::shared_ptr<const Directory>(std::move(dir));
}

absl::StatusOr<std::shared_ptr<const Directory>> Directory::Parse(
    std::string_view info_dict) {
  if (info_dict.size() > kMaxDirectoryDictBytes)
    return absl::InvalidArgumentError("directory info dict is too large");
  BdecodeOptions opts;
  opts.max_tokens = 12 * static_cast<int64_t>(kMaxDirectoryFiles) + 64;
  auto doc = Bdecode(info_dict, opts);
  if (!doc.ok()) return doc.status();
  BNode root = doc->root();
  if (!root.is_dict() || root.size() != 4 || root.FindInt("meta version") != 2)
    return absl::InvalidArgumentError("not a directory's info dict");
  BNode tree = root.FindDict("file tree");
  if (!tree) return absl::InvalidArgumentError("not a directory's info dict");
  std::vector<DirectoryFile> files;
  if (auto s = Walk(tree, "", files); !s.ok()) return s;
  auto dir = Build(std::move(files));
  if (!dir.ok()) return dir.status();
  if ((*dir)->info_dict() != info_dict)
    return absl::InvalidArgumentError(
        "not Shoal's canonical info dict for a directory");
  return dir;
}

int64_t Directory::Find(std::string_view path) const {
  auto it = std::lower_bound(
      by_path_.begin(), by_path_.end(), path,
      [&](uint32_t i, std::string_view p) { return files_[i].path < p; });
  if (it == by_path_.end() || files_[*it].path != path) return -1;
  return *it;
}

bool Directory::IsFolder(std::string_view path) const {
  if (path.empty()) return true;
  const std::string prefix = std::string(path) + "/";
  auto it = std::lower_bound(
      by_path_.begin(), by_path_.end(), prefix,
      [&](uint32_t i, const std::string& p) { return files_[i].path < p; });
  return it != by_path_.end() && files_[*it].path.starts_with(prefix);
}

std::vector<DirectoryEntry> Directory::List(std::string_view path) const {
  std::vector<DirectoryEntry> out;
  if (!IsFolder(path)) return out;
  const std::string prefix =
      path.empty() ? std::string() : std::string(path) + "/";
  auto it = std::lower_bound(
      by_path_.begin(), by_path_.end(), prefix,
      [&](uint32_t i, const std::string& p) { return files_[i].path < p; });
  for (; it != by_path_.end() && files_[*it].path.starts_with(prefix); ++it) {
    const DirectoryFile& f = files_[*it];
    std::string_view rest = std::string_view(f.path).substr(prefix.size());
    const size_t slash = rest.find('/');
    if (slash == std::string_view::npos) {
      out.push_back({std::string(rest), false, f.length});
    } else {
      std::string_view name = rest.substr(0, slash);
      if (out.empty() || !out.back().is_folder || out.back().name != name)
        out.push_back({std::string(name), true, 0});
    }
  }
  // Sorted by path bytes, a folder "a" may follow a file "a.txt" and precede
  // "a0": order by name.
  std::stable_sort(out.begin(), out.end(),
                   [](const DirectoryEntry& a, const DirectoryEntry& b) {
                     return a.name < b.name;
                   });
  out.erase(std::unique(out.begin(), out.end(),
                        [](const DirectoryEntry& a, const DirectoryEntry& b) {
                          return a.is_folder && b.is_folder && a.name == b.name;
                        }),
            out.end());
  return out;
}

size_t Directory::FileOfPiece(uint32_t piece) const {
  auto it = std::upper_bound(first_piece_.begin(), first_piece_.end(), piece);
  return static_cast<size_t>(it - first_piece_.begin()) - 1;
}

std::vector<Sha256Digest> DirectoryPieceLayer(
    const DirectoryFile& file, std::span<const Sha256Digest> file_layer,
    uint32_t piece_length) {
  if (file.length <= piece_length || file_layer.size() <= 1)
    return {file.pieces_root};
  const uint32_t own = CanonicalPieceLength(file.length);
  const uint64_t group = piece_length / own;
  const int pad_levels = std::countr_zero(own / kBlockSize);
  std::vector<Sha256Digest> out;
  out.reserve((file_layer.size() + group - 1) / group);
  for (size_t i = 0; i < file_layer.size(); i += group) {
    const size_t n = std::min<size_t>(group, file_layer.size() - i);
    out.push_back(MerkleRoot(file_layer.subspan(i, n), group, pad_levels));
  }
  return out;
}

}  // namespace shoal::chunk
