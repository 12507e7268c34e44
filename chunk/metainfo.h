// .torrent files (metainfo): BitTorrent v1 (BEP 3), v2 (BEP 52) and hybrid.
//
// ParseMetainfo() reads an untrusted .torrent file into a Metainfo: the files
// (with BEP 47 pad files, attributes and symlinks), the info-hashes (always
// computed over the original bytes of the info dict), the piece hashes and
// verified piece layers, and the announce data (BEP 12 trackers, BEP 19/17 web
// seeds, BEP 5 DHT nodes, BEP 27 private flag, creation date, comment, created
// by).
//
//   absl::StatusOr<Metainfo> m = ParseMetainfo(file_bytes);
//   if (!m.ok()) return m.status();   // e.g. "metainfo: ... "
//   for (const FileEntry& f : m->files) ...
//
// The file list follows libtorrent's model, so sizes and piece counts agree
// with it: pad files are entries of their own (flag pad_file); in a v2-only
// torrent the pad files BEP 52 implies between files (and after the last, when
// it does not end on a piece boundary) are synthesized as ".pad/<size>";
// total_size counts pad bytes; num_pieces = ceil(total_size / piece_length).
//
// Every path is sanitized (see torrent_path.h) and made unique, so no file can
// be written outside the save path. What is accepted, repaired or refused is
// documented in docs/metadata.md.
#ifndef SHOAL_CHUNK_METAINFO_H_
#define SHOAL_CHUNK_METAINFO_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "chunk/info_hash.h"
#include "codec/sha.h"

namespace shoal::chunk {

using codec::Sha256Digest;

// Limits for untrusted metainfo. A value type; the defaults accept every
// torrent libtorrent 2.0.8 accepts with its default limits.
struct MetainfoLimits {
  // Largest .torrent file (or info dict) accepted.
  uint64_t max_size = 64ull << 20;
  // Bencode nesting depth; also bounds the depth of a v2 file tree.
  int max_depth = 100;
  int64_t max_tokens = 3'000'000;
  // Most pieces a torrent may have.
  uint64_t max_pieces = uint64_t{1} << 21;
  // Most files (pad files included).
  uint64_t max_files = uint64_t{1} << 20;
  // Largest piece length (libtorrent's limit too).
  uint64_t max_piece_length = uint64_t{1} << 29;
  // How many renamed duplicate paths are tolerated before the torrent is
  // considered malicious.
  int max_duplicate_paths = 1000;
};

// One file of a torrent. A value type.
struct FileEntry {
  // Sanitized, '/'-separated, relative to the save path; for a multi-file
  // torrent it starts with the torrent's name.
  std::string path;
  uint64_t offset = 0;  // in the torrent's byte stream (pad files included)
  uint64_t length = 0;
  bool pad_file = false;    // BEP 47 attr 'p': zeros, never written
  bool executable = false;  // attr 'x'
  bool hidden = false;      // attr 'h'
  bool symlink = false;     // attr 'l': length 0, points at symlink_target
  // Sanitized, '/'-separated, relative to the torrent's root directory.
  std::string symlink_target;
  int64_t mtime = 0;
  // v2: the file's merkle root (absent for empty files, symlinks and pads).
  std::optional<Sha256Digest> pieces_root;
};

// A tracker URL with its BEP 12 tier.
struct TrackerEntry {
  std::string url;
  int tier = 0;
  friend bool operator==(const TrackerEntry&, const TrackerEntry&) = default;
};

// A BEP 5 "nodes" entry.
struct DhtNodeEntry {
  std::string host;
  int port = 0;
  friend bool operator==(const DhtNodeEntry&, const DhtNodeEntry&) = default;
};

enum class TorrentVersion { kV1, kV2, kHybrid };

// The contents of a .torrent file. A value type.
struct Metainfo {
  std::string name;  // sanitized
  InfoHashes info_hashes;
  uint32_t piece_length = 0;
  uint64_t total_size = 0;  // pad files included
  uint32_t num_pieces = 0;
  std::vector<FileEntry> files;  // in stream order, pad files included
  bool multi_file = false;       // files live under a directory `name`

  // The exact bytes of the info dict (what the info-hashes are taken over and
  // what ut_metadata serves).
  std::string info_bytes;
  // v1: num_pieces SHA-1 hashes (20 bytes each), a view into info_bytes.
  std::string_view v1_piece_hashes() const {
    return std::string_view(info_bytes)
        .substr(v1_pieces_offset, v1_pieces_length);
  }
  size_t v1_pieces_offset = 0;
  size_t v1_pieces_length = 0;

  // v2: per file (same index as `files`), the piece layer (32 bytes per piece
  // of that file) if the torrent carried one and it hashes to the file's
  // pieces root; empty otherwise (small files need none: their root is their
  // only piece hash; missing layers can be fetched from peers, BEP 52).
  std::vector<std::string> piece_layers;

  std::vector<TrackerEntry> trackers;    // sorted by tier, de-duplicated
  std::vector<std::string> url_seeds;    // BEP 19
  std::vector<std::string> http_seeds;   // BEP 17
  std::vector<DhtNodeEntry> nodes;       // BEP 5
  bool is_private = false;               // BEP 27
  std::optional<int64_t> creation_date;  // seconds since the epoch
  std::string comment;
  std::string created_by;

  // What was repaired or ignored while parsing (renamed duplicate paths,
  // piece layers that did not verify, ...), one sentence each.
  std::vector<std::string> warnings;

  TorrentVersion version() const {
    if (info_hashes.v1 && info_hashes.v2) return TorrentVersion::kHybrid;
    return info_hashes.v2 ? TorrentVersion::kV2 : TorrentVersion::kV1;
  }
  // Number of files that are not pad files.
  size_t num_real_files() const;
};

// Parses a .torrent file. Returns INVALID_ARGUMENT with a message that says
// what is wrong, starting "metainfo: " or "bencode: " (malformed input, a limit
// exceeded, inconsistent v1 and v2 data).
absl::StatusOr<Metainfo> ParseMetainfo(std::string_view torrent_bytes,
                                       const MetainfoLimits& limits = {});

// Parses a bare info dict (as received with ut_metadata, BEP 9). The result
// has no trackers, seeds or piece layers. Errors as ParseMetainfo().
absl::StatusOr<Metainfo> ParseInfoDict(std::string_view info_bytes,
                                       const MetainfoLimits& limits = {});

}  // namespace shoal::chunk

#endif  // SHOAL_CHUNK_METAINFO_H_
