#include "chunk/merkle.h"

#include <bit>
#include <cassert>
#include <cstring>
#include <vector>

namespace shoal::chunk {

using codec::Sha256;
using codec::Sha256Digest;
namespace {

Sha256Digest HashPair(Sha256& hasher, const Sha256Digest& a,
                      const Sha256Digest& b) {
  hasher.Update(std::span<const uint8_t>(a));
  hasher.Update(std::span<const uint8_t>(b));
  return hasher.Final();
}

// Reduces `layer` in place to its root, treating missing nodes at height h as
// `pads[h]`.
Sha256Digest Reduce(std::vector<Sha256Digest>& layer, uint64_t width,
                    int base_pad_levels) {
  Sha256 hasher;
  int level = 0;
  while (width > 1) {
    const Sha256Digest pad = ZeroSubtreeRoot(base_pad_levels + level);
    size_t n = layer.size();
    size_t out = 0;
    for (size_t i = 0; i < n; i += 2) {
      const Sha256Digest& right = i + 1 < n ? layer[i + 1] : pad;
      layer[out++] = HashPair(hasher, layer[i], right);
    }
    layer.resize(out);
    width /= 2;
    ++level;
  }
  return layer[0];
}

}  // namespace

Sha256Digest ZeroSubtreeRoot(int levels) {
  static const std::vector<Sha256Digest> table = [] {
    std::vector<Sha256Digest> t(64);
    t[0].fill(0);
    Sha256 hasher;
    for (int i = 1; i < 64; ++i) t[i] = HashPair(hasher, t[i - 1], t[i - 1]);
    return t;
  }();
  assert(levels >= 0 && levels < 64);
  return table[levels];
}

uint64_t NextPowerOfTwo(uint64_t n) { return n <= 1 ? 1 : std::bit_ceil(n); }

Sha256Digest MerkleRoot(std::span<const Sha256Digest> leaves,
                        uint64_t num_leaves, int pad_levels) {
  assert(!leaves.empty() && std::has_single_bit(num_leaves) &&
         num_leaves >= leaves.size());
  std::vector<Sha256Digest> layer(leaves.begin(), leaves.end());
  return Reduce(layer, num_leaves, pad_levels);
}

Sha256Digest BlockTreeRoot(std::span<const uint8_t> data, uint64_t num_leaves) {
  assert(!data.empty() && std::has_single_bit(num_leaves));
  uint64_t blocks = NumBlocks(data.size());
  assert(blocks <= num_leaves);
  std::vector<Sha256Digest> layer(blocks);
  Sha256 hasher;
  for (uint64_t i = 0; i < blocks; ++i) {
    size_t off = i * kBlockSize;
    size_t len = std::min<size_t>(kBlockSize, data.size() - off);
    hasher.Update(data.subspan(off, len));
    layer[i] = hasher.Final();
  }
  return Reduce(layer, num_leaves, 0);
}

Sha256Digest PiecesRootFromLayer(std::span<const Sha256Digest> layer,
                                 uint32_t piece_length) {
  int piece_levels = std::countr_zero(piece_length / kBlockSize);
  return MerkleRoot(layer, NextPowerOfTwo(layer.size()), piece_levels);
}

}  // namespace shoal::chunk
