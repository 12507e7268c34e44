#include "chunk/metainfo.h"

#include <algorithm>
#include <cstring>
#include <unordered_map>
#include <unordered_set>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "chunk/merkle.h"
#include "chunk/torrent_path.h"
#include "codec/bdecode.h"

namespace shoal::chunk {

using codec::Bdecode;
using codec::BdecodeOptions;
using codec::BDocument;
using codec::BEntry;
using codec::BNode;
using codec::Sha256Digest;
namespace {

// Files larger than this are refused (1 PiB): it keeps every offset sum far
// from overflowing.
constexpr uint64_t kMaxFileLength = uint64_t{1} << 50;
// A v2 file's merkle tree must stay addressable with 32-bit block indices.
constexpr uint64_t kMaxV2FileBlocks = (uint64_t{1} << 30) - 1;

absl::Status Invalid(std::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("metainfo: ", std::string(what)));
}

std::string Quote(std::string_view s) {
  std::string out = "'";
  for (char c : s.substr(0, 64)) {
    unsigned char u = static_cast<unsigned char>(c);
    out.push_back(u >= 0x20 && u < 0x7f ? c : '?');
  }
  if (s.size() > 64) out.append("...");
  out.push_back('\'');
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' ||
                        s.front() == '\r' || s.front() == '\n')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' ||
                        s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

void ApplyAttributes(BNode dict, FileEntry& f) {
  auto attr = dict.FindString("attr");
  if (!attr) return;
  for (char c : *attr) {
    switch (c) {
      case 'p':
        f.pad_file = true;
        break;
      case 'x':
        f.executable = true;
        break;
      case 'h':
        f.hidden = true;
        break;
      case 'l':
        f.symlink = true;
        break;
      default:
        break;  // BEP 47: unknown attributes are ignored
    }
  }
}

// Joins sanitized path elements of a "symlink path" list. Empty target if the
// list holds a non-string.
absl::StatusOr<std::string> SymlinkTarget(BNode list, std::string_view where) {
  std::string out;
  for (BNode e : list.children()) {
    if (!e.is_string()) {
      return Invalid(absl::StrCat(std::string(where),
                                  " has a non-string element in its symlink "
                                  "path (byte ",
                                  e.offset(), ")"));
    }
    if (!out.empty()) out.push_back('/');
    out.append(SanitizePathElement(e.string_value()));
  }
  return out;
}

std::string PadPath(std::string_view root, uint64_t length) {
  return absl::StrCat(std::string(root), root.empty() ? "" : "/", ".pad/",
                      length);
}

absl::Status CheckFileCount(size_t n, const MetainfoLimits& limits) {
  if (n > limits.max_files) {
    return Invalid(
        absl::StrCat("more than ", limits.max_files, " files (the limit)"));
  }
  return absl::OkStatus();
}

// The v1 file list ("files", or "length" for a single file).
absl::StatusOr<std::vector<FileEntry>> ExtractV1Files(
    BNode info, const std::string& name, const MetainfoLimits& limits,
    bool& multi_file) {
  std::vector<FileEntry> files;
  BNode list = info.Find("files");
  if (!list) {
    BNode length = info.Find("length");
    if (!length) return Invalid("info dict has neither 'files' nor 'length'");
    FileEntry f;
    ApplyAttributes(info, f);
    if (f.symlink) {
      return Invalid("a single-file torrent cannot be a symlink");
    }
    if (!length.is_int() || length.int_value() < 0 ||
        static_cast<uint64_t>(length.int_value()) > kMaxFileLength) {
      return Invalid("'length' is not a valid file size");
    }
    f.length = static_cast<uint64_t>(length.int_value());
    f.path = name;
    f.mtime = info.FindInt("mtime").value_or(0);
    files.push_back(std::move(f));
    multi_file = false;
    return files;
  }
  if (!list.is_list()) return Invalid("'files' is not a list");
  multi_file = true;
  size_t index = 0;
  files.reserve(list.size());
  for (BNode entry : list.children()) {
    // Only error paths use it; built lazily.
    auto where = [index] {
      return absl::StrCat("file ", index, " of 'files'");
    };
    SHOAL_RETURN_IF_ERROR(CheckFileCount(index + 1, limits));
    if (!entry.is_dict()) {
      return Invalid(absl::StrCat(where(), " is not a dictionary (byte ",
                                  entry.offset(), ")"));
    }
    FileEntry f;
    ApplyAttributes(entry, f);
    if (!f.symlink) {
      BNode length = entry.Find("length");
      if (!length.is_int() || length.int_value() < 0 ||
          static_cast<uint64_t>(length.int_value()) > kMaxFileLength) {
        return Invalid(
            absl::StrCat(where(), " has a missing or invalid length"));
      }
      f.length = static_cast<uint64_t>(length.int_value());
    }
    f.mtime = entry.FindInt("mtime").value_or(0);
    BNode path = entry.FindList("path.utf-8");
    if (!path) path = entry.Find("path");
    if (path && !path.is_list()) {
      return Invalid(absl::StrCat(where(), " has a 'path' that is not a list"));
    }
    const size_t depth = path ? path.size() : 0;
    if (depth > static_cast<size_t>(limits.max_depth)) {
      return Invalid(absl::StrCat(where(), " has a path of ", depth,
                                  " elements (the limit is ", limits.max_depth,
                                  ")"));
    }
    if (depth > 0) {
      f.path = name;
      for (BNode e : path.children()) {
        if (!e.is_string()) {
          return Invalid(absl::StrCat(where(),
                                      " has a non-string path element (byte ",
                                      e.offset(), ")"));
        }
        // BitComet's pad files predate BEP 47's attribute.
        if (e.string_value().find("_____padding_file_") !=
            std::string_view::npos) {
          f.pad_file = true;
        }
        f.path.push_back('/');
        f.path.append(SanitizePathElement(e.string_value()));
      }
    } else if (f.pad_file) {
      f.path = PadPath(name, f.length);
    } else {
      return Invalid(absl::StrCat(where(), " has no path"));
    }
    if (f.symlink) {
      BNode target = entry.FindList("symlink path");
      if (target) {
        SHOAL_ASSIGN_OR_RETURN(f.symlink_target,
                               SymlinkTarget(target, where()));
      } else {
        f.symlink = false;  // BEP 47 requires the target; treat as a file
      }
    }
    files.push_back(std::move(f));
    ++index;
  }
  if (files.empty()) return Invalid("'files' is empty: no files in torrent");
  return files;
}

// The v2 file tree, walked depth-first in key order with an explicit stack.
absl::StatusOr<std::vector<FileEntry>> ExtractV2Files(
    BNode tree, const std::string& name, bool has_v1_file_list,
    const MetainfoLimits& limits) {
  if (!tree.is_dict()) return Invalid("'file tree' is not a dictionary");
  std::vector<FileEntry> files;
  struct Frame {
    std::vector<BEntry> entries;
    size_t next = 0;
    std::string path;
  };
  std::vector<Frame> stack;
  stack.push_back({tree.dict_items(), 0, name});
  if (stack.back().entries.empty()) {
    return Invalid("'file tree' is empty: no files in torrent");
  }
  auto is_leaf = [](BNode v) {
    if (!v.is_dict()) return false;
    auto kids = v.children();
    auto it = kids.begin();
    if (it == kids.end() || !(*it).string_value().empty()) return false;
    ++it;
    ++it;
    return it == kids.end();
  };
  const bool single_file = !has_v1_file_list &&
                           stack.back().entries.size() == 1 &&
                           is_leaf(stack.back().entries[0].value);
  while (!stack.empty()) {
    Frame& top = stack.back();
    if (top.next == top.entries.size()) {
      stack.pop_back();
      continue;
    }
    const BEntry& e = top.entries[top.next++];
    if (e.key.empty()) {
      return Invalid(absl::StrCat("empty file name in 'file tree' (byte ",
                                  e.key_offset, ")"));
    }
    if (!e.value.is_dict()) {
      return Invalid(absl::StrCat("'file tree' entry ", Quote(e.key),
                                  " is not a dictionary (byte ",
                                  e.value.offset(), ")"));
    }
    std::string path = single_file ? std::string() : top.path;
    if (!path.empty()) path.push_back('/');
    path.append(SanitizePathElement(e.key));
    if (!is_leaf(e.value)) {
      if (static_cast<int>(stack.size()) >= limits.max_depth) {
        return Invalid(absl::StrCat("'file tree' is nested deeper than ",
                                    limits.max_depth, " directories"));
      }
      stack.push_back({e.value.dict_items(), 0, std::move(path)});
      continue;
    }
    SHOAL_RETURN_IF_ERROR(CheckFileCount(files.size() + 1, limits));
    auto where = [&e] {
      return absl::StrCat("file ", Quote(e.key), " in 'file tree'");
    };
    BNode dict = e.value.Find("");
    if (!dict.is_dict()) {
      return Invalid(absl::StrCat(where(), " is not a dictionary"));
    }
    FileEntry f;
    f.path = std::move(path);
    ApplyAttributes(dict, f);
    if (f.pad_file) {
      return Invalid(absl::StrCat(where(),
                                  " has the pad attribute, which v2 file "
                                  "trees do not allow"));
    }
    if (!f.symlink) {
      BNode length = dict.Find("length");
      if (!length.is_int() || length.int_value() < 0) {
        return Invalid(
            absl::StrCat(where(), " has a missing or invalid length"));
      }
      f.length = static_cast<uint64_t>(length.int_value());
      if (f.length / kBlockSize >= kMaxV2FileBlocks) {
        return Invalid(
            absl::StrCat(where(), " is too large (", f.length, " bytes)"));
      }
    }
    f.mtime = dict.FindInt("mtime").value_or(0);
    if (f.symlink) {
      BNode target = dict.FindList("symlink path");
      if (!target) {
        return Invalid(absl::StrCat(where(), " is a symlink without a target"));
      }
      SHOAL_ASSIGN_OR_RETURN(f.symlink_target, SymlinkTarget(target, where()));
    } else if (f.length > 0) {
      auto root = dict.FindString("pieces root");
      if (!root || root->size() != 32) {
        return Invalid(absl::StrCat(where(), " has no 32-byte 'pieces root'"));
      }
      Sha256Digest r;
      std::memcpy(r.data(), root->data(), 32);
      if (r == Sha256Digest{}) {
        return Invalid(absl::StrCat(where(), " has an all-zero 'pieces root'"));
      }
      f.pieces_root = r;
    }
    files.push_back(std::move(f));
  }
  if (files.empty()) {
    return Invalid("'file tree' holds directories but no files");
  }
  return files;
}

// Lays v2 files out in one stream as libtorrent does: BEP 52 aligns every
// file to a piece boundary, so a pad file follows each non-empty file that
// does not end on one (the last included). Sets offsets.
std::vector<FileEntry> AddV2Padding(std::vector<FileEntry> files,
                                    const std::string& name,
                                    uint32_t piece_length) {
  std::vector<FileEntry> out;
  out.reserve(files.size() * 2);
  uint64_t offset = 0;
  for (FileEntry& f : files) {
    f.offset = offset;
    offset += f.length;
    const bool pad = f.length > 0 && offset % piece_length != 0;
    out.push_back(std::move(f));
    if (pad) {
      FileEntry p;
      p.length = piece_length - offset % piece_length;
      p.path = PadPath(name, p.length);
      p.offset = offset;
      p.pad_file = true;
      offset += p.length;
      out.push_back(std::move(p));
    }
  }
  return out;
}

void SetOffsets(std::vector<FileEntry>& files) {
  uint64_t offset = 0;
  for (FileEntry& f : files) {
    f.offset = offset;
    offset += f.length;
  }
}

// Hybrid torrents: the v1 list (with its pad files) must describe the same
// files as the v2 tree: the same number of entries, and every non-empty,
// non-pad file at the same index with the same path, length and offset
// (libtorrent's rule; empty files and pads may sit differently). A v1 list
// without tail padding is accepted (older creators, libtorrent included, did
// not add it).
absl::Status CheckHybridFilesMatch(std::vector<FileEntry>& v2,
                                   const std::vector<FileEntry>& v1) {
  if (v2.size() == v1.size() + 1) {
    auto last = std::find_if(v2.rbegin(), v2.rend(),
                             [](const FileEntry& f) { return f.length > 0; });
    if (last != v2.rend() && last->pad_file) {
      const uint64_t offset = last->offset;
      auto it = v2.erase(std::next(last).base());
      for (; it != v2.end(); ++it) it->offset = offset;
    }
  }
  if (v2.size() != v1.size()) {
    return Invalid(absl::StrCat(
        "the v1 and v2 file lists differ: v1 has ", v1.size(),
        " entries (pad files included), the v2 file tree implies ", v2.size()));
  }
  for (size_t i = 0; i < v1.size(); ++i) {
    const FileEntry& a = v1[i];
    const FileEntry& b = v2[i];
    const bool a_relevant = !a.pad_file && a.length > 0;
    const bool b_relevant = !b.pad_file && b.length > 0;
    if (a_relevant != b_relevant ||
        (a_relevant &&
         (a.path != b.path || a.length != b.length || a.offset != b.offset))) {
      return Invalid(absl::StrCat(
          "the v1 and v2 file lists differ at entry ", i, ": v1 has ",
          Quote(a.path), " (", a.length, " bytes at ", a.offset,
          a.pad_file ? ", pad" : "", "), v2 has ", Quote(b.path), " (",
          b.length, " bytes at ", b.offset, b.pad_file ? ", pad" : "", ")"));
    }
  }
  return absl::OkStatus();
}

// Renames files whose sanitized paths collide with each other or with a
// directory, as "<stem>.<n><ext>".
absl::Status MakePathsUnique(std::vector<FileEntry>& files,
                             const MetainfoLimits& limits,
                             std::vector<std::string>& warnings) {
  // Directory prefixes are views into a copy of the original paths (renames
  // below replace strings). Walking each path's prefixes from the longest and
  // stopping at the first already known keeps the work near-linear.
  std::vector<std::string> original;
  original.reserve(files.size());
  for (const FileEntry& f : files) original.push_back(f.path);
  std::unordered_set<std::string_view> dirs;
  for (size_t i = 0; i < files.size(); ++i) {
    if (files[i].pad_file) continue;
    std::string_view p = original[i];
    for (size_t slash = p.rfind('/'); slash != std::string_view::npos && slash;
         slash = p.rfind('/', slash - 1)) {
      if (!dirs.insert(p.substr(0, slash)).second) break;
    }
  }
  std::unordered_set<std::string> taken;
  taken.reserve(files.size() * 2);
  auto is_taken = [&](const std::string& path) {
    return dirs.count(path) > 0 || !taken.insert(path).second;
  };
  // The next suffix to try per original path, so n copies cost O(n).
  std::unordered_map<std::string, int> next_suffix;
  int collisions = 0;
  for (FileEntry& f : files) {
    if (f.pad_file) continue;
    if (!is_taken(f.path)) continue;
    size_t slash = f.path.rfind('/');
    size_t dot = f.path.rfind('.');
    if (dot == std::string::npos ||
        (slash != std::string::npos && dot < slash) || dot == slash + 1) {
      dot = f.path.size();
    }
    std::string stem = f.path.substr(0, dot);
    std::string ext = f.path.substr(dot);
    int& n = next_suffix[f.path];
    for (;;) {
      if (++collisions > limits.max_duplicate_paths) {
        return Invalid(absl::StrCat("more than ", limits.max_duplicate_paths,
                                    " colliding file paths"));
      }
      std::string candidate = absl::StrCat(stem, ".", ++n, ext);
      if (!is_taken(candidate)) {
        if (warnings.size() < 100) {
          warnings.push_back(absl::StrCat("renamed duplicate path ",
                                          Quote(f.path), " to ",
                                          Quote(candidate)));
        }
        f.path = std::move(candidate);
        break;
      }
    }
  }
  return absl::OkStatus();
}

absl::Status ParseInfo(const BDocument& doc, BNode info,
                       const MetainfoLimits& limits, Metainfo& m) {
  if (!info.is_dict()) {
    return Invalid("missing or invalid 'info' dictionary");
  }
  const std::string_view raw = info.raw();
  m.info_bytes = std::string(raw);

  int64_t meta_version = 1;
  if (BNode v = info.Find("meta version")) {
    if (!v.is_int()) return Invalid("'meta version' is not an integer");
    meta_version = v.int_value();
  }
  if (meta_version > 2) {
    return Invalid(absl::StrCat("unsupported 'meta version' ", meta_version));
  }
  const bool v2 = meta_version == 2;
  BNode file_tree = info.Find("file tree");
  if (v2) {
    if (auto nc = doc.FirstNonCanonicalIn(info)) {
      return Invalid(absl::StrCat(
          "a v2 info dict must be canonically bencoded, but it has ", *nc));
    }
    if (!file_tree) return Invalid("v2 torrent has no 'file tree'");
  } else if (file_tree) {
    return Invalid("'file tree' without 'meta version' 2");
  }
  const bool v1 = !v2 || info.Find("files") || info.Find("length");

  // Piece length.
  BNode pl = info.Find("piece length");
  if (!pl.is_int() || pl.int_value() <= 0 ||
      static_cast<uint64_t>(pl.int_value()) > limits.max_piece_length) {
    return Invalid(absl::StrCat(
        "missing or invalid 'piece length' (must be an integer in [1, ",
        limits.max_piece_length, "])"));
  }
  m.piece_length = static_cast<uint32_t>(pl.int_value());
  if (v2 && (m.piece_length < kBlockSize ||
             (m.piece_length & (m.piece_length - 1)) != 0)) {
    return Invalid(absl::StrCat("v2 'piece length' ", m.piece_length,
                                " is not a power of two >= 16 KiB"));
  }

  // Name.
  auto name = info.FindString("name.utf-8");
  if (!name) name = info.FindString("name");
  if (!name) return Invalid("missing name ('name' is absent or not a string)");
  if (CleanPathElement(*name).empty()) {
    return Invalid(
        absl::StrCat("'name' ", Quote(*name), " is empty once sanitized"));
  }
  m.name = SanitizePathElement(*name);

  // Files.
  std::vector<FileEntry> v1_files;
  if (v1) {
    SHOAL_ASSIGN_OR_RETURN(v1_files,
                           ExtractV1Files(info, m.name, limits, m.multi_file));
    SetOffsets(v1_files);
  }
  if (v2) {
    SHOAL_ASSIGN_OR_RETURN(
        std::vector<FileEntry> tree,
        ExtractV2Files(file_tree, m.name, bool(info.Find("files")), limits));
    m.multi_file = tree.size() > 1 || bool(info.Find("files")) ||
                   tree[0].path.find('/') != std::string::npos;
    m.files = AddV2Padding(std::move(tree), m.name, m.piece_length);
    if (v1) SHOAL_RETURN_IF_ERROR(CheckHybridFilesMatch(m.files, v1_files));
  } else {
    m.files = std::move(v1_files);
  }
  SHOAL_RETURN_IF_ERROR(CheckFileCount(m.files.size(), limits));

  uint64_t total = 0;
  for (const FileEntry& f : m.files) {
    total += f.length;  // each <= 2^50 and at most 2^21 files: no overflow
    if (total > (uint64_t{1} << 62)) return Invalid("total size is too large");
  }
  if (total == 0)
    return Invalid("invalid length: the torrent's total size is 0");
  m.total_size = total;
  const uint64_t pieces = (total + m.piece_length - 1) / m.piece_length;
  if (pieces > limits.max_pieces) {
    return Invalid(absl::StrCat("too many pieces: ", pieces, " (the limit is ",
                                limits.max_pieces, ")"));
  }
  m.num_pieces = static_cast<uint32_t>(pieces);

  // Hashes.
  if (v1) {
    BNode p = info.Find("pieces");
    if (!p.is_string()) return Invalid("missing or invalid 'pieces'");
    if (p.string_value().size() != pieces * 20) {
      return Invalid(absl::StrCat("'pieces' holds ", p.string_value().size(),
                                  " bytes; ", pieces, " pieces need ",
                                  pieces * 20));
    }
    m.v1_pieces_offset =
        p.offset() - info.offset() + (p.raw().size() - p.string_value().size());
    m.v1_pieces_length = p.string_value().size();
    m.info_hashes.v1 = InfoHashV1::Of(raw);
  }
  if (v2) m.info_hashes.v2 = InfoHashV2::Of(raw);
  m.piece_layers.assign(m.files.size(), std::string());

  m.is_private = info.FindInt("private").value_or(0) != 0;
  return MakePathsUnique(m.files, limits, m.warnings);
}

// BEP 52 piece layers: checked against each file's pieces root.
absl::Status ParsePieceLayers(BNode layers, Metainfo& m) {
  if (!layers) return absl::OkStatus();
  if (!layers.is_dict()) return Invalid("'piece layers' is not a dictionary");
  std::vector<BEntry> entries = layers.dict_items();
  for (const BEntry& e : entries) {
    if (e.key.size() != 32 || !e.value.is_string() ||
        e.value.string_value().size() % 32 != 0) {
      return Invalid(absl::StrCat(
          "a piece layer is invalid (byte ", e.key_offset,
          "): keys must be 32-byte roots and values multiples of 32 bytes"));
    }
  }
  // root -> layer; the first entry wins for a repeated key.
  std::unordered_map<std::string_view, std::string_view> by_root;
  by_root.reserve(entries.size());
  for (const BEntry& e : entries) {
    by_root.emplace(e.key, e.value.string_value());
  }
  for (size_t i = 0; i < m.files.size(); ++i) {
    const FileEntry& f = m.files[i];
    if (!f.pieces_root || f.length <= m.piece_length) continue;
    std::string_view root(reinterpret_cast<const char*>(f.pieces_root->data()),
                          32);
    auto it = by_root.find(root);
    if (it == by_root.end()) continue;  // fetched from peers later
    std::string_view layer = it->second;
    const uint64_t file_pieces =
        (f.length + m.piece_length - 1) / m.piece_length;
    if (layer.size() != file_pieces * 32) {
      return Invalid(absl::StrCat("a piece layer is invalid: file ",
                                  Quote(f.path), " has ", file_pieces,
                                  " pieces but its layer holds ",
                                  layer.size() / 32, " hashes"));
    }
    std::vector<Sha256Digest> hashes(file_pieces);
    std::memcpy(hashes.data(), layer.data(), layer.size());
    if (PiecesRootFromLayer(hashes, m.piece_length) != *f.pieces_root) {
      m.warnings.push_back(
          absl::StrCat("ignored the piece layer of ", Quote(f.path),
                       ": it does not hash to the file's pieces root"));
      continue;
    }
    m.piece_layers[i] = std::string(layer);
  }
  return absl::OkStatus();
}

void AddUrls(BNode node, std::vector<std::string>& out, bool add_slash) {
  std::unordered_set<std::string> seen(out.begin(), out.end());
  auto add = [&](std::string_view s) {
    std::string url(Trim(s));
    if (url.empty()) return;
    if (add_slash && url.back() != '/') url.push_back('/');
    if (seen.insert(url).second) out.push_back(std::move(url));
  };
  if (node.is_string()) {
    add(node.string_value());
  } else if (node.is_list()) {
    for (BNode e : node.children()) {
      if (e.is_string()) add(e.string_value());
    }
  }
}

void ParseAnnounceData(BNode root, Metainfo& m) {
  std::unordered_set<std::string> seen;
  auto add_tracker = [&](std::string_view s, int tier) {
    std::string url(Trim(s));
    if (url.empty() || !seen.insert(url).second) return false;
    m.trackers.push_back({std::move(url), tier});
    return true;
  };
  int tier = 0;
  for (BNode t : root.FindList("announce-list").children()) {
    bool any = false;
    for (BNode u : t.children()) {
      if (u.is_string()) any |= add_tracker(u.string_value(), tier);
    }
    if (any) ++tier;
  }
  if (m.trackers.empty()) {
    if (auto a = root.FindString("announce")) add_tracker(*a, 0);
  }
  AddUrls(root.Find("url-list"), m.url_seeds, m.multi_file);
  AddUrls(root.FindList("httpseeds"), m.http_seeds, false);
  for (BNode n : root.FindList("nodes").children()) {
    auto items = n.list_items();
    if (items.size() != 2 || !items[0].is_string() || !items[1].is_int()) {
      continue;
    }
    int64_t port = items[1].int_value();
    if (port <= 0 || port > 65535 || items[0].string_value().empty()) continue;
    m.nodes.push_back(
        {std::string(items[0].string_value()), static_cast<int>(port)});
  }
  m.creation_date = root.FindInt("creation date");
  auto comment = root.FindString("comment.utf-8");
  if (!comment) comment = root.FindString("comment");
  m.comment = std::string(comment.value_or(""));
  m.created_by = std::string(root.FindString("created by").value_or(""));
}

BdecodeOptions DecodeOptions(const MetainfoLimits& limits) {
  BdecodeOptions o;
  o.max_depth = limits.max_depth;
  o.max_tokens = limits.max_tokens;
  o.allow_trailing_bytes = true;
  return o;
}

absl::Status CheckSize(std::string_view bytes, const MetainfoLimits& limits) {
  if (bytes.size() > limits.max_size) {
    return Invalid(absl::StrCat("input of ", bytes.size(),
                                " bytes is larger than the limit of ",
                                limits.max_size));
  }
  return absl::OkStatus();
}

}  // namespace

size_t Metainfo::num_real_files() const {
  return static_cast<size_t>(
      std::count_if(files.begin(), files.end(),
                    [](const FileEntry& f) { return !f.pad_file; }));
}

absl::StatusOr<Metainfo> ParseMetainfo(std::string_view torrent_bytes,
                                       const MetainfoLimits& limits) {
  SHOAL_RETURN_IF_ERROR(CheckSize(torrent_bytes, limits));
  SHOAL_ASSIGN_OR_RETURN(BDocument doc,
                         Bdecode(torrent_bytes, DecodeOptions(limits)));
  BNode root = doc.root();
  if (!root.is_dict()) return Invalid("a torrent file must be a dictionary");
  Metainfo m;
  SHOAL_RETURN_IF_ERROR(ParseInfo(doc, root.Find("info"), limits, m));
  if (m.info_hashes.v2) {
    SHOAL_RETURN_IF_ERROR(ParsePieceLayers(root.Find("piece layers"), m));
  }
  ParseAnnounceData(root, m);
  return m;
}

absl::StatusOr<Metainfo> ParseInfoDict(std::string_view info_bytes,
                                       const MetainfoLimits& limits) {
  SHOAL_RETURN_IF_ERROR(CheckSize(info_bytes, limits));
  BdecodeOptions options = DecodeOptions(limits);
  options.allow_trailing_bytes = false;
  SHOAL_ASSIGN_OR_RETURN(BDocument doc, Bdecode(info_bytes, options));
  Metainfo m;
  SHOAL_RETURN_IF_ERROR(ParseInfo(doc, doc.root(), limits, m));
  return m;
}

}  // namespace shoal::chunk
