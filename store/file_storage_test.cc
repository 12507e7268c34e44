#include "store/file_storage.h"

#include <dirent.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <sstream>

#include "chunk/torrent_creator.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace shoal::store {
namespace {

namespace fs = std::filesystem;
using chunk::Metainfo;
using chunk::TorrentVersion;
using ::testing::ElementsAre;

std::string RandomData(size_t size, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string data(size, '\0');
  for (char& c : data) c = static_cast<char>(rng());
  return data;
}

std::optional<std::string> ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

void WriteFile(const fs::path& p, std::string_view data) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary | std::ios::trunc) << data;
}

int CountOpenFds() {
  int n = 0;
  for (const auto& e : fs::directory_iterator("/proc/self/fd")) {
    (void)e;
    ++n;
  }
  return n;
}

struct SourceFile {
  std::string path;  // relative to the source root
  size_t size;
  bool executable = false;
};

struct Layout {
  std::string name;
  std::string source;  // what the torrent is created from, under src/
  TorrentVersion version;
  uint32_t piece_length;
  std::vector<SourceFile> files;
};

class FileStorageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string test_name =
        ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::replace(test_name.begin(), test_name.end(), '/', '_');
    root_ = fs::path(::testing::TempDir()) /
            ("file_storage_" + std::to_string(::getpid()) + "_" + test_name);
    fs::remove_all(root_);
    src_ = root_ / "src";
    save_ = root_ / "save";
    fs::create_directories(src_);
  }
  void TearDown() override {
    fs::permissions(root_, fs::perms::owner_all, fs::perm_options::add);
    if (fs::exists(save_)) {
      fs::permissions(save_, fs::perms::owner_all, fs::perm_options::add);
    }
    fs::remove_all(root_);
  }

  // Writes the layout's files under src/ and returns the parsed torrent (kept
  // alive by the fixture).
  const Metainfo& Make(const Layout& layout) {
    uint32_t seed = 1;
    for (const SourceFile& f : layout.files) {
      WriteFile(src_ / f.path, RandomData(f.size, seed++));
      if (f.executable) {
        fs::permissions(src_ / f.path, fs::perms::owner_exec,
                        fs::perm_options::add);
      }
    }
    chunk::TorrentCreatorOptions o;
    o.source = src_ / layout.source;
    o.version = layout.version;
    o.piece_length = layout.piece_length;
    o.num_threads = 1;
    auto bytes = chunk::CreateTorrent(o);
    EXPECT_TRUE(bytes.ok()) << bytes.status();
    auto m = chunk::ParseMetainfo(*bytes);
    EXPECT_TRUE(m.ok()) << m.status();
    metas_.push_back(*std::move(m));
    return metas_.back();
  }

  std::unique_ptr<FileStorage> Storage(const Metainfo& m, const fs::path& save,
                                       FileStorageOptions options = {}) {
    auto s = FileStorage::Create(m, save, options);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *std::move(s) : nullptr;
  }

  // The torrent's byte stream as found under `dir`.
  std::string Stream(const Metainfo& m, const fs::path& dir) {
    std::string s;
    for (const chunk::FileEntry& f : m.files) {
      if (f.pad_file) {
        s.append(f.length, '\0');
      } else {
        s += ReadFile(dir / f.path).value_or("");
      }
    }
    EXPECT_EQ(s.size(), m.total_size);
    return s;
  }

  static std::string Piece(const Metainfo& m, const std::string& stream,
                           uint32_t i) {
    return stream.substr(uint64_t{i} * m.piece_length, chunk::PieceSize(m, i));
  }

  // Writes every piece, in random order.
  void WriteAll(FileStorage& storage, const Metainfo& m,
                const std::string& stream, uint32_t seed) {
    std::vector<uint32_t> order(m.num_pieces);
    for (uint32_t i = 0; i < m.num_pieces; ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), std::mt19937(seed));
    for (uint32_t i : order) {
      ASSERT_TRUE(storage.WritePiece(i, Piece(m, stream, i)).ok()) << i;
    }
  }

  bool AnyPathContains(const fs::path& dir, std::string_view needle) {
    for (const auto& e : fs::recursive_directory_iterator(dir)) {
      if (e.path().string().find(needle) != std::string::npos) return true;
    }
    return false;
  }

  fs::path root_, src_, save_;
  std::deque<Metainfo> metas_;
};

// The spanning layout: piece 0 covers a, b and c (and d's start).
const Layout kSpan3 = {
    "span3",
    "t",
    TorrentVersion::kV1,
    16384,
    {{"t/a", 5000}, {"t/b", 3000}, {"t/c", 4000}, {"t/d", 40000}}};
const Layout kV2 = {"v2",
                    "t",
                    TorrentVersion::kV2,
                    65536,
                    {{"t/a", 100000}, {"t/b", 40000}, {"t/z/empty", 0}}};

class RoundTripTest : public FileStorageTest,
                      public ::testing::WithParamInterface<Layout> {};

// Writing every piece in random order into an empty save path recreates the
// files byte for byte (empty files and the executable bit included), pad
// files never reach the disk, and reads return the pieces written.
TEST_P(RoundTripTest, WritesFilesByteForByte) {
  const Layout& layout = GetParam();
  const Metainfo& m = Make(layout);
  const std::string stream = Stream(m, src_);
  auto storage = Storage(m, save_);
  ASSERT_NE(storage, nullptr);
  WriteAll(*storage, m, stream, 42);
  auto skipped = storage->Finalize();
  ASSERT_TRUE(skipped.ok()) << skipped.status();
  EXPECT_TRUE(skipped->empty());
  const bool wants_exec =
      std::any_of(layout.files.begin(), layout.files.end(),
                  [](const SourceFile& f) { return f.executable; });
  EXPECT_EQ(wants_exec, std::any_of(m.files.begin(), m.files.end(),
                                    [](const chunk::FileEntry& f) {
                                      return f.executable;
                                    }));
  for (const chunk::FileEntry& f : m.files) {
    if (f.pad_file) continue;
    auto got = ReadFile(save_ / f.path);
    ASSERT_TRUE(got.has_value()) << f.path;
    EXPECT_TRUE(*got == *ReadFile(src_ / f.path)) << f.path;
    EXPECT_EQ(f.executable, (fs::status(save_ / f.path).permissions() &
                             fs::perms::owner_exec) != fs::perms::none)
        << f.path;
  }
  EXPECT_FALSE(AnyPathContains(save_, ".pad"));
  EXPECT_FALSE(AnyPathContains(save_, ".parts"));
  for (uint32_t i = 0; i < m.num_pieces; ++i) {
    auto piece = storage->ReadPiece(i);
    ASSERT_TRUE(piece.ok()) << piece.status();
    EXPECT_TRUE(*piece == Piece(m, stream, i)) << i;
  }
  const uint32_t last = m.num_pieces - 1;
  const uint32_t len = std::min<uint32_t>(chunk::PieceSize(m, last), 5000);
  auto block = storage->ReadBlock(last, chunk::PieceSize(m, last) - len, len);
  ASSERT_TRUE(block.ok()) << block.status();
  EXPECT_EQ(*block,
            Piece(m, stream, last).substr(chunk::PieceSize(m, last) - len));
}

INSTANTIATE_TEST_SUITE_P(
    Layouts, RoundTripTest,
    ::testing::Values(
        Layout{
            "single", "f.bin", TorrentVersion::kV1, 16384, {{"f.bin", 100000}}},
        Layout{"nested",
               "t",
               TorrentVersion::kV1,
               16384,
               {{"t/a", 30000},
                {"t/d1/d2/b", 70000},
                {"t/d1/c", 0},
                {"t/e", 5, /*executable=*/true}}},
        Layout{"hybrid_pads",
               "t",
               TorrentVersion::kHybrid,
               16384,
               {{"t/a", 20000}, {"t/b", 0}, {"t/c/d", 50000}, {"t/e", 17}}},
        kV2,
        Layout{"smaller_than_piece",
               "s.bin",
               TorrentVersion::kHybrid,
               65536,
               {{"s.bin", 5000}}},
        kSpan3),
    [](const auto& info) { return info.param.name; });

// A file of priority 0 is not created: the bytes of it that wanted pieces
// span into go to the part file and read back from it; making the file wanted
// moves them into it and removes the part file.
TEST_F(FileStorageTest, PriorityZeroFileUsesPartFile) {
  const Metainfo& m = Make({"prio",
                            "t",
                            TorrentVersion::kV1,
                            16384,
                            {{"t/a", 5000}, {"t/b", 30000}, {"t/c", 5000}}});
  ASSERT_EQ(m.num_pieces, 3u);  // 0: a + b, 1: b, 2: b + c
  const std::string stream = Stream(m, src_);
  auto storage = Storage(m, save_);
  ASSERT_TRUE(storage->SetFilePriorities({4, 0, 4}).ok());
  ASSERT_TRUE(storage->WritePiece(0, Piece(m, stream, 0)).ok());
  ASSERT_TRUE(storage->WritePiece(2, Piece(m, stream, 2)).ok());
  ASSERT_TRUE(storage->Finalize().ok());
  EXPECT_EQ(ReadFile(save_ / "t/a"), ReadFile(src_ / "t/a"));
  EXPECT_EQ(ReadFile(save_ / "t/c"), ReadFile(src_ / "t/c"));
  EXPECT_FALSE(fs::exists(save_ / "t/b"));
  EXPECT_TRUE(fs::exists(save_ / ".t.parts"));
  EXPECT_EQ(storage->ReadPiece(0).value_or(""), Piece(m, stream, 0));
  EXPECT_EQ(storage->ReadPiece(2).value_or(""), Piece(m, stream, 2));
  EXPECT_TRUE(absl::IsUnavailable(storage->ReadPiece(1).status()));

  // A storage opened later reads the part file back.
  auto reopened = Storage(m, save_);
  ASSERT_TRUE(reopened->SetFilePriorities({4, 0, 4}).ok());
  EXPECT_EQ(reopened->ReadPiece(2).value_or(""), Piece(m, stream, 2));
  reopened.reset();

  ASSERT_TRUE(storage->SetFilePriorities({4, 4, 4}).ok());
  EXPECT_FALSE(fs::exists(save_ / ".t.parts"));
  const std::string b = *ReadFile(src_ / "t/b");
  auto moved = ReadFile(save_ / "t/b");
  ASSERT_TRUE(moved.has_value());
  ASSERT_EQ(moved->size(), b.size());
  EXPECT_EQ(moved->substr(0, 11384), b.substr(0, 11384));
  EXPECT_EQ(moved->substr(27768), b.substr(27768));
  EXPECT_EQ(moved->substr(11384, 16384), std::string(16384, '\0'));
  EXPECT_EQ(storage->ReadPiece(0).value_or(""), Piece(m, stream, 0));
  ASSERT_TRUE(storage->WritePiece(1, Piece(m, stream, 1)).ok());
  EXPECT_EQ(ReadFile(save_ / "t/b"), b);
}

// Check() on the original data finds every piece valid; after one byte is
// corrupted, exactly the piece holding it is invalid (v1 and v2).
TEST_F(FileStorageTest, CheckFindsTheCorruptPiece) {
  for (const Layout& layout : {kSpan3, kV2}) {
    SCOPED_TRACE(layout.name);
    fs::remove_all(src_);
    const Metainfo& m = Make(layout);
    auto storage = Storage(m, src_);
    chunk::PieceVerifier verifier(m);
    ThreadPool pool(2);
    auto have = storage->Check(pool, verifier);
    ASSERT_TRUE(have.ok()) << have.status();
    EXPECT_TRUE(have->all());

    // Byte 20000 of t/a: stream offset 20000 in both layouts.
    const fs::path victim = src_ / (layout.name == "v2" ? "t/a" : "t/d");
    const uint64_t at = 20000;
    const uint64_t stream_at =
        at + (layout.name == "v2" ? 0 : 5000 + 3000 + 4000);
    std::string data = *ReadFile(victim);
    data[at] ^= 0x01;
    WriteFile(victim, data);
    storage = Storage(m, src_);  // no descriptor cache from before
    have = storage->Check(pool, verifier);
    ASSERT_TRUE(have.ok()) << have.status();
    EXPECT_EQ(have->count(), m.num_pieces - 1);
    EXPECT_FALSE(have->test(static_cast<uint32_t>(stream_at / m.piece_length)));
  }
}

// Check() with a file missing reports the pieces touching it as absent and
// the rest valid, without an error.
TEST_F(FileStorageTest, CheckWithMissingFile) {
  const Metainfo& m = Make(kSpan3);
  fs::remove(src_ / "t/d");
  auto storage = Storage(m, src_);
  chunk::PieceVerifier verifier(m);
  ThreadPool pool(2);
  auto have = storage->Check(pool, verifier);
  ASSERT_TRUE(have.ok()) << have.status();
  EXPECT_TRUE(have->none());  // d is in every piece
  fs::remove_all(src_);
  const Metainfo& m2 = Make({"two",
                             "t",
                             TorrentVersion::kV1,
                             16384,
                             {{"t/a", 40000}, {"t/b", 20000}}});
  fs::remove(src_ / "t/b");
  storage = Storage(m2, src_);
  chunk::PieceVerifier verifier2(m2);
  have = storage->Check(pool, verifier2);
  ASSERT_TRUE(have.ok()) << have.status();
  // Pieces 0, 1 lie in a; 2 spans a and b; 3 lies in b.
  EXPECT_TRUE(have->test(0));
  EXPECT_TRUE(have->test(1));
  EXPECT_FALSE(have->test(2));
  EXPECT_FALSE(have->test(3));
}

Metainfo HandMade(std::vector<chunk::FileEntry> files, uint32_t piece_length) {
  Metainfo m;
  m.name = "t";
  m.multi_file = true;
  m.piece_length = piece_length;
  uint64_t offset = 0;
  for (chunk::FileEntry& f : files) {
    f.offset = offset;
    offset += f.length;
  }
  m.files = std::move(files);
  m.total_size = offset;
  m.num_pieces =
      static_cast<uint32_t>((offset + piece_length - 1) / piece_length);
  return m;
}

// Paths that would leave the save path are refused: "..", absolute paths and
// "." elements at Create(), symlinks planted in the save path at write time.
TEST_F(FileStorageTest, RefusesPathEscapes) {
  for (const char* bad : {"t/../../evil", "/etc/evil", "t/./x", "t//x"}) {
    chunk::FileEntry f;
    f.path = bad;
    f.length = 10;
    Metainfo m = HandMade({f}, 16384);
    EXPECT_TRUE(absl::IsInvalidArgument(FileStorage::Create(m, save_).status()))
        << bad;
  }

  const Metainfo& m = Make(kSpan3);
  const std::string stream = Stream(m, src_);
  const fs::path outside = root_ / "outside";
  fs::create_directories(outside);
  fs::create_directories(save_);
  // The torrent's directory is a symlink to elsewhere.
  fs::create_directory_symlink(outside, save_ / "t");
  auto storage = Storage(m, save_);
  EXPECT_TRUE(
      absl::IsPermissionDenied(storage->WritePiece(0, Piece(m, stream, 0))));
  EXPECT_TRUE(absl::IsPermissionDenied(storage->ReadPiece(0).status()));
  EXPECT_TRUE(fs::is_empty(outside));
  // A file of the torrent is a symlink to a file elsewhere.
  fs::remove(save_ / "t");
  fs::create_directories(save_ / "t");
  WriteFile(outside / "victim", "precious");
  fs::create_symlink(outside / "victim", save_ / "t/a");
  storage = Storage(m, save_);
  EXPECT_TRUE(
      absl::IsPermissionDenied(storage->WritePiece(0, Piece(m, stream, 0))));
  EXPECT_EQ(ReadFile(outside / "victim"), "precious");
}

// Finalize() creates BEP 47 symlinks as relative links when their target
// stays inside the save path, skips the others, and sets the executable bit.
TEST_F(FileStorageTest, FinalizeCreatesSafeSymlinks) {
  chunk::FileEntry a;
  a.path = "t/a";
  a.length = 100;
  a.executable = true;
  chunk::FileEntry link;
  link.path = "t/sub/link";
  link.symlink = true;
  link.symlink_target = "a";
  chunk::FileEntry up;
  up.path = "t/up";
  up.symlink = true;
  up.symlink_target = "../../../etc";
  Metainfo m = HandMade({a, link, up}, 16384);
  auto storage = Storage(m, save_);
  const std::string data = RandomData(100, 5);
  ASSERT_TRUE(storage->WritePiece(0, data).ok());
  for (int round = 0; round < 2; ++round) {  // idempotent
    auto skipped = storage->Finalize();
    ASSERT_TRUE(skipped.ok()) << skipped.status();
    EXPECT_THAT(*skipped, ElementsAre("t/up"));
  }
  EXPECT_EQ(fs::read_symlink(save_ / "t/sub/link"), "../a");
  EXPECT_EQ(ReadFile(save_ / "t/sub/link"), data);
  EXPECT_FALSE(fs::exists(fs::symlink_status(save_ / "t/up")));
  EXPECT_NE(fs::status(save_ / "t/a").permissions() & fs::perms::owner_exec,
            fs::perms::none);
}

// DeleteFiles() removes the torrent's files, part file and emptied
// directories, but not files the user put there.
TEST_F(FileStorageTest, DeleteFilesKeepsForeignFiles) {
  const Metainfo& m =
      Make({"nested",
            "t",
            TorrentVersion::kV1,
            16384,
            {{"t/a", 30000}, {"t/d1/d2/b", 70000}, {"t/d1/c", 0}}});
  const std::string stream = Stream(m, src_);
  auto storage = Storage(m, save_);
  WriteAll(*storage, m, stream, 1);
  ASSERT_TRUE(storage->Finalize().ok());
  WriteFile(save_ / "t/user.txt", "mine");
  ASSERT_TRUE(storage->DeleteFiles().ok());
  EXPECT_FALSE(fs::exists(save_ / "t/a"));
  EXPECT_FALSE(fs::exists(save_ / "t/d1"));
  EXPECT_EQ(ReadFile(save_ / "t/user.txt"), "mine");
  fs::remove(save_ / "t/user.txt");
  // Nothing of the torrent is left: not an error, and the emptied torrent
  // directory goes now.
  ASSERT_TRUE(storage->DeleteFiles().ok());
  EXPECT_FALSE(fs::exists(save_ / "t"));
  EXPECT_TRUE(fs::exists(save_));
}

// With a descriptor cache of 2, reads and writes over 5 files stay correct
// and at most 2 files are held open; FileStates() reports sizes and absence.
TEST_F(FileStorageTest, BoundedDescriptorsAndFileStates) {
  const Metainfo& m = Make({"five",
                            "t",
                            TorrentVersion::kV1,
                            16384,
                            {{"t/1", 9000},
                             {"t/2", 9000},
                             {"t/3", 9000},
                             {"t/4", 9000},
                             {"t/5", 9000}}});
  const std::string stream = Stream(m, src_);
  const int before = CountOpenFds();
  FileStorageOptions options;
  options.max_open_files = 2;
  auto storage = Storage(m, save_, options);
  WriteAll(*storage, m, stream, 3);
  EXPECT_LE(CountOpenFds(), before + 2);
  for (uint32_t i = 0; i < m.num_pieces; ++i) {
    EXPECT_EQ(storage->ReadPiece(i).value_or(""), Piece(m, stream, i));
  }
  EXPECT_LE(CountOpenFds(), before + 2);
  fs::remove(save_ / "t/3");
  std::vector<FileState> states = storage->FileStates();
  ASSERT_EQ(states.size(), 5u);
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(states[i].exists, i != 2) << i;
    if (i != 2) {
      EXPECT_EQ(states[i].size, 9000u);
      EXPECT_GT(states[i].mtime_ns, 0);
    }
  }
}

// Bad arguments and I/O failures map to specific codes: OUT_OF_RANGE,
// INVALID_ARGUMENT, UNAVAILABLE for data not stored, RESOURCE_EXHAUSTED when
// the file cannot grow (EFBIG), PERMISSION_DENIED for an unwritable save path.
TEST_F(FileStorageTest, ErrorCodes) {
  const Metainfo& m = Make(kSpan3);
  const std::string stream = Stream(m, src_);
  auto storage = Storage(m, save_);
  EXPECT_TRUE(absl::IsOutOfRange(storage->ReadPiece(m.num_pieces).status()));
  EXPECT_TRUE(absl::IsOutOfRange(storage->ReadBlock(0, 16000, 1000).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(storage->WritePiece(0, "short")));
  EXPECT_TRUE(absl::IsOutOfRange(storage->WritePiece(99, "x")));
  EXPECT_TRUE(absl::IsUnavailable(storage->ReadPiece(0).status()));

  // Files may not grow past 1 KiB: ftruncate fails with EFBIG.
  struct rlimit old;
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
  auto old_handler = ::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = old;
  small.rlim_cur = 1024;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  absl::Status full = storage->WritePiece(1, Piece(m, stream, 1));
  ::setrlimit(RLIMIT_FSIZE, &old);
  ::signal(SIGXFSZ, old_handler);
  EXPECT_TRUE(absl::IsResourceExhausted(full)) << full;

  if (::geteuid() != 0) {  // root ignores permissions
    fs::remove_all(save_);
    fs::create_directories(save_);
    fs::permissions(save_, fs::perms::owner_read | fs::perms::owner_exec);
    storage = Storage(m, save_);
    absl::Status denied = storage->WritePiece(0, Piece(m, stream, 0));
    EXPECT_TRUE(absl::IsPermissionDenied(denied)) << denied;
  }
}

}  // namespace
}  // namespace shoal::store
