#include "chunk/content_id.h"

#include <vector>

#include "base/hex.h"
#include "gtest/gtest.h"

namespace shoal::chunk {

using codec::Sha256Digest;
namespace {

std::vector<uint8_t> Pattern(size_t n) {
  std::vector<uint8_t> v(n);
  for (size_t k = 0; k < n; ++k) v[k] = static_cast<uint8_t>(k * 7 + (k >> 10));
  return v;
}

struct Vector {
  uint64_t length;
  uint32_t piece_length;
  const char* pieces_root;
  const char* content_id;
};

// Produced by libtorrent 2.0.8 (Debian's python3-libtorrent):
// lt.create_torrent(v2_only) of a file named after its pieces root, with the
// piece length from our rule; the content ID is SHA-256 of libtorrent's
// bencoded info dict. Data: byte k = (7k + k/1024) mod 256.
constexpr Vector kVectors[] = {
    {1, 65536,
     "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
     "78ec0c4e20ddb946860afec98aacc0468739042aa359f3ce5e3cc964f0ad2b46"},
    {16383, 65536,
     "3b27fd22a1947d65b9cf75bbb056e258455c900079863fddc2f31a4be36ac6e1",
     "305c242d66ead8f6b869bd1770a68aef1936a837f97238f1018709289722dcee"},
    {16384, 65536,
     "e4172f10ab8cf2c8f6e01963eb583855f719175008f651dac64972e050191d88",
     "8d0c7a9a959376e9d18745960e68054e99a3c069f07f8815cf45c3270d9e6d1c"},
    {16385, 65536,
     "1144ac0f6a9380857bfa95ccb1845b92c23d9e33713ce977ad30d401a05c1c85",
     "89c10d0d404fad9cccc4abcc8ec4d04f5a9f0219bb21b1ad14018a60356e7ae0"},
    {65536, 65536,
     "64bea23b0557de1bf748edf107dbc217d76adee24c5e5787029cdd50d1efd9fa",
     "5dd3e77bb4057fadc735bf929a5730636dc22078a8636ad9750ca3ca897e1d75"},
    {65537, 65536,
     "36b47eeaed810f1f37065fd3a7791317a210aa18fd18b3cd2b96a5d28f6004a6",
     "6a99aba6522f6d38aedf5448532c477c4870b45bb817cd1a1308b38060be7d96"},
    {200000, 65536,
     "9dc70876916834693ad006e83e1cff5be1e673fe23a1951f868d6b5b1459a27a",
     "4398aac2a7198a7e29165e4a807cfca737b9a84ed671d9aba4e4063ce0bbaddf"},
    {1048576, 65536,
     "a4f19497a113fafc87c8b0cdb61ca4b5e9dc3a8b72711e34933fe7745e0e2931",
     "6981f5498efaa88aaa7e7f22d58116850f9132ec7019d22b591dd3aa0dab7974"},
    {3000000, 65536,
     "4a79bef832c720ab8a72f25cb684f8ecfd45387a88842c4fe144b4c8fcb1ecb7",
     "ee01ad741643c94c4ae8aa7d7042948f11a2add7328d743c838ee0f06ebbba1e"},
};

// Pieces roots and content IDs agree with libtorrent for sizes around block and
// piece edges.
TEST(ContentIdTest, MatchesLibtorrentVectors) {
  for (const Vector& v : kVectors) {
    SCOPED_TRACE(v.length);
    std::vector<uint8_t> data = Pattern(v.length);
    ContentLayout layout = ContentLayout::ForLength(v.length);
    EXPECT_EQ(layout.piece_length, v.piece_length);
    std::vector<Sha256Digest> layer;
    for (uint32_t i = 0; i < layout.num_pieces(); ++i) {
      layer.push_back(
          HashPiece(std::span<const uint8_t>(data).subspan(
                        layout.piece_offset(i), layout.piece_size(i)),
                    layout.piece_tree_levels(i)));
    }
    Sha256Digest root = PiecesRoot(layout, layer);
    EXPECT_EQ(HexEncode(std::span<const uint8_t>(root)), v.pieces_root);
    EXPECT_EQ(ComputeContentId(layout, root).Hex(), v.content_id);
  }
}

// The piece-length rule: 64 KiB up to 64 MiB, then L/1024 rounded up to a power
// of two, at most 4 MiB.
TEST(ContentIdTest, PieceLengthRule) {
  EXPECT_EQ(CanonicalPieceLength(0), 64u * 1024);
  EXPECT_EQ(CanonicalPieceLength(64ull << 20), 64u * 1024);
  EXPECT_EQ(CanonicalPieceLength((64ull << 20) + 1), 128u * 1024);
  EXPECT_EQ(CanonicalPieceLength(1ull << 30), 1u << 20);
  EXPECT_EQ(CanonicalPieceLength(1ull << 40), 4u << 20);
}

// Empty content has a fixed, documented ID: no pieces root and a name of 64
// zeros.
TEST(ContentIdTest, EmptyContent) {
  ContentLayout layout = ContentLayout::ForLength(0);
  EXPECT_EQ(layout.num_pieces(), 0u);
  Sha256Digest root = PiecesRoot(layout, {});
  std::string dict = CanonicalInfoDict(layout, root);
  EXPECT_EQ(dict, "d9:file treed64:" + std::string(64, '0') +
                      "d0:d6:lengthi0eeee12:meta versioni2e4:name64:" +
                      std::string(64, '0') + "12:piece lengthi65536ee");
}

// IDs parse from hex of either case and reject anything else with a reason.
TEST(ContentIdTest, FromHex) {
  std::string hex(64, 'a');
  auto id = ContentId::FromHex(hex);
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(id->Hex(), hex);
  EXPECT_TRUE(ContentId::FromHex(std::string(64, 'A')).ok());
  EXPECT_EQ(ContentId::FromHex("abc").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ContentId::FromHex(std::string(64, 'g')).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace shoal::chunk
