#include "node/metadata_exchange.h"

#include <string>

#include "gtest/gtest.h"

namespace shoal::node {
namespace {

// A dict of three metadata pieces (the last one short).
std::string Dict() {
  std::string d = "d4:name";
  d += std::to_string(2 * wire::kMetadataPieceSize + 100) + ":";
  d.append(2 * wire::kMetadataPieceSize + 100, 'x');
  d += "e";
  return d;
}

wire::MetadataMessage Data(const std::string& dict, uint32_t piece) {
  return MetadataExchange::Answer(&dict, piece);
}

chunk::InfoHashes HashesOf(const std::string& dict) {
  chunk::InfoHashes h;
  h.v1 = chunk::InfoHashV1::Of(dict);
  h.v2 = chunk::InfoHashV2::Of(dict);
  return h;
}

TEST(MetadataExchangeTest, AssemblesPiecesInAnyOrder) {
  const std::string dict = Dict();
  const int64_t size = static_cast<int64_t>(dict.size());
  MetadataExchange x(HashesOf(dict), 1 << 20);
  auto wanted = x.Wanted(size);
  ASSERT_TRUE(wanted.ok());
  EXPECT_EQ(*wanted, (std::vector<uint32_t>{0, 1, 2}));
  auto r = x.OnData(Data(dict, 2), size);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has_value());
  EXPECT_EQ(*x.Wanted(size), (std::vector<uint32_t>{0, 1}));  // not 2 again
  ASSERT_TRUE(x.OnData(Data(dict, 0), size).ok());
  r = x.OnData(Data(dict, 1), size);
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ(**r, dict);
}

TEST(MetadataExchangeTest, RefusesSizesOutOfRangeOrUnannounced) {
  const std::string dict = Dict();
  const int64_t size = static_cast<int64_t>(dict.size());
  MetadataExchange x(HashesOf(dict), 1 << 20);
  EXPECT_EQ(x.Wanted(0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(x.Wanted((1 << 20) + 1).status().code(),
            absl::StatusCode::kInvalidArgument);
  // Data before anyone announced that size.
  EXPECT_EQ(x.OnData(Data(dict, 0), size).status().code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(x.Wanted(size).ok());
  // A total other than the sender's own handshake said.
  EXPECT_EQ(x.OnData(Data(dict, 0), size + 1).status().code(),
            absl::StatusCode::kInvalidArgument);
  // A piece cut short.
  wire::MetadataMessage m = Data(dict, 0);
  m.data = m.data.substr(1);
  EXPECT_EQ(x.OnData(m, size).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// A dict that doesn't hash to the info-hash is refused, and every piece is
// asked for again.
TEST(MetadataExchangeTest, WrongDictIsDataLossAndStartsOver) {
  const std::string dict = Dict();
  std::string other = dict;
  other[10] = 'y';
  const int64_t size = static_cast<int64_t>(dict.size());
  MetadataExchange x(HashesOf(dict), 1 << 20);
  ASSERT_TRUE(x.Wanted(size).ok());
  for (uint32_t i = 0; i < 2; ++i)
    ASSERT_TRUE(x.OnData(Data(other, i), size).ok());
  EXPECT_EQ(x.OnData(Data(other, 2), size).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(x.Wanted(size)->size(), 3u);
}

TEST(MetadataExchangeTest, AnswersWithDataOrReject) {
  const std::string dict = Dict();
  auto a = MetadataExchange::Answer(&dict, 2);
  EXPECT_EQ(a.type, wire::MetadataMessageType::kData);
  EXPECT_EQ(a.data.size(), dict.size() - 2 * wire::kMetadataPieceSize);
  EXPECT_EQ(a.total_size.value_or(0), static_cast<int64_t>(dict.size()));
  EXPECT_EQ(MetadataExchange::Answer(&dict, 3).type,
            wire::MetadataMessageType::kReject);
  EXPECT_EQ(MetadataExchange::Answer(nullptr, 0).type,
            wire::MetadataMessageType::kReject);
}

}  // namespace
}  // namespace shoal::node
