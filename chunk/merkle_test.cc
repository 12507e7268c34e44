#include "chunk/merkle.h"

#include <vector>

#include "base/hex.h"
#include "gtest/gtest.h"

namespace shoal::chunk {

using codec::Sha256;
using codec::Sha256Digest;
namespace {

std::string Hex(const Sha256Digest& d) {
  return HexEncode(std::span<const uint8_t>(d));
}

// The zero subtree of height 1 is SHA-256 of 64 zero bytes.
TEST(MerkleTest, ZeroSubtree) {
  std::vector<uint8_t> zeros(64, 0);
  EXPECT_EQ(ZeroSubtreeRoot(1), Sha256::Hash(zeros));
  EXPECT_EQ(ZeroSubtreeRoot(0), Sha256Digest{});
}

// A single block's tree of one leaf is the block's hash; padding to two leaves
// pairs it with the zero hash.
TEST(MerkleTest, BlockTreeRootPadding) {
  std::vector<uint8_t> data(100, 'a');
  Sha256Digest leaf = Sha256::Hash(data);
  EXPECT_EQ(BlockTreeRoot(data, 1), leaf);
  Sha256 h;
  h.Update(std::span<const uint8_t>(leaf));
  h.Update(std::span<const uint8_t>(ZeroSubtreeRoot(0)));
  EXPECT_EQ(BlockTreeRoot(data, 2), h.Final());
}

// Padding a piece layer uses roots of all-zero pieces, which equals hashing the
// whole file's leaf layer padded with zero leaves.
TEST(MerkleTest, PieceLayerPaddingMatchesFlatTree) {
  // Three pieces of 2 blocks each (piece length 32 KiB), the last one short.
  std::vector<uint8_t> data(5 * kBlockSize + 7);
  for (size_t i = 0; i < data.size(); ++i)
    data[i] = static_cast<uint8_t>(i * 13);
  std::span<const uint8_t> all(data);
  std::vector<Sha256Digest> layer;
  for (size_t off = 0; off < data.size(); off += 2 * kBlockSize) {
    layer.push_back(BlockTreeRoot(
        all.subspan(off, std::min<size_t>(2 * kBlockSize, data.size() - off)),
        2));
  }
  ASSERT_EQ(layer.size(), 3u);
  EXPECT_EQ(Hex(PiecesRootFromLayer(layer, 2 * kBlockSize)),
            Hex(BlockTreeRoot(all, 8)));
}

TEST(MerkleTest, NextPowerOfTwo) {
  EXPECT_EQ(NextPowerOfTwo(0), 1u);
  EXPECT_EQ(NextPowerOfTwo(1), 1u);
  EXPECT_EQ(NextPowerOfTwo(3), 4u);
  EXPECT_EQ(NextPowerOfTwo(4), 4u);
  EXPECT_EQ(NextPowerOfTwo(5), 8u);
}

}  // namespace
}  // namespace shoal::chunk
