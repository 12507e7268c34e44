#include "chunk/torrent_creator.h"

#include <filesystem>
#include <fstream>
#include <random>

#include "chunk/merkle.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace shoal::chunk {

using codec::AsBytes;
using codec::Sha1;
using codec::Sha256Digest;
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class TorrentCreatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("creator_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Write(const fs::path& rel, size_t size, uint32_t seed) {
    fs::create_directories((dir_ / rel).parent_path());
    std::mt19937 rng(seed);
    std::string data(size, '\0');
    for (char& c : data) c = static_cast<char>(rng());
    std::ofstream(dir_ / rel, std::ios::binary) << data;
    return data;
  }

  fs::path dir_;
};

std::string Raw(const Sha256Digest& d) {
  return std::string(reinterpret_cast<const char*>(d.data()), d.size());
}

// A hybrid torrent of a directory: v1 hashes over the padded stream, v2 roots
// and layers over each file, and both views agree (ParseMetainfo checks).
TEST_F(TorrentCreatorTest, HybridDirectory) {
  const std::string a = Write("d/a.bin", 40000, 1);
  Write("d/empty", 0, 2);
  const std::string b = Write("d/sub/b.bin", 5000, 3);
  TorrentCreatorOptions o;
  o.source = dir_ / "d";
  o.piece_length = 16384;
  o.trackers = {"http://t1/", "http://t2/"};
  o.web_seeds = {"http://w/"};
  o.is_private = true;
  o.comment = "hello";
  o.creation_date = 1234;
  o.num_threads = 3;
  auto bytes = CreateTorrent(o);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  auto m = ParseMetainfo(*bytes);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->version(), TorrentVersion::kHybrid);
  EXPECT_EQ(m->name, "d");
  EXPECT_TRUE(m->is_private);
  EXPECT_EQ(m->comment, "hello");
  EXPECT_EQ(m->creation_date, 1234);
  ASSERT_EQ(m->trackers.size(), 2u);
  EXPECT_EQ(m->trackers[1].tier, 1);
  EXPECT_THAT(m->url_seeds, testing::ElementsAre("http://w/"));
  EXPECT_TRUE(m->warnings.empty());
  // a.bin, pad, empty, sub/b.bin (no tail pad in a hybrid v1 list)
  ASSERT_EQ(m->files.size(), 4u);
  EXPECT_EQ(m->files[0].path, "d/a.bin");
  EXPECT_TRUE(m->files[1].pad_file);
  EXPECT_EQ(m->files[2].path, "d/empty");
  EXPECT_EQ(m->files[3].path, "d/sub/b.bin");
  EXPECT_EQ(m->files[3].offset, 49152u);
  // v1: SHA-1 of each 16 KiB of a.bin + zeros + b.bin.
  std::string stream = a + std::string(49152 - 40000, '\0') + b;
  ASSERT_EQ(m->num_pieces, 4u);
  for (uint32_t p = 0; p < 4; ++p) {
    auto piece = std::string_view(stream).substr(p * 16384, 16384);
    auto h = Sha1::Hash(piece);
    EXPECT_EQ(m->v1_piece_hashes().substr(p * 20, 20),
              std::string_view(reinterpret_cast<const char*>(h.data()), 20));
  }
  // v2: a.bin has 3 pieces (a verified layer); b.bin is one piece.
  EXPECT_EQ(m->piece_layers[0].size(), 3u * 32);
  EXPECT_EQ(*m->files[3].pieces_root,
            BlockTreeRoot(AsBytes(b), NextPowerOfTwo(NumBlocks(b.size()))));
  EXPECT_FALSE(m->files[2].pieces_root.has_value());
}

// v1-only and v2-only torrents of one file; the same bytes always give the
// same torrent (no creation date), whatever the thread count.
TEST_F(TorrentCreatorTest, SingleFileVersionsAndDeterminism) {
  const std::string data = Write("one.bin", 100000, 4);
  TorrentCreatorOptions o;
  o.source = dir_ / "one.bin";
  o.version = TorrentVersion::kV1;
  auto v1 = CreateTorrent(o);
  ASSERT_TRUE(v1.ok()) << v1.status();
  auto m1 = ParseMetainfo(*v1);
  ASSERT_TRUE(m1.ok());
  EXPECT_EQ(m1->version(), TorrentVersion::kV1);
  EXPECT_FALSE(m1->multi_file);
  EXPECT_EQ(m1->files[0].path, "one.bin");
  EXPECT_EQ(m1->piece_length, 16384u);  // AutoPieceLength(100000)

  o.version = TorrentVersion::kV2;
  o.num_threads = 1;
  auto v2a = CreateTorrent(o);
  o.num_threads = 4;
  auto v2b = CreateTorrent(o);
  ASSERT_TRUE(v2a.ok() && v2b.ok());
  EXPECT_EQ(*v2a, *v2b);
  auto m2 = ParseMetainfo(*v2a);
  ASSERT_TRUE(m2.ok()) << m2.status();
  EXPECT_EQ(m2->version(), TorrentVersion::kV2);
  EXPECT_EQ(m2->files[0].path, "one.bin");
  EXPECT_TRUE(m2->files.back().pad_file);  // implied tail pad
  EXPECT_FALSE(m2->piece_layers[0].empty());
}

// The automatic piece size rule.
TEST(AutoPieceLengthTest, Rule) {
  EXPECT_EQ(AutoPieceLength(1), 16384u);
  EXPECT_EQ(AutoPieceLength(16u << 20), 16384u);
  EXPECT_EQ(AutoPieceLength(64u << 20), 65536u);
  EXPECT_EQ(AutoPieceLength(1ull << 30), 1u << 20);
  EXPECT_EQ(AutoPieceLength(1ull << 40), 16u << 20);
}

// Bad options and unusable sources are reported.
TEST_F(TorrentCreatorTest, Errors) {
  TorrentCreatorOptions o;
  o.source = dir_ / "missing";
  EXPECT_EQ(CreateTorrent(o).status().code(), absl::StatusCode::kNotFound);
  Write("empty/e", 0, 1);
  o.source = dir_ / "empty";
  EXPECT_THAT(std::string(CreateTorrent(o).status().message()),
              HasSubstr("holds no data"));
  Write("x", 10, 1);
  o.source = dir_ / "x";
  o.piece_length = 30000;
  EXPECT_THAT(std::string(CreateTorrent(o).status().message()),
              HasSubstr("power of two"));
}

}  // namespace
}  // namespace shoal::chunk
