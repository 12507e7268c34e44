// CDN content identity: the canonical BitTorrent v2 info dict and the content
// ID.
//
// Shoal names content by the v2 info-hash of a canonical single-file info dict,
// so the same bytes get the same ID on every node, and libtorrent 2.x can fetch
// the content with magnet:?xt=urn:btmh:1220<content id>. For content of length
// L with pieces root R:
//
//   d 9:file tree d 64:<hex R> d 0: d 6:length i<L>e 11:pieces root 32:<R> e e
//   e
//     12:meta version i2e 4:name 64:<hex R> 12:piece length
//     i<CanonicalPieceLength(L)>e e
//
// Piece length rule (deterministic in L alone): the smallest power of two >= L
// / 1024, clamped to [64 KiB, 4 MiB]. So content up to 64 MiB has 64 KiB
// pieces, 1 GiB has 1 MiB pieces (1024 of them), and 4 GiB and beyond has 4 MiB
// pieces.
//
// Empty content (L = 0): BEP 52 gives a zero-length file no pieces root, so the
// canonical dict has no "pieces root" key, the name is 64 zeros, and the piece
// length is 64 KiB. Empty content has no pieces and no chunks. libtorrent
// refuses torrents of total size 0, so empty content is Shoal-only: it can be
// added and read, but a BitTorrent client cannot fetch it.
#ifndef SHOAL_CHUNK_CONTENT_ID_H_
#define SHOAL_CHUNK_CONTENT_ID_H_

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "codec/sha.h"

namespace shoal::chunk {

using codec::Sha256Digest;

inline constexpr uint32_t kMinCanonicalPieceLength = 64 * 1024;
inline constexpr uint32_t kMaxCanonicalPieceLength = 4 * 1024 * 1024;

// A content ID: SHA-256 of the canonical info dict. A value type.
struct ContentId {
  Sha256Digest bytes{};

  // 64 lowercase hex characters.
  std::string Hex() const;
  // Parses 64 hex characters (either case). INVALID_ARGUMENT otherwise, saying
  // why.
  static absl::StatusOr<ContentId> FromHex(std::string_view hex);
  // REQUIRES: raw.size() == 32.
  static ContentId FromBytes(std::string_view raw);
  std::string_view AsStringView() const {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
  }

  friend auto operator<=>(const ContentId&, const ContentId&) = default;
  template <typename H>
  friend H AbslHashValue(H h, const ContentId& id) {
    return H::combine(std::move(h), id.AsStringView());
  }
};

// The piece length of content of `length` bytes (see the rule above).
uint32_t CanonicalPieceLength(uint64_t length);

// How content of a given length divides into pieces and merkle leaves. A value
// type.
struct ContentLayout {
  uint64_t length = 0;
  uint32_t piece_length = kMinCanonicalPieceLength;

  static ContentLayout ForLength(uint64_t length) {
    return {length, CanonicalPieceLength(length)};
  }
  uint32_t num_pieces() const {
    return static_cast<uint32_t>((length + piece_length - 1) / piece_length);
  }
  uint64_t piece_offset(uint32_t index) const {
    return uint64_t{index} * piece_length;
  }
  uint32_t piece_size(uint32_t index) const;
  // log2 of the number of leaves the tree of piece `index` is padded to. For
  // content of one piece this is the whole file's tree (so the piece hash is
  // the pieces root); otherwise every piece, the last one too, is padded to
  // piece_length / 16 KiB leaves (its piece-layer hash).
  int piece_tree_levels(uint32_t index) const;
};

// Returns the hash that verifies piece `index`: the root of its 16 KiB blocks
// padded to 2^layout.piece_tree_levels(index) leaves. REQUIRES: data.size() ==
// layout.piece_size(index) > 0.
Sha256Digest HashPiece(std::span<const uint8_t> data, int tree_levels);

// The pieces root of content with this piece layer (one hash per piece).
// Empty content has the all-zero root.
Sha256Digest PiecesRoot(const ContentLayout& layout,
                        std::span<const Sha256Digest> piece_layer);

// The bencoded canonical info dict.
std::string CanonicalInfoDict(const ContentLayout& layout,
                              const Sha256Digest& pieces_root);

// SHA-256 of CanonicalInfoDict(layout, pieces_root).
ContentId ComputeContentId(const ContentLayout& layout,
                           const Sha256Digest& pieces_root);

}  // namespace shoal::chunk

#endif  // SHOAL_CHUNK_CONTENT_ID_H_
