#include "chunk/merkle_hashes.h"

#include <random>

#include "chunk/content_id.h"
#include "chunk/merkle.h"
#include "gtest/gtest.h"

namespace shoal::chunk {

using codec::AsBytes;
using codec::Sha256;
using codec::Sha256Digest;
namespace {

struct File {
  std::string data;
  ContentLayout layout;
  std::vector<Sha256Digest> layer;
  std::vector<Sha256Digest> leaves;  // padded to next_pow2(blocks)
  Sha256Digest root;
};

File MakeFile(uint64_t length, uint32_t piece_length, uint32_t seed) {
  File f;
  std::mt19937 rng(seed);
  f.data.resize(length);
  for (auto& c : f.data) c = static_cast<char>(rng());
  f.layout = {length, piece_length};
  for (uint32_t i = 0; i < f.layout.num_pieces(); ++i) {
    f.layer.push_back(
        HashPiece(AsBytes(std::string_view(f.data).substr(
                      f.layout.piece_offset(i), f.layout.piece_size(i))),
                  f.layout.piece_tree_levels(i)));
  }
  f.root = PiecesRoot(f.layout, f.layer);
  uint64_t blocks = NumBlocks(length);
  for (uint64_t b = 0; b < NextPowerOfTwo(blocks); ++b) {
    if (b < blocks) {
      f.leaves.push_back(Sha256::Hash(
          std::string_view(f.data).substr(b * kBlockSize, kBlockSize)));
    } else {
      f.leaves.push_back(Sha256Digest{});
    }
  }
  return f;
}

// Answers at the piece layer, with uncles up to the root, verify against the
// pieces root, for every aligned slice; and a tampered hash is caught.
TEST(MerkleHashesTest, PieceLayerSlicesProveOut) {
  File f = MakeFile(37 * 65536 + 100, 65536, 1);  // 38 pieces, 4 blocks each
  PieceLayerTree tree(f.layer, 65536, NumBlocks(f.data.size()));
  ASSERT_EQ(tree.root(), f.root);
  const int height = std::countr_zero(tree.num_leaves());
  for (uint32_t count : {2u, 4u, 8u, 64u}) {
    for (uint32_t index = 0; index < 64; index += count) {
      HashRange r{2, index, count, static_cast<uint32_t>(height - 2 - 1)};
      auto hashes = tree.GetHashes(r);
      ASSERT_TRUE(hashes.ok()) << hashes.status();
      auto ok = VerifyHashes(f.root, tree.num_leaves(), r, *hashes);
      ASSERT_TRUE(ok.ok()) << ok.status() << " count " << count << " index "
                           << index;
      for (uint32_t k = 0; k < count; ++k) {
        Sha256Digest want = index + k < f.layer.size() ? f.layer[index + k]
                                                       : ZeroSubtreeRoot(2);
        EXPECT_EQ((*ok)[k], want);
      }
      (*hashes)[0][0] ^= 1;
      EXPECT_EQ(
          VerifyHashes(f.root, tree.num_leaves(), r, *hashes).status().code(),
          absl::StatusCode::kDataLoss);
    }
  }
}

// Leaf-layer answers come from the block hashes the caller supplies and also
// prove out.
TEST(MerkleHashesTest, LeafLayerWithBlockHashes) {
  File f = MakeFile(9 * 65536, 65536, 2);
  PieceLayerTree tree(f.layer, 65536, NumBlocks(f.data.size()));
  auto blocks = [&](uint64_t first,
                    uint32_t n) -> absl::StatusOr<std::vector<Sha256Digest>> {
    return std::vector<Sha256Digest>(f.leaves.begin() + first,
                                     f.leaves.begin() + first + n);
  };
  const int height = std::countr_zero(tree.num_leaves());
  HashRange r{0, 8, 4, static_cast<uint32_t>(height - 1)};
  auto hashes = tree.GetHashes(r, blocks);
  ASSERT_TRUE(hashes.ok()) << hashes.status();
  auto ok = VerifyHashes(f.root, tree.num_leaves(), r, *hashes);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ((*ok)[0], f.leaves[8]);
}

// Malformed requests are refused with a reason.
TEST(MerkleHashesTest, RejectsMalformedRequests) {
  File f = MakeFile(8 * 65536, 65536, 3);
  PieceLayerTree tree(f.layer, 65536, NumBlocks(f.data.size()));
  EXPECT_FALSE(tree.GetHashes({2, 0, 3, 0}).ok());   // not a power of two
  EXPECT_FALSE(tree.GetHashes({2, 2, 4, 0}).ok());   // index not a multiple
  EXPECT_FALSE(tree.GetHashes({2, 0, 16, 0}).ok());  // past the layer
  EXPECT_FALSE(tree.GetHashes({9, 0, 2, 0}).ok());   // above the root
  EXPECT_FALSE(tree.GetHashes({2, 0, 2, 9}).ok());   // too many proof layers
  EXPECT_EQ(tree.GetHashes({1, 0, 2, 0}).status().code(),
            absl::StatusCode::kUnimplemented);
  EXPECT_TRUE(tree.GetHashes({2, 0, 8, 2}).ok());  // the whole layer, no uncles
}

}  // namespace
}  // namespace shoal::chunk
