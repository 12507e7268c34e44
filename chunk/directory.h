// Directory content: a tree of files under one content ID.
//
// A directory is named, like single-file content, by the v2 info-hash of a
// canonical info dict, here a multi-file one with exactly four keys:
//
//   d 9:file tree <tree> 12:meta version i2e 4:name 64:<hex N>
//     12:piece length i<CanonicalPieceLength(total size)>e e
//
// where <tree> holds the directory's contents (not the directory's own name),
// keys as raw UTF-8 bytes in bencode order, each file
// {"": {"length": L, "pieces root": R}} (no "pieces root" for an empty file),
// no attributes, no pad files and no empty folders; and N = SHA-256 of the
// bencoded <tree>. The same tree gives the same ID on every node, and a v2
// BitTorrent client fetches it as an ordinary torrent.
//
// A file's pieces root does not depend on the piece length, so each file is
// also single-file content on its own (DirectoryFile::id()), stored once
// however many directories hold it. The directory's piece length is the
// single-file rule applied to the total size, never smaller than any file's
// own, so a directory piece is a whole number of the file's own pieces and its
// hash follows from the file's piece layer (DirectoryPieceLayer) without
// reading the data again.
//
// One quirk: a tree whose root holds one file and nothing else is, to a
// BitTorrent client, a single-file torrent named after that file (BEP 52 has
// no other way to read it). Shoal still treats it as a directory.
//
//   SHOAL_ASSIGN_OR_RETURN(auto dir, Directory::Build(files));
//   dir->id();          // the content ID
//   dir->Find("css/site.css");
#ifndef SHOAL_CHUNK_DIRECTORY_H_
#define SHOAL_CHUNK_DIRECTORY_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "chunk/content_id.h"
#include "codec/sha.h"

namespace shoal::chunk {

using codec::Sha256Digest;

// Most files a directory may hold, and the largest directory info dict. The
// dict is what a fetcher downloads first (ut_metadata), so both are bounded;
// 250,000 files of typical web paths take about 25 MiB.
inline constexpr size_t kMaxDirectoryFiles = 250'000;
inline constexpr size_t kMaxDirectoryDictBytes = 32u << 20;

// One file of a directory. A value type.
struct DirectoryFile {
  // Its path inside the directory: UTF-8 segments joined with '/'.
  std::string path;
  uint64_t length = 0;
  // All zeros for an empty file.
  Sha256Digest pieces_root{};

  // The file's own (single-file) content ID.
  ContentId id() const;
  ContentLayout layout() const { return ContentLayout::ForLength(length); }
};

// One entry of a folder listing.
struct DirectoryEntry {
  std::string name;
  bool is_folder = false;
  uint64_t length = 0;  // files only
};

// An immutable directory. Thread-safe (const).
class Directory {
 public:
  // Builds the canonical dict of `files` (in any order). INVALID_ARGUMENT for
  // no files, a path that is empty, has an empty, "." or ".." segment, a
  // backslash, a NUL or invalid UTF-8, two files with one path, a file whose
  // path is also a folder's, or more than the limits above.
  static absl::StatusOr<std::shared_ptr<const Directory>> Build(
      std::vector<DirectoryFile> files);

  // Parses a directory's info dict. INVALID_ARGUMENT unless it is exactly the
  // canonical dict of its files (which also means it is not the dict of a
  // single-file content).
  static absl::StatusOr<std::shared_ptr<const Directory>> Parse(
      std::string_view info_dict);

  const ContentId& id() const { return id_; }
  const std::string& info_dict() const { return info_dict_; }
  // The hex "name" of the dict.
  const std::string& name() const { return name_; }
  uint64_t total_length() const { return total_length_; }
  uint32_t piece_length() const { return piece_length_; }
  // In the dict's order, which is BitTorrent's file order.
  const std::vector<DirectoryFile>& files() const { return files_; }
  // files()[i].id(), computed once.
  const std::vector<ContentId>& file_ids() const { return file_ids_; }
  const ContentId& file_id(size_t i) const { return file_ids_[i]; }

  // The index of the file at `path`, or -1.
  int64_t Find(std::string_view path) const;
  // True if `path` is a folder ("" is the root).
  bool IsFolder(std::string_view path) const;
  // The entries directly inside folder `path` ("" is the root), folders and
  // files in name order. Empty if `path` is not a folder.
  std::vector<DirectoryEntry> List(std::string_view path) const;

  // Pieces of the torrent: each file starts at a piece boundary.
  uint32_t num_pieces() const { return num_pieces_; }
  // The first piece of file `f` (its pieces run to the next file's first).
  uint32_t first_piece(size_t f) const { return first_piece_[f]; }
  // The file that piece `piece` belongs to. REQUIRES: piece < num_pieces().
  size_t FileOfPiece(uint32_t piece) const;

 private:
  Directory() = default;

  ContentId id_;
  std::string info_dict_;
  std::string name_;
  uint64_t total_length_ = 0;
  uint32_t piece_length_ = 0;
  uint32_t num_pieces_ = 0;
  std::vector<DirectoryFile> files_;
  std::vector<ContentId> file_ids_;
  std::vector<uint32_t> first_piece_;
  // Indexes into files_, sorted by path bytes, for Find and folder lookups.
  std::vector<uint32_t> by_path_;
};

// The piece layer of `file` at the directory's `piece_length` (one hash per
// directory piece of the file), from the file's own piece layer (at its own
// piece length). A file of one directory piece has its pieces root as layer.
// REQUIRES: file_layer is the file's stored layer; piece_length >= the file's
// own piece length.
std::vector<Sha256Digest> DirectoryPieceLayer(
    const DirectoryFile& file, std::span<const Sha256Digest> file_layer,
    uint32_t piece_length);

}  // namespace shoal::chunk

#endif  // SHOAL_CHUNK_DIRECTORY_H_
