// Magnet URIs for BitTorrent (BEP 9, BEP 52, BEP 53).
//
//   magnet:?xt=urn:btih:<40 hex or 32 base32>        v1 info-hash
//          &xt=urn:btmh:1220<64 hex>                 v2 info-hash (multihash)
//          &dn=<display name>&tr=<tracker>...&ws=<web seed>...
//          &x.pe=<host:port>...&so=0,2,4-6          peers, select-only files
//
// Both xt forms together make a hybrid magnet. Parsing is strict about what it
// understands (a malformed hash, percent-escape, peer address or so= range is
// an error that says which) and ignores parameters it does not know.
//
//   absl::StatusOr<MagnetUri> m = ParseMagnetUri(text);
//   std::string again = ToMagnetUri(*m);
#ifndef SHOAL_CHUNK_MAGNET_H_
#define SHOAL_CHUNK_MAGNET_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "chunk/info_hash.h"

namespace shoal::chunk {

struct Metainfo;

// A closed range of file indices [first, last] from BEP 53's so=.
struct FileIndexRange {
  uint32_t first = 0;
  uint32_t last = 0;
  friend bool operator==(const FileIndexRange&,
                         const FileIndexRange&) = default;
};

// A parsed magnet URI. A value type.
struct MagnetUri {
  InfoHashes info_hashes;              // at least one of v1, v2 after parsing
  std::string display_name;            // dn, decoded
  std::vector<std::string> trackers;   // tr, in order, de-duplicated
  std::vector<std::string> web_seeds;  // ws
  std::vector<std::string> peers;      // x.pe, "host:port" or "[v6]:port"
  std::vector<FileIndexRange> select_only;  // so

  friend bool operator==(const MagnetUri&, const MagnetUri&) = default;
};

// The longest magnet URI accepted, in bytes.
inline constexpr size_t kMaxMagnetUriLength = 64 * 1024;

// Parses `uri`. INVALID_ARGUMENT, saying what is wrong, if it is not a
// magnet URI, has no BitTorrent info-hash, or any parameter Shoal understands
// is malformed.
absl::StatusOr<MagnetUri> ParseMagnetUri(std::string_view uri);

// Emits `magnet` as a URI that ParseMagnetUri() parses back to an equal value
// (v1 hash as hex). REQUIRES: !magnet.info_hashes.empty().
std::string ToMagnetUri(const MagnetUri& magnet);

// The magnet of a torrent: its info-hashes, name, trackers and web seeds.
MagnetUri MagnetFromMetainfo(const Metainfo& metainfo);

}  // namespace shoal::chunk

#endif  // SHOAL_CHUNK_MAGNET_H_
