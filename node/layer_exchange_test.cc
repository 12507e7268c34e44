#include "node/layer_exchange.h"

#include <cstring>

#include "chunk/merkle.h"
#include "chunk/merkle_hashes.h"
#include "gtest/gtest.h"
#include "node/swarm_fakes.h"

namespace shoal::node {
namespace {

// The answer a peer holding `layer` gives to `spec`.
std::string Answer(const testing::TestContent& c, const wire::HashSpec& spec) {
  const std::vector<codec::Sha256Digest> layer =
      codec::SplitDigests(c.metainfo->piece_layers[0]);
  chunk::PieceLayerTree tree(layer, c.layout.piece_length,
                             chunk::NumBlocks(c.layout.length));
  auto h = tree.GetHashes(
      {spec.base_layer, spec.index, spec.length, spec.proof_layers});
  EXPECT_TRUE(h.ok()) << h.status();
  std::string out;
  for (const auto& d : *h)
    out.append(reinterpret_cast<const char*>(d.data()), d.size());
  return out;
}

// A magnet's metadata: the info dict alone, no layer.
std::shared_ptr<chunk::Metainfo> Bare(const testing::TestContent& c) {
  auto m = std::make_shared<chunk::Metainfo>(*c.metainfo);
  m->piece_layers.assign(m->files.size(), std::string());
  return m;
}

TEST(LayerExchangeTest, ProvenAnswersCompleteTheLayer) {
  const auto c = testing::TestContent::Make(3 << 20, 1);
  LayerExchange x(Bare(c), {});
  ASSERT_FALSE(x.done());
  const auto requests = x.Requests();
  ASSERT_FALSE(requests.empty());
  std::optional<std::pair<size_t, std::string>> layer;
  for (const wire::HashSpec& spec : requests) {
    auto got = x.OnHashes(spec, Answer(c, spec));
    ASSERT_TRUE(got.ok()) << got.status();
    if (got->has_value()) layer = **got;
  }
  ASSERT_TRUE(layer.has_value());
  EXPECT_EQ(layer->first, 0u);
  EXPECT_EQ(layer->second, c.metainfo->piece_layers[0]);
  EXPECT_TRUE(x.done());
}

TEST(LayerExchangeTest, BadProofIsDataLoss) {
  const auto c = testing::TestContent::Make(3 << 20, 2);
  LayerExchange x(Bare(c), {});
  const wire::HashSpec spec = x.Requests().front();
  std::string answer = Answer(c, spec);
  answer[5] ^= 1;
  EXPECT_EQ(x.OnHashes(spec, answer).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_FALSE(x.done());
  // An answer about a file nobody asked for is ignored.
  wire::HashSpec other = spec;
  other.pieces_root[0] ^= 1;
  auto ignored = x.OnHashes(other, Answer(c, spec));
  ASSERT_TRUE(ignored.ok());
  EXPECT_FALSE(ignored->has_value());
}

TEST(LayerExchangeTest, KnownLayersAndOnePieceFilesAreNotFetched) {
  const auto c = testing::TestContent::Make(3 << 20, 3);
  EXPECT_TRUE(LayerExchange(c.metainfo, c.metainfo->piece_layers).done());
  const auto small = testing::TestContent::Make(10000, 4);
  EXPECT_TRUE(LayerExchange(Bare(small), {}).done());
}

}  // namespace
}  // namespace shoal::node
