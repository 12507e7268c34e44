#include "chunk/piece_verifier.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "chunk/merkle.h"
#include "chunk/torrent_creator.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace shoal::chunk {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

class PieceVerifierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("verifier_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  void Write(const fs::path& rel, size_t size, uint32_t seed) {
    fs::create_directories((dir_ / rel).parent_path());
    std::mt19937 rng(seed);
    std::string data(size, '\0');
    for (char& c : data) c = static_cast<char>(rng());
    std::ofstream(dir_ / rel, std::ios::binary) << data;
  }

  Metainfo Make(const fs::path& rel, TorrentVersion v, uint32_t piece_length) {
    TorrentCreatorOptions o;
    o.source = dir_ / rel;
    o.version = v;
    o.piece_length = piece_length;
    o.num_threads = 2;
    auto bytes = CreateTorrent(o);
    EXPECT_TRUE(bytes.ok()) << bytes.status();
    torrent_ = *bytes;
    auto m = ParseMetainfo(torrent_);
    EXPECT_TRUE(m.ok()) << m.status();
    return *std::move(m);
  }

  // The torrent's byte stream: files in order, pad files as zeros.
  std::string Stream(const Metainfo& m) {
    std::string s;
    for (const FileEntry& f : m.files) {
      if (f.pad_file) {
        s.append(f.length, '\0');
      } else {
        std::ifstream in(dir_ / f.path, std::ios::binary);
        std::stringstream buf;
        buf << in.rdbuf();
        EXPECT_EQ(buf.str().size(), f.length) << f.path;
        s += buf.str();
      }
    }
    EXPECT_EQ(s.size(), m.total_size);
    return s;
  }

  static std::string Piece(const Metainfo& m, const std::string& stream,
                           uint32_t i) {
    return stream.substr(uint64_t{i} * m.piece_length, PieceSize(m, i));
  }

  fs::path dir_;
  std::string torrent_;
};

// Every piece of a v1 single-file torrent verifies; a flipped byte, a wrong
// size and a bad index give DATA_LOSS, INVALID_ARGUMENT and OUT_OF_RANGE.
TEST_F(PieceVerifierTest, V1SingleFile) {
  Write("f.bin", 100000, 1);
  Metainfo m = Make("f.bin", TorrentVersion::kV1, 16384);
  ASSERT_EQ(m.num_pieces, 7u);
  EXPECT_EQ(PieceSize(m, 6), 100000u - 6 * 16384);
  const std::string s = Stream(m);
  PieceVerifier v(m);
  for (uint32_t i = 0; i < m.num_pieces; ++i) {
    EXPECT_TRUE(v.Verify(i, Piece(m, s, i)).ok()) << i;
  }
  std::string bad = Piece(m, s, 3);
  bad[100] ^= 1;
  EXPECT_TRUE(absl::IsDataLoss(v.Verify(3, bad)));
  EXPECT_TRUE(absl::IsInvalidArgument(v.Verify(3, Piece(m, s, 6))));
  EXPECT_TRUE(absl::IsOutOfRange(v.Verify(7, Piece(m, s, 6))));
  EXPECT_TRUE(absl::IsFailedPrecondition(v.VerifyV2(0, Piece(m, s, 0))));
}

// MapPiece splits a v1 piece over the three files it spans, and FilePieces is
// its inverse.
TEST_F(PieceVerifierTest, V1PieceSpansThreeFiles) {
  Write("t/a", 10000, 1);
  Write("t/b", 3000, 2);
  Write("t/c", 40000, 3);
  Metainfo m = Make("t", TorrentVersion::kV1, 16384);
  ASSERT_EQ(m.files.size(), 3u);
  EXPECT_THAT(MapPiece(m, 0), ElementsAre(FileSlice{0, 0, 0, 10000},
                                          FileSlice{1, 0, 10000, 3000},
                                          FileSlice{2, 0, 13000, 3384}));
  EXPECT_THAT(MapPiece(m, 3), ElementsAre(FileSlice{2, 3384 + 2 * 16384, 0,
                                                    53000 - 3 * 16384}));
  EXPECT_EQ(FilePieces(m, 0), (PieceRange{0, 1}));
  EXPECT_EQ(FilePieces(m, 2), (PieceRange{0, 4}));
  // Any range of the stream (a web seed's run), offsets from its start.
  EXPECT_THAT(
      MapRange(m, 9000, 5000),
      ElementsAre(FileSlice{0, 9000, 0, 1000}, FileSlice{1, 0, 1000, 3000},
                  FileSlice{2, 0, 4000, 1000}));
  EXPECT_THAT(MapRange(m, 14000, 100), ElementsAre(FileSlice{2, 1000, 0, 100}));
  const std::string s = Stream(m);
  PieceVerifier v(m);
  for (uint32_t i = 0; i < m.num_pieces; ++i) {
    EXPECT_TRUE(v.Verify(i, Piece(m, s, i)).ok()) << i;
  }
}

// A v2 torrent: a multi-piece file (piece layer, short last piece padded with
// zero leaves), a file of 3 blocks (root of a 4-leaf tree) and an empty file
// all verify; the pieces are piece-aligned with pad files between them.
TEST_F(PieceVerifierTest, V2Layout) {
  Write("t/big", 3 * 65536 + 20000, 1);
  Write("t/empty", 0, 2);
  Write("t/small", 40000, 3);
  Metainfo m = Make("t", TorrentVersion::kV2, 65536);
  const std::string s = Stream(m);
  PieceVerifier v(m);
  // big, pad, empty, small, pad (v2 pads the tail too).
  ASSERT_EQ(m.files.size(), 5u);
  ASSERT_EQ(m.num_pieces, 5u);
  EXPECT_EQ(m.total_size, 5u * 65536);
  for (uint32_t i = 0; i < m.num_pieces; ++i) {
    EXPECT_TRUE(v.Verify(i, Piece(m, s, i)).ok()) << i;
  }
  // Piece 3: the big file's last 20000 bytes, then its pad.
  EXPECT_THAT(MapPiece(m, 3), ElementsAre(FileSlice{0, 3 * 65536, 0, 20000},
                                          FileSlice{1, 0, 20000, 45536}));
  EXPECT_EQ(FilePieces(m, 2), PieceRange{});
  EXPECT_EQ(FilePieces(m, 3), (PieceRange{4, 5}));
  EXPECT_TRUE(v.HasPieceLayer(0));
  EXPECT_TRUE(v.HasPieceLayer(3));
  auto root = v.ExpectedV2Hash(4);  // the small file's only piece
  ASSERT_TRUE(root.ok());
  EXPECT_EQ(*root, *m.files[3].pieces_root);
  EXPECT_TRUE(absl::IsFailedPrecondition(v.VerifyV1(0, Piece(m, s, 0))));
}

// Corrupting one 16 KiB block of a v2 piece fails verification, and
// FindBadBlocks, given the true block hashes, names exactly that block.
TEST_F(PieceVerifierTest, V2CorruptBlockIsFound) {
  Write("f.bin", 4 * 65536, 7);
  Metainfo m = Make("f.bin", TorrentVersion::kV2, 65536);
  const std::string s = Stream(m);
  PieceVerifier v(m);
  const std::string good = Piece(m, s, 2);
  auto hashes = v.BlockHashes(2, good);
  ASSERT_TRUE(hashes.ok());
  ASSERT_EQ(hashes->size(), 4u);
  std::string bad = good;
  bad[2 * kBlockSize + 5] ^= 0x40;
  EXPECT_TRUE(absl::IsDataLoss(v.Verify(2, bad)));
  auto blame = v.FindBadBlocks(2, bad, *hashes);
  ASSERT_TRUE(blame.ok()) << blame.status();
  EXPECT_THAT(*blame, ElementsAre(2u));
  auto none = v.FindBadBlocks(2, good, *hashes);
  ASSERT_TRUE(none.ok());
  EXPECT_THAT(*none, IsEmpty());
  // Block hashes that do not prove against the piece layer blame the sender.
  auto lies = v.BlockHashes(2, bad);
  ASSERT_TRUE(lies.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(v.FindBadBlocks(2, bad, *lies).status()));
}

// Without piece layers (a magnet's info dict) v2 pieces are UNAVAILABLE until
// a layer that hashes to the pieces root is added; a wrong layer is refused.
TEST_F(PieceVerifierTest, V2MissingLayer) {
  Write("f.bin", 3 * 16384 + 1, 9);
  Metainfo full = Make("f.bin", TorrentVersion::kV2, 16384);
  auto bare = ParseInfoDict(full.info_bytes);
  ASSERT_TRUE(bare.ok());
  const std::string s = Stream(full);
  PieceVerifier v(*bare);
  EXPECT_FALSE(v.HasPieceLayer(0));
  EXPECT_TRUE(absl::IsUnavailable(v.Verify(1, Piece(full, s, 1))));
  std::string wrong = full.piece_layers[0];
  wrong[0] ^= 1;
  EXPECT_TRUE(absl::IsInvalidArgument(v.AddPieceLayer(0, wrong)));
  EXPECT_TRUE(absl::IsInvalidArgument(v.AddPieceLayer(0, "short")));
  ASSERT_TRUE(v.AddPieceLayer(0, full.piece_layers[0]).ok());
  EXPECT_TRUE(v.HasPieceLayer(0));
  for (uint32_t i = 0; i < full.num_pieces; ++i) {
    EXPECT_TRUE(v.Verify(i, Piece(full, s, i)).ok()) << i;
  }
}

// A hybrid torrent checks both hashes; a non-zero pad byte fails even though
// only the v1 hash covers it.
TEST_F(PieceVerifierTest, HybridBothHashes) {
  Write("t/a", 20000, 1);
  Write("t/b", 50000, 2);
  Metainfo m = Make("t", TorrentVersion::kHybrid, 16384);
  const std::string s = Stream(m);
  PieceVerifier v(m);
  for (uint32_t i = 0; i < m.num_pieces; ++i) {
    EXPECT_TRUE(v.VerifyV1(i, Piece(m, s, i)).ok()) << i;
    EXPECT_TRUE(v.VerifyV2(i, Piece(m, s, i)).ok()) << i;
    EXPECT_TRUE(v.Verify(i, Piece(m, s, i)).ok()) << i;
  }
  std::string padded = Piece(m, s, 1);  // a's last 3616 bytes, then pad
  padded.back() = 1;
  EXPECT_TRUE(absl::IsDataLoss(v.VerifyV2(1, padded)));
  EXPECT_TRUE(absl::IsDataLoss(v.Verify(1, padded)));
}

}  // namespace
}  // namespace shoal::chunk
