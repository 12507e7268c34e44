// Serving and checking BEP 52 hash requests: slices of a file's merkle tree
// with the "uncle" hashes that prove them against the pieces root.
//
// Geometry: a file of B blocks has N = next_pow2(B) leaves and H = log2(N)
// layers above them; layer h (0 = leaves) has N >> h nodes. A request names a
// base layer, an index and a count of hashes in it (count a power of two >= 2,
// index a multiple of count) and a number of proof layers. The answer is the
// `count` hashes, then one uncle per proof layer above the subtree they span
// (the first log2(count) - 1 proof layers are implied by the hashes
// themselves), nearest the subtree first. To reach the root, ask for
// proof_layers = H - base - 1.
#ifndef SHOAL_CHUNK_MERKLE_HASHES_H_
#define SHOAL_CHUNK_MERKLE_HASHES_H_

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "codec/sha.h"

namespace shoal::chunk {

using codec::Sha256Digest;

// The fields of a hash request (BEP 52), as numbers.
struct HashRange {
  uint32_t base_layer = 0;
  uint32_t index = 0;
  uint32_t count = 0;
  uint32_t proof_layers = 0;
};

// Checks a request against a tree of `num_leaves` (a power of two) leaves:
// INVALID_ARGUMENT with the reason if it is malformed or outside the tree, or
// asks for more than 8192 hashes.
absl::Status ValidateHashRange(const HashRange& r, uint64_t num_leaves);

// The tree of one file above its piece layer, built from the piece layer.
// Immutable after construction; thread-compatible.
class PieceLayerTree {
 public:
  // `piece_layer` has one hash per piece (a file of one piece: its single entry
  // is the root); pieces have `piece_length / 16 KiB` blocks; the file has
  // `num_blocks` blocks.
  PieceLayerTree(std::vector<Sha256Digest> piece_layer, uint32_t piece_length,
                 uint64_t num_blocks);

  const Sha256Digest& root() const { return layers_.back()[0]; }
  uint64_t num_leaves() const { return num_leaves_; }
  int piece_levels() const { return piece_levels_; }

  // Answers a request whose base layer is at or above the piece layer. For base
  // layers below it, `block_hashes(first, count)` must return the leaf hashes
  // of blocks [first, first+count) (zero hashes past the end of the file); only
  // base layer 0 is supported there. Errors: INVALID_ARGUMENT for a malformed
  // request; UNIMPLEMENTED for a base between 1 and the piece layer; whatever
  // block_hashes returns.
  absl::StatusOr<std::vector<Sha256Digest>> GetHashes(
      const HashRange& r,
      const std::function<absl::StatusOr<std::vector<Sha256Digest>>(
          uint64_t, uint32_t)>& block_hashes = nullptr) const;

 private:
  // Node i of layer h (h >= piece_levels_), pads included.
  Sha256Digest Node(int h, uint64_t i) const;

  uint64_t num_leaves_;
  int piece_levels_;
  // layers_[k] is layer piece_levels_ + k, padded to its full width.
  std::vector<std::vector<Sha256Digest>> layers_;
};

// Checks a 'hashes' answer: `hashes` holds r.count base-layer hashes followed
// by the uncles. Returns the base-layer hashes if they prove out against `root`
// in a tree of `num_leaves` leaves. INVALID_ARGUMENT if the answer is malformed
// or does not reach the root; DATA_LOSS if it proves a different root (the peer
// sent bad hashes).
absl::StatusOr<std::vector<Sha256Digest>> VerifyHashes(
    const Sha256Digest& root, uint64_t num_leaves, const HashRange& r,
    std::span<const Sha256Digest> hashes);

}  // namespace shoal::chunk

#endif  // SHOAL_CHUNK_MERKLE_HASHES_H_
