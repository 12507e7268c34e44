#include "chunk/directory.h"

#include <string>
#include <vector>

#include "chunk/merkle.h"
#include "chunk/metainfo.h"
#include "gtest/gtest.h"

namespace shoal::chunk {

using codec::Sha256;
using codec::Sha256Digest;
namespace {

Sha256Digest Root(uint8_t fill) {
  Sha256Digest d;
  d.fill(fill);
  return d;
}

std::vector<DirectoryFile> Site() {
  return {
      {"index.html", 1000, Root(1)}, {"css/site.css", 200, Root(2)},
      {"a.txt", 5, Root(3)},         {"a/b/c.js", 70'000, Root(4)},
      {"empty", 0, Sha256Digest{}},  {"caf\xc3\xa9 menu.html", 10, Root(5)},
  };
}

TEST(DirectoryTest, SameTreeSameIdInAnyOrder) {
  auto a = Directory::Build(Site());
  ASSERT_TRUE(a.ok()) << a.status();
  auto files = Site();
  std::reverse(files.begin(), files.end());
  auto b = Directory::Build(files);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ((*a)->id(), (*b)->id());
  EXPECT_EQ((*a)->info_dict(), (*b)->info_dict());
  EXPECT_EQ((*a)->id().bytes, Sha256::Hash((*a)->info_dict()));
  EXPECT_EQ((*a)->total_length(), 1000u + 200 + 5 + 70'000 + 10);
  EXPECT_EQ((*a)->piece_length(), 64u * 1024);
}

TEST(DirectoryTest, IsAStandardV2Torrent) {
  auto dir = Directory::Build(Site());
  ASSERT_TRUE(dir.ok());
  auto m = ParseInfoDict((*dir)->info_dict());
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_TRUE(m->multi_file);
  EXPECT_EQ(m->name, (*dir)->name());
  std::vector<FileEntry> real;  // Metainfo lists pad files between them
  for (const FileEntry& f : m->files)
    if (!f.pad_file) real.push_back(f);
  ASSERT_EQ(real.size(), (*dir)->files().size());
  for (size_t i = 0; i < real.size(); ++i) {
    // Metainfo paths start with the torrent's name.
    EXPECT_EQ(real[i].path, (*dir)->name() + "/" + (*dir)->files()[i].path);
    EXPECT_EQ(real[i].length, (*dir)->files()[i].length);
  }
  // Files start at piece boundaries: a.txt, a/b/c.js (2 pieces), caf..., ...
  EXPECT_EQ((*dir)->num_pieces(), m->num_pieces);
}

TEST(DirectoryTest, FilesInBencodeOrder) {
  auto dir = Directory::Build(Site());
  ASSERT_TRUE(dir.ok());
  std::vector<std::string> paths;
  for (const auto& f : (*dir)->files()) paths.push_back(f.path);
  // Folder "a" sorts before "a.txt" as a key, though "a.txt" < "a/b/c.js"
  // as a path.
  EXPECT_EQ(paths, (std::vector<std::string>{
                       "a/b/c.js", "a.txt", "caf\xc3\xa9 menu.html",
                       "css/site.css", "empty", "index.html"}));
  EXPECT_EQ((*dir)->FileOfPiece(0), 0u);
  EXPECT_EQ((*dir)->FileOfPiece(1), 0u);
  EXPECT_EQ((*dir)->FileOfPiece(2), 1u);
  // The empty file has no piece: piece 5 is index.html's.
  EXPECT_EQ((*dir)->FileOfPiece(5), 5u);
}

TEST(DirectoryTest, ParseRoundTripsAndRefusesOtherDicts) {
  auto dir = Directory::Build(Site());
  ASSERT_TRUE(dir.ok());
  auto parsed = Directory::Parse((*dir)->info_dict());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ((*parsed)->id(), (*dir)->id());
  EXPECT_EQ((*parsed)->files().size(), (*dir)->files().size());

  // An extra key, a wrong name, a wrong piece length.
  std::string d = (*dir)->info_dict();
  std::string extra = d;
  extra.insert(extra.size() - 1, "7:privatei1e");
  EXPECT_EQ(Directory::Parse(extra).status().code(),
            absl::StatusCode::kInvalidArgument);
  std::string renamed = d;
  renamed[renamed.find("4:name64:") + 9] ^= 1;
  EXPECT_EQ(Directory::Parse(renamed).status().code(),
            absl::StatusCode::kInvalidArgument);
  std::string bigger = d;
  bigger.replace(bigger.find("i65536e"), 7, "i131072e");
  EXPECT_EQ(Directory::Parse(bigger).status().code(),
            absl::StatusCode::kInvalidArgument);
  // A single-file content's dict is not a directory.
  const Sha256Digest r = Root(9);
  EXPECT_FALSE(
      Directory::Parse(CanonicalInfoDict(ContentLayout::ForLength(100), r))
          .ok());
  EXPECT_FALSE(Directory::Parse("garbage").ok());
}

TEST(DirectoryTest, RefusesBadTrees) {
  auto code = [](std::vector<DirectoryFile> files) {
    return Directory::Build(std::move(files)).status().code();
  };
  const auto kBad = absl::StatusCode::kInvalidArgument;
  EXPECT_EQ(code({}), kBad);
  for (const char* p : {"", "/a", "a/", "a//b", "../a", "a/./b", "a\\b",
                        "bad\xff utf8", "\xc0\xaf", "a/.."}) {
    EXPECT_EQ(code({{p, 1, Root(1)}}), kBad) << p;
  }
  EXPECT_EQ(code({{"a", 1, Root(1)}, {"a", 2, Root(2)}}), kBad);
  EXPECT_EQ(code({{"a", 1, Root(1)}, {"a/b", 2, Root(2)}}), kBad);
  EXPECT_EQ(code({{"a/b", 2, Root(2)}, {"a", 1, Root(1)}}), kBad);
}

TEST(DirectoryTest, FindAndList) {
  auto dir = Directory::Build(Site());
  ASSERT_TRUE(dir.ok());
  const Directory& d = **dir;
  EXPECT_GE(d.Find("css/site.css"), 0);
  EXPECT_EQ(d.files()[d.Find("css/site.css")].length, 200u);
  EXPECT_EQ(d.Find("css"), -1);
  EXPECT_EQ(d.Find("nope"), -1);
  EXPECT_TRUE(d.IsFolder(""));
  EXPECT_TRUE(d.IsFolder("a"));
  EXPECT_TRUE(d.IsFolder("a/b"));
  EXPECT_FALSE(d.IsFolder("a.txt"));
  EXPECT_FALSE(d.IsFolder("a/b/c.js"));
  auto root = d.List("");
  std::vector<std::string> names;
  for (const auto& e : root) names.push_back(e.name + (e.is_folder ? "/" : ""));
  EXPECT_EQ(names,
            (std::vector<std::string>{"a/", "a.txt", "caf\xc3\xa9 menu.html",
                                      "css/", "empty", "index.html"}));
  EXPECT_EQ(d.List("a").size(), 1u);
  EXPECT_TRUE(d.List("a.txt").empty());
}

TEST(DirectoryTest, FileIdIsItsSingleFileContentId) {
  DirectoryFile f{"x", 12345, Root(7)};
  EXPECT_EQ(f.id(), ComputeContentId(ContentLayout::ForLength(12345), Root(7)));
}

// A directory piece's hash follows from the file's own piece layer: check it
// against hashing the data at the directory's piece length.
TEST(DirectoryTest, PieceLayerFromTheFilesLayer) {
  const uint64_t length = 5 * 64 * 1024 + 1000;  // 6 own pieces of 64 KiB
  std::vector<uint8_t> data(length);
  for (size_t i = 0; i < data.size(); ++i)
    data[i] = static_cast<uint8_t>(i * 31 + (i >> 12));
  const ContentLayout own = ContentLayout::ForLength(length);
  std::vector<Sha256Digest> own_layer;
  for (uint32_t p = 0; p < own.num_pieces(); ++p) {
    own_layer.push_back(HashPiece(std::span<const uint8_t>(data).subspan(
                                      own.piece_offset(p), own.piece_size(p)),
                                  own.piece_tree_levels(p)));
  }
  DirectoryFile f{"big", length, PiecesRoot(own, own_layer)};
  for (uint32_t big : {64u * 1024, 128u * 1024, 256u * 1024}) {
    std::vector<Sha256Digest> want;
    const int levels = std::countr_zero(big / kBlockSize);
    for (uint64_t off = 0; off < length; off += big) {
      want.push_back(HashPiece(std::span<const uint8_t>(data).subspan(
                                   off, std::min<uint64_t>(big, length - off)),
                               levels));
    }
    EXPECT_EQ(DirectoryPieceLayer(f, own_layer, big), want) << big;
  }
  // One directory piece: the pieces root.
  EXPECT_EQ(DirectoryPieceLayer(f, own_layer, 512 * 1024),
            std::vector<Sha256Digest>{f.pieces_root});
}

}  // namespace
}  // namespace shoal::chunk
