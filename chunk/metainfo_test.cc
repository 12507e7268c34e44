#include "chunk/metainfo.h"

#include <string>

#include "chunk/merkle.h"
#include "codec/bencode.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace shoal::chunk {

using codec::Sha256;
using codec::Sha256Digest;
namespace bencode = codec::bencode;
namespace {

using bencode::Dict;
using bencode::List;
using bencode::Value;
using ::testing::HasSubstr;

std::string Bytes(const Sha256Digest& d) {
  return std::string(reinterpret_cast<const char*>(d.data()), d.size());
}

Dict V1File(int64_t length, List path) {
  Dict f;
  f["length"] = length;
  f["path"] = std::move(path);
  return f;
}

std::string Torrent(Dict info, Dict top = {}) {
  top["info"] = std::move(info);
  return bencode::Encode(Value(std::move(top)));
}

Dict V1MultiInfo(List files, int64_t piece_length = 16384) {
  Dict info;
  info["name"] = "root";
  info["piece length"] = piece_length;
  int64_t total = 0;
  for (const Value& f : files) {
    auto it = f.as_dict().find("length");
    if (it != f.as_dict().end()) total += it->second.as_int();
  }
  info["pieces"] =
      std::string(20 * ((total + piece_length - 1) / piece_length), 'h');
  info["files"] = std::move(files);
  return info;
}

absl::Status ParseError(const std::string& torrent) {
  auto m = ParseMetainfo(torrent);
  return m.ok() ? absl::OkStatus() : m.status();
}

// A single-file v1 torrent: info-hash over the info dict's bytes, trackers,
// seeds, nodes, private flag and the other top-level fields.
TEST(MetainfoTest, V1SingleFileWithAnnounceData) {
  Dict info;
  info["name"] = "file.bin";
  info["piece length"] = int64_t{16384};
  info["length"] = int64_t{20000};
  info["pieces"] = std::string(40, 'x');
  info["private"] = int64_t{1};
  const std::string info_bytes = bencode::Encode(Value(info));
  Dict top;
  top["announce"] = "http://ignored/announce";
  top["announce-list"] = List{List{" http://a/1 ", "http://a/2"}, List{},
                              List{"udp://b:80", "http://a/1"}};
  top["url-list"] = List{"http://w/1", "http://w/1", ""};
  top["httpseeds"] = List{"http://h/"};
  top["nodes"] = List{List{"router.example", int64_t{6881}}, List{"bad"}};
  top["creation date"] = int64_t{1700000000};
  top["comment"] = "c";
  top["created by"] = "me";
  auto m = ParseMetainfo(Torrent(info, top));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->version(), TorrentVersion::kV1);
  EXPECT_EQ(m->info_hashes.v1, InfoHashV1::Of(info_bytes));
  EXPECT_FALSE(m->info_hashes.v2);
  EXPECT_EQ(m->info_bytes, info_bytes);
  EXPECT_EQ(m->name, "file.bin");
  EXPECT_FALSE(m->multi_file);
  ASSERT_EQ(m->files.size(), 1u);
  EXPECT_EQ(m->files[0].path, "file.bin");
  EXPECT_EQ(m->total_size, 20000u);
  EXPECT_EQ(m->num_pieces, 2u);
  EXPECT_EQ(m->v1_piece_hashes(), std::string(40, 'x'));
  EXPECT_TRUE(m->is_private);
  EXPECT_THAT(m->trackers, testing::ElementsAre(TrackerEntry{"http://a/1", 0},
                                                TrackerEntry{"http://a/2", 0},
                                                TrackerEntry{"udp://b:80", 1}));
  EXPECT_THAT(m->url_seeds, testing::ElementsAre("http://w/1"));
  EXPECT_THAT(m->http_seeds, testing::ElementsAre("http://h/"));
  EXPECT_THAT(m->nodes,
              testing::ElementsAre(DhtNodeEntry{"router.example", 6881}));
  EXPECT_EQ(m->creation_date, 1700000000);
  EXPECT_EQ(m->comment, "c");
  EXPECT_EQ(m->created_by, "me");
}

// Multi-file v1: paths under the name, BEP 47 pad files and attributes,
// symlinks, offsets; hostile path elements sanitized; duplicates renamed.
TEST(MetainfoTest, V1MultiFilePathsPadsSymlinks) {
  Dict pad = V1File(16384 - 100, List{".pad", "16284"});
  pad["attr"] = "p";
  Dict exec = V1File(5, List{"bin", "run"});
  exec["attr"] = "xh";
  Dict link;
  link["attr"] = "l";
  link["path"] = List{"link"};
  link["symlink path"] = List{"bin", "run"};
  List files{V1File(100, List{"..", "..", "etc", "passwd"}),
             pad,
             exec,
             link,
             V1File(1, List{"/abs", "x"}),
             V1File(1, List{"dup"}),
             V1File(1, List{"dup"}),
             V1File(1, List{"bin"})};
  auto m = ParseMetainfo(Torrent(V1MultiInfo(files)));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_TRUE(m->multi_file);
  ASSERT_EQ(m->files.size(), 8u);
  EXPECT_EQ(m->files[0].path, "root/_/_/etc/passwd");
  EXPECT_TRUE(m->files[1].pad_file);
  EXPECT_EQ(m->files[2].offset, 16384u);
  EXPECT_TRUE(m->files[2].executable);
  EXPECT_TRUE(m->files[2].hidden);
  EXPECT_TRUE(m->files[3].symlink);
  EXPECT_EQ(m->files[3].length, 0u);
  EXPECT_EQ(m->files[3].symlink_target, "bin/run");
  EXPECT_EQ(m->files[4].path, "root/abs/x");
  EXPECT_EQ(m->files[5].path, "root/dup");
  EXPECT_EQ(m->files[6].path, "root/dup.1");
  EXPECT_EQ(m->files[7].path, "root/bin.1");  // "root/bin" is a directory
  EXPECT_EQ(m->num_real_files(), 7u);
  EXPECT_EQ(m->total_size, 16384u + 5 + 4);
  EXPECT_FALSE(m->warnings.empty());
}

// A v2 torrent: synthesized pad files, pieces roots, piece layers verified
// against the root; a layer that does not verify is dropped with a warning.
TEST(MetainfoTest, V2FileTreeAndPieceLayers) {
  const uint32_t pl = 16384;
  std::vector<Sha256Digest> layer = {Sha256::Hash("a"), Sha256::Hash("b"),
                                     Sha256::Hash("c")};
  Sha256Digest big_root = PiecesRootFromLayer(layer, pl);
  Sha256Digest small_root = Sha256::Hash("small");
  Dict big_leaf;
  big_leaf["length"] = int64_t{3 * pl - 10};
  big_leaf["pieces root"] = Bytes(big_root);
  Dict small_leaf;
  small_leaf["length"] = int64_t{10};
  small_leaf["pieces root"] = Bytes(small_root);
  Dict empty_leaf;
  empty_leaf["length"] = int64_t{0};
  Dict tree;
  tree["a"] = Dict{{"", big_leaf}};
  tree["d"] =
      Dict{{"e", Dict{{"", empty_leaf}}}, {"s", Dict{{"", small_leaf}}}};
  Dict info;
  info["name"] = "t";
  info["piece length"] = int64_t{pl};
  info["meta version"] = int64_t{2};
  info["file tree"] = tree;
  std::string layer_bytes;
  for (const auto& h : layer) layer_bytes += Bytes(h);
  Dict top;
  top["piece layers"] = Dict{{Bytes(big_root), layer_bytes}};
  auto m = ParseMetainfo(Torrent(info, top));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->version(), TorrentVersion::kV2);
  EXPECT_FALSE(m->info_hashes.v1);
  EXPECT_EQ(m->info_hashes.v2, InfoHashV2::Of(bencode::Encode(Value(info))));
  // a, pad, d/e, d/s, tail pad
  ASSERT_EQ(m->files.size(), 5u);
  EXPECT_EQ(m->files[0].path, "t/a");
  EXPECT_TRUE(m->files[1].pad_file);
  EXPECT_EQ(m->files[1].length, 10u);
  EXPECT_EQ(m->files[2].path, "t/d/e");
  EXPECT_EQ(m->files[3].path, "t/d/s");
  EXPECT_EQ(m->files[3].offset, 3u * pl);
  EXPECT_TRUE(m->files[4].pad_file);
  EXPECT_EQ(m->total_size, 4u * pl);
  EXPECT_EQ(m->num_pieces, 4u);
  EXPECT_EQ(m->piece_layers[0], layer_bytes);
  EXPECT_TRUE(m->warnings.empty());

  // Wrong layer content: dropped, not trusted.
  std::string bad = layer_bytes;
  bad[0] ^= 1;
  top["piece layers"] = Dict{{Bytes(big_root), bad}};
  auto m2 = ParseMetainfo(Torrent(info, top));
  ASSERT_TRUE(m2.ok());
  EXPECT_TRUE(m2->piece_layers[0].empty());
  ASSERT_EQ(m2->warnings.size(), 1u);
  EXPECT_THAT(m2->warnings[0], HasSubstr("does not hash"));

  // Wrong layer size: rejected.
  top["piece layers"] = Dict{{Bytes(big_root), layer_bytes + layer_bytes}};
  EXPECT_THAT(std::string(ParseError(Torrent(info, top)).message()),
              HasSubstr("a piece layer is invalid"));
}

// A v2 info dict must be canonical bencoding; a v1 one need not be.
TEST(MetainfoTest, V2RequiresCanonicalInfo) {
  const std::string root(32, 'r');
  const std::string v2info =
      "d9:file treed1:ad0:d6:lengthi01e11:pieces root32:" + root +
      "eee12:meta versioni2e4:name1:a12:piece lengthi16384ee";
  absl::Status s = ParseError("d4:info" + v2info + "e");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("canonically bencoded"));
  const std::string v1info =
      "d6:lengthi01e4:name1:a12:piece lengthi16384e6:pieces20:" +
      std::string(20, 'p') + "e";
  EXPECT_TRUE(ParseMetainfo("d4:info" + v1info + "e").ok());
}

// A v2 file tree of empty directories has no files (found in review: this
// used to read past the end of the file list; also a fuzz regression case).
TEST(MetainfoTest, V2TreeWithoutFiles) {
  absl::Status s = ParseError(
      "d4:infod9:file treed1:adee12:meta versioni2e4:name1:x12:piece "
      "lengthi16384eee");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("no files"));
}

// Hybrid: the v1 list and the v2 tree must agree.
TEST(MetainfoTest, HybridMustAgree) {
  const uint32_t pl = 16384;
  Dict leaf;
  leaf["length"] = int64_t{100};
  leaf["pieces root"] = Bytes(Sha256::Hash("x"));
  Dict info = V1MultiInfo(List{V1File(100, List{"f"})});
  info["meta version"] = int64_t{2};
  info["file tree"] = Dict{{"f", Dict{{"", leaf}}}};
  auto m = ParseMetainfo(Torrent(info));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->version(), TorrentVersion::kHybrid);
  EXPECT_EQ(m->info_hashes.v2->Truncated().Hex().size(), 40u);
  EXPECT_EQ(m->files.size(), 1u);  // tail pad dropped to match v1
  EXPECT_EQ(m->total_size, 100u);
  (void)pl;

  info["file tree"] = Dict{{"g", Dict{{"", leaf}}}};
  EXPECT_THAT(std::string(ParseError(Torrent(info)).message()),
              HasSubstr("the v1 and v2 file lists differ"));
}

// Each structural error gets its own message.
TEST(MetainfoTest, ClearErrors) {
  Dict ok = V1MultiInfo(List{V1File(10, List{"a"})});
  auto with = [&](const std::string& key, Value v) {
    Dict d = ok;
    d[key] = std::move(v);
    return Torrent(d);
  };
  auto without = [&](const std::string& key) {
    Dict d = ok;
    d.erase(key);
    return Torrent(d);
  };
  auto msg = [](const std::string& t) {
    return std::string(ParseError(t).message());
  };
  EXPECT_TRUE(ParseMetainfo(Torrent(ok)).ok());
  EXPECT_THAT(msg("i1e"), HasSubstr("must be a dictionary"));
  EXPECT_THAT(msg("d4:infoi1ee"), HasSubstr("'info'"));
  EXPECT_THAT(msg(without("name")), HasSubstr("missing name"));
  EXPECT_THAT(msg(with("name", "\x01\x02")), HasSubstr("empty once sanitized"));
  EXPECT_THAT(msg(without("piece length")), HasSubstr("'piece length'"));
  EXPECT_THAT(msg(with("piece length", int64_t{0})),
              HasSubstr("'piece length'"));
  EXPECT_THAT(msg(without("pieces")), HasSubstr("'pieces'"));
  EXPECT_THAT(msg(with("pieces", "short")),
              HasSubstr("'pieces' holds 5 bytes"));
  EXPECT_THAT(msg(with("files", List{})), HasSubstr("no files"));
  EXPECT_THAT(msg(with("files", List{V1File(-1, List{"a"})})),
              HasSubstr("invalid length"));
  EXPECT_THAT(msg(with("files", List{V1File(0, List{"a"})})),
              HasSubstr("total size is 0"));
  EXPECT_THAT(msg(with("files", List{V1File(1, List{int64_t{3}})})),
              HasSubstr("non-string path element"));
  EXPECT_THAT(msg(with("files", List{V1File(1, List{})})),
              HasSubstr("no path"));
  EXPECT_THAT(msg(with("meta version", int64_t{3})),
              HasSubstr("unsupported 'meta version' 3"));
  EXPECT_THAT(msg(with("file tree", Dict{})),
              HasSubstr("'file tree' without 'meta version' 2"));
}

// Limits on size, pieces, files and depth are enforced with their own errors.
TEST(MetainfoTest, Limits) {
  Dict info =
      V1MultiInfo(List{V1File(100000, List{"a"}), V1File(1, List{"b"})});
  const std::string t = Torrent(info);
  MetainfoLimits small;
  small.max_pieces = 3;
  EXPECT_THAT(std::string(ParseMetainfo(t, small).status().message()),
              HasSubstr("too many pieces: 7 (the limit is 3)"));
  small = {};
  small.max_files = 1;
  EXPECT_THAT(std::string(ParseMetainfo(t, small).status().message()),
              HasSubstr("more than 1 files"));
  small = {};
  small.max_size = 10;
  EXPECT_THAT(std::string(ParseMetainfo(t, small).status().message()),
              HasSubstr("larger than the limit of 10"));
  small = {};
  small.max_depth = 5;
  Dict deep = V1MultiInfo(List{V1File(1, List{"a", "b", "c", "d", "e", "f"})});
  EXPECT_THAT(
      std::string(ParseMetainfo(Torrent(deep), small).status().message()),
      HasSubstr("has a path of 6 elements (the limit is 5)"));
  small.max_depth = 2;
  EXPECT_THAT(std::string(ParseMetainfo(t, small).status().message()),
              HasSubstr("nesting deeper than 2"));
}

// ParseInfoDict reads a bare info dict (BEP 9 metadata) with the same hashes.
TEST(MetainfoTest, ParseInfoDict) {
  Dict info = V1MultiInfo(List{V1File(10, List{"a"})});
  const std::string bytes = bencode::Encode(Value(info));
  auto m = ParseInfoDict(bytes);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->info_hashes.v1, InfoHashV1::Of(bytes));
  EXPECT_FALSE(ParseInfoDict(bytes + "x").ok());
}

}  // namespace
}  // namespace shoal::chunk
