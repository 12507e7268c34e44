#include "store/resume_data.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <deque>
#include <filesystem>
#include <fstream>
#include <random>

#include "chunk/piece_verifier.h"
#include "chunk/torrent_creator.h"
#include "gtest/gtest.h"

namespace shoal::store {
namespace {

namespace fs = std::filesystem;

class ResumeDataTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::path(::testing::TempDir()) /
            ("resume_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }

  fs::path root_;
};

ResumeData Sample() {
  ResumeData r;
  r.have = chunk::Bitfield(11);
  r.have.set(0);
  r.have.set(7);
  r.have.set(10);
  r.file_priorities = {4, 0, 7};
  r.file_states = {
      {true, 123, 1'700'000'000'123'456'789}, {false, 0, 0}, {true, 0, -5}};
  r.uploaded = uint64_t{1} << 40;
  r.downloaded = 999;
  r.save_path = "/downloads/x y";
  r.added_time = 1'700'000'000;
  r.paused = true;
  r.sequential = true;
  r.info_bytes = std::string("d4:name1:xe\0\xff", 13);
  r.seeding_seconds = 86'401;
  r.share_ratio_limit = 1.25;  // kept in thousandths: exact
  r.seed_time_limit = 0;       // set, and no limit: not the same as unset
  r.seed_limit_reached = true;
  r.super_seed = true;
  return r;
}

// Every field survives encoding and decoding.
TEST_F(ResumeDataTest, RoundTrip) {
  const ResumeData r = Sample();
  auto back = DecodeResumeData(EncodeResumeData(r));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, r);
  ResumeData empty;
  auto back_empty = DecodeResumeData(EncodeResumeData(empty));
  ASSERT_TRUE(back_empty.ok()) << back_empty.status();
  EXPECT_EQ(*back_empty, empty);
}

// Corrupt or hostile bytes are refused with INVALID_ARGUMENT, never a crash.
TEST_F(ResumeDataTest, DecodeRefusesBadInput) {
  const std::string good = EncodeResumeData(Sample());
  for (size_t cut : {size_t{0}, size_t{1}, good.size() / 2, good.size() - 1}) {
    EXPECT_TRUE(
        absl::IsInvalidArgument(DecodeResumeData(good.substr(0, cut)).status()))
        << cut;
  }
  EXPECT_TRUE(absl::IsInvalidArgument(DecodeResumeData("le").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(DecodeResumeData("d1:vi2ee").status()));
  // A bitfield of the wrong size for its piece count.
  ResumeData r = Sample();
  std::string bytes = EncodeResumeData(r);
  bytes.replace(bytes.find("6:piecesi11e"), 12, "6:piecesi99e");
  EXPECT_TRUE(absl::IsInvalidArgument(DecodeResumeData(bytes).status()));
  // Too deep.
  EXPECT_TRUE(
      absl::IsInvalidArgument(DecodeResumeData("d5:filesllli1eeeee").status()));
  ResumeDataLimits tiny;
  tiny.max_size = 10;
  EXPECT_TRUE(absl::IsInvalidArgument(DecodeResumeData(good, tiny).status()));
}

// Save, Load and Delete go through the chunk store's state column family
// under "resume/<id>"; a deleted entry loads as NOT_FOUND.
TEST_F(ResumeDataTest, SaveLoadDelete) {
  StoreOptions o;
  o.dir = root_ / "db";
  auto store = ChunkStore::Open(o);
  ASSERT_TRUE(store.ok()) << store.status();
  chunk::InfoHashes h;
  h.v1 = chunk::InfoHashV1::Of("some info dict");
  EXPECT_EQ(ResumeDataKey(h), "resume/" + h.v1->Hex());
  EXPECT_TRUE(absl::IsNotFound(LoadResumeData(**store, h).status()));
  ASSERT_TRUE(SaveResumeData(**store, h, Sample()).ok());
  auto loaded = LoadResumeData(**store, h);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(*loaded, Sample());
  ASSERT_TRUE(DeleteResumeData(**store, h).ok());
  EXPECT_TRUE(absl::IsNotFound(LoadResumeData(**store, h).status()));
}

// With every file unchanged all saved pieces are trusted; after one file is
// touched only the pieces entirely inside other files are; a resume record
// that does not fit the torrent trusts nothing.
TEST_F(ResumeDataTest, ValidateAfterTouchingOneFile) {
  const fs::path src = root_ / "src";
  std::mt19937 rng(1);
  auto write = [&](const std::string& rel, size_t size) {
    fs::create_directories((src / rel).parent_path());
    std::string data(size, '\0');
    for (char& c : data) c = static_cast<char>(rng());
    std::ofstream(src / rel, std::ios::binary) << data;
  };
  write("t/a", 40000);  // pieces 0, 1, 2 (2 shared with b)
  write("t/b", 20000);  // pieces 2, 3
  write("t/c", 10000);  // pieces 3, 4
  chunk::TorrentCreatorOptions o;
  o.source = src / "t";
  o.version = chunk::TorrentVersion::kV1;
  o.piece_length = 16384;
  o.num_threads = 1;
  auto bytes = chunk::CreateTorrent(o);
  ASSERT_TRUE(bytes.ok());
  auto m = chunk::ParseMetainfo(*bytes);
  ASSERT_TRUE(m.ok());
  ASSERT_EQ(m->num_pieces, 5u);
  auto storage = FileStorage::Create(*m, src);
  ASSERT_TRUE(storage.ok());

  ResumeData r;
  r.have = chunk::Bitfield(m->num_pieces, true);
  r.file_priorities.assign(m->files.size(), kPriorityDefault);
  r.file_states = (*storage)->FileStates();
  auto back = DecodeResumeData(EncodeResumeData(r));
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(ValidateResumeData(*back, *m, (*storage)->FileStates()).all());

  // Touch b: a new mtime, same size.
  struct timespec times[2] = {{0, UTIME_OMIT}, {12345, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, (src / "t/b").c_str(), times, 0), 0);
  chunk::Bitfield trusted =
      ValidateResumeData(*back, *m, (*storage)->FileStates());
  EXPECT_TRUE(trusted.test(0));
  EXPECT_TRUE(trusted.test(1));
  EXPECT_FALSE(trusted.test(2));
  EXPECT_FALSE(trusted.test(3));
  EXPECT_TRUE(trusted.test(4));

  // Pieces not saved as had are never trusted.
  back->have.set(1, false);
  EXPECT_FALSE(ValidateResumeData(*back, *m, r.file_states).test(1));

  ResumeData wrong = r;
  wrong.file_states.pop_back();
  EXPECT_TRUE(ValidateResumeData(wrong, *m, r.file_states).none());
  wrong = r;
  wrong.have = chunk::Bitfield(4, true);
  EXPECT_TRUE(ValidateResumeData(wrong, *m, r.file_states).none());
}

}  // namespace
}  // namespace shoal::store
