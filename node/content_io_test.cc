#include "node/content_io.h"

#include <fstream>
#include <random>

#include "gtest/gtest.h"

namespace shoal::node {
namespace {

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

class ContentIoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("shoal_content_io_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    store::StoreOptions o;
    o.dir = dir_ / "db";
    store_ = *store::ChunkStore::Open(o);
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  // Adds `data` in writes of `write_size` bytes.
  absl::StatusOr<store::ContentState> AddStream(const std::string& data,
                                                size_t write_size,
                                                bool known_length = true) {
    auto adder = ContentAdder::Start(
        *store_, pool_,
        known_length ? std::optional<uint64_t>(data.size()) : std::nullopt,
        "name", dir_ / "tmp");
    if (!adder.ok()) return adder.status();
    for (size_t off = 0; off < data.size(); off += write_size) {
      auto s = (*adder)->Write(std::string_view(data).substr(off, write_size));
      if (!s.ok()) return s;
    }
    return (*adder)->Finish();
  }

  absl::StatusOr<std::string> Read(const chunk::ContentId& id, uint64_t offset,
                                   std::optional<uint64_t> length) {
    std::string out;
    uint64_t expect = offset;
    absl::Status s = ReadContent(*store_, pool_, id, offset, length,
                                 [&](std::string&& data, uint64_t at) {
                                   EXPECT_EQ(at, expect);
                                   expect += data.size();
                                   out += data;
                                   return true;
                                 });
    if (!s.ok()) return s;
    return out;
  }

  std::filesystem::path dir_;
  ThreadPool pool_{2};
  std::unique_ptr<store::ChunkStore> store_;
};

// Streamed adds of any write size give the same ID as the reference
// computation, and every range reads back exactly.
TEST_F(ContentIoTest, StreamAddAndRangedReads) {
  std::string data = RandomBytes(5 * 65536 + 123, 1);
  auto a = AddStream(data, 1000);
  auto b = AddStream(data, 65536);
  auto c = AddStream(data, 7, /*known_length=*/false);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok())
      << a.status() << b.status() << c.status();
  EXPECT_EQ(a->record.id, b->record.id);
  EXPECT_EQ(a->record.id, c->record.id);
  const auto& id = a->record.id;
  EXPECT_EQ(*Read(id, 0, std::nullopt), data);
  EXPECT_EQ(*Read(id, 65535, 2), data.substr(65535, 2));
  EXPECT_EQ(*Read(id, 100, 200000), data.substr(100, 200000));
  EXPECT_EQ(*Read(id, data.size(), std::nullopt), "");
  EXPECT_EQ(*Read(id, data.size() - 1, 1), data.substr(data.size() - 1));
  EXPECT_EQ(Read(id, data.size() + 1, std::nullopt).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Read(id, 10, data.size()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Read(chunk::ContentId{}, 0, std::nullopt).status().code(),
            absl::StatusCode::kNotFound);
}

// A stream that does not match its announced length fails and leaves nothing
// behind.
TEST_F(ContentIoTest, LengthMismatch) {
  std::string data = RandomBytes(100000, 2);
  auto adder = ContentAdder::Start(*store_, pool_, 99999, "", dir_ / "tmp");
  ASSERT_TRUE(adder.ok());
  EXPECT_EQ((*adder)->Write(data).code(), absl::StatusCode::kInvalidArgument);
  auto short_add =
      ContentAdder::Start(*store_, pool_, 100001, "", dir_ / "tmp");
  ASSERT_TRUE((*short_add)->Write(data).ok());
  EXPECT_EQ((*short_add)->Finish().status().code(),
            absl::StatusCode::kInvalidArgument);
  adder->reset();
  short_add->reset();
  EXPECT_EQ(store_->Stats().num_chunks, 0u);
  EXPECT_EQ(store_->Stats().reserved_bytes, 0u);
}

// Adding a file gives the same ID as streaming its bytes; bad paths get
// specific errors.
TEST_F(ContentIoTest, AddFile) {
  std::string data = RandomBytes(300000, 3);
  auto path = dir_ / "file.bin";
  std::ofstream(path, std::ios::binary) << data;
  auto f = AddFile(*store_, pool_, path, "");
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->record.name, "file.bin");
  EXPECT_EQ(f->record.id, AddStream(data, 4096)->record.id);
  EXPECT_EQ(AddFile(*store_, pool_, dir_ / "missing", "").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(AddFile(*store_, pool_, dir_, "").status().code(),
            absl::StatusCode::kInvalidArgument);
}

// Empty content adds and reads as zero bytes.
TEST_F(ContentIoTest, Empty) {
  auto a = AddStream("", 10);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(*Read(a->record.id, 0, std::nullopt), "");
}

}  // namespace
}  // namespace shoal::node
