// Creating .torrent files (v1, v2 or hybrid) from a file or a directory.
//
//   TorrentCreatorOptions o;
//   o.source = "/data/album";
//   o.version = TorrentVersion::kHybrid;
//   o.trackers = {"udp://tracker.example:6969/announce"};
//   absl::StatusOr<std::string> torrent = CreateTorrent(o);
//
// Layout: a directory's regular files are listed depth-first in byte order
// of their names (the order of a v2 file tree), empty files included;
// symlinks, special files and empty directories are skipped. For v2 and
// hybrid torrents every non-empty file starts on a piece boundary; a hybrid
// torrent's v1 file list carries a BEP 47 pad file (attr "p", path
// [".pad", "<size>"]) after each non-empty file that does not end on a piece
// boundary, except the last non-empty file (libtorrent's layout).
//
// Piece size: if not given, the smallest power of two >= total size / 1024,
// clamped to [16 KiB, 16 MiB] (so about 1000-2000 pieces for mid-sized
// content: 1 GiB gets 1 MiB pieces).
//
// Hashing runs on a ThreadPool (SHA-1 for v1, 16 KiB-block merkle trees for
// v2; a hybrid torrent reads every byte once).
#ifndef SHOAL_CHUNK_TORRENT_CREATOR_H_
#define SHOAL_CHUNK_TORRENT_CREATOR_H_

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "chunk/metainfo.h"

namespace shoal::chunk {

inline constexpr uint32_t kMinAutoPieceLength = 16 * 1024;
inline constexpr uint32_t kMaxAutoPieceLength = 16 * 1024 * 1024;

// The automatic piece length for `total_size` bytes (rule above).
uint32_t AutoPieceLength(uint64_t total_size);

// What to build. A value type.
struct TorrentCreatorOptions {
  std::filesystem::path source;  // a regular file or a directory
  TorrentVersion version = TorrentVersion::kHybrid;
  // 0: AutoPieceLength(). Otherwise a power of two >= 16 KiB.
  uint32_t piece_length = 0;
  std::vector<std::string> trackers;   // one tier each, in order
  std::vector<std::string> web_seeds;  // BEP 19 url-list
  bool is_private = false;
  std::string comment;
  std::string created_by = "Shoal";
  // Seconds since the epoch; nullopt omits "creation date" (reproducible
  // output).
  std::optional<int64_t> creation_date;
  // Hashing threads; 0: one per core.
  int num_threads = 0;
};

// Hashes the files under options.source and returns the bencoded .torrent.
// INVALID_ARGUMENT for bad options or a source with no data (total size 0);
// NOT_FOUND / the I/O error as a Status when files cannot be read.
absl::StatusOr<std::string> CreateTorrent(const TorrentCreatorOptions& options);

}  // namespace shoal::chunk

#endif  // SHOAL_CHUNK_TORRENT_CREATOR_H_
