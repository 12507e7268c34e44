// BEP 52 merkle trees: SHA-256 over 16 KiB blocks.
//
// A file's tree has one leaf per 16 KiB block (the last block may be shorter
// and is hashed as it is); the leaf layer is padded with all-zero hashes to a
// power of two, and each inner node is SHA-256 of its two children
// concatenated. The "piece layer" is the layer whose nodes each cover one piece
// (piece_length / 16 KiB leaves); the root is the file's "pieces root".
//
//   std::vector<Sha256Digest> layer = ...;  // piece hashes
//   Sha256Digest root = PiecesRootFromLayer(layer, piece_length);
#ifndef SHOAL_CHUNK_MERKLE_H_
#define SHOAL_CHUNK_MERKLE_H_

#include <cstddef>
#include <cstdint>
#include <span>

#include "codec/sha.h"

namespace shoal::chunk {

using codec::Sha256Digest;

inline constexpr uint32_t kBlockSize = 16 * 1024;

// Returns the root of the subtree of 2^levels all-zero leaves (levels = 0 gives
// the zero hash). REQUIRES: levels <= 63.
Sha256Digest ZeroSubtreeRoot(int levels);

// Returns the root of the tree whose leaves are `leaves`, padded to
// `num_leaves` with the root of a zero subtree of height `pad_levels` (so the
// pad of a piece layer is the root of an all-zero piece). REQUIRES: num_leaves
// is a power of two >= leaves.size(); leaves is not empty.
Sha256Digest MerkleRoot(std::span<const Sha256Digest> leaves,
                        uint64_t num_leaves, int pad_levels = 0);

// Hashes `data` as consecutive 16 KiB blocks and returns the root of the tree
// of those block hashes padded with zero hashes to `num_leaves` leaves.
// REQUIRES: num_leaves is a power of two and num_leaves * 16 KiB >= data.size()
// > 0.
Sha256Digest BlockTreeRoot(std::span<const uint8_t> data, uint64_t num_leaves);

// The number of 16 KiB blocks in `length` bytes.
inline uint64_t NumBlocks(uint64_t length) {
  return (length + kBlockSize - 1) / kBlockSize;
}

// The smallest power of two >= n (1 for n = 0).
uint64_t NextPowerOfTwo(uint64_t n);

// The pieces root of a file with the given piece layer (one hash per piece,
// each the root of a piece's blocks padded to piece_length / 16 KiB leaves).
// REQUIRES: piece_length is a power of two >= 16 KiB; layer.size() >= 1.
Sha256Digest PiecesRootFromLayer(std::span<const Sha256Digest> layer,
                                 uint32_t piece_length);

}  // namespace shoal::chunk

#endif  // SHOAL_CHUNK_MERKLE_H_
