#include "store/chunk_store.h"

#include <filesystem>
#include <fstream>
#include <random>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "store/internal/rocksdb_chunk_store.h"

namespace shoal::store {
namespace {

using chunk::ContentId;
using chunk::ContentLayout;
using codec::Sha256Digest;
using ::testing::SizeIs;

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

std::span<const uint8_t> Bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

class ChunkStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("shoal_store_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    Reopen();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  void Reopen(uint64_t capacity = 0) {
    store_.reset();
    StoreOptions o;
    o.dir = dir_;
    o.capacity_bytes = capacity;
    o.clock = [this] { return now_; };
    auto s = ChunkStore::Open(o);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = *std::move(s);
  }

  // Stores every piece of `data` under an upload; returns the upload and the
  // record to commit.
  std::pair<UploadId, ContentRecord> Upload(std::string_view data) {
    ContentLayout layout = ContentLayout::ForLength(data.size());
    auto up = store_->BeginUpload(data.size());
    EXPECT_TRUE(up.ok()) << up.status();
    ContentRecord r;
    r.length = data.size();
    r.piece_length = layout.piece_length;
    for (uint32_t i = 0; i < layout.num_pieces(); ++i) {
      auto piece =
          Bytes(data).subspan(layout.piece_offset(i), layout.piece_size(i));
      Sha256Digest h = chunk::HashPiece(piece, layout.piece_tree_levels(i));
      r.piece_layer.push_back(h);
      EXPECT_TRUE(
          store_->PutUploadPiece(*up, i, h, layout.piece_tree_levels(i), piece)
              .ok());
    }
    r.pieces_root = chunk::PiecesRoot(layout, r.piece_layer);
    r.id = chunk::ComputeContentId(layout, r.pieces_root);
    return {*up, r};
  }

  absl::StatusOr<ContentId> Add(std::string_view data) {
    auto [up, record] = Upload(data);
    auto st = store_->CommitUpload(up, record);
    if (!st.ok()) return st.status();
    return st->record.id;
  }

  std::string ReadAll(const ContentId& id) {
    auto st = store_->Stat(id);
    EXPECT_TRUE(st.ok());
    std::string out;
    for (uint32_t i = 0; i < st->record.layout().num_pieces(); ++i) {
      auto p = store_->ReadPiece(id, i);
      EXPECT_TRUE(p.ok()) << p.status();
      if (p.ok()) out += *p;
    }
    return out;
  }

  std::filesystem::path dir_;
  absl::Time now_ = absl::FromUnixSeconds(1'700'000'000);
  std::unique_ptr<ChunkStore> store_;
};

// Content added piece by piece reads back identical, piece by piece, and
// survives a reopen.
TEST_F(ChunkStoreTest, AddReadReopen) {
  std::string data = RandomBytes(300'000, 1);
  auto id = Add(data);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(ReadAll(*id), data);
  Reopen();
  auto st = store_->Stat(*id);
  ASSERT_TRUE(st.ok());
  EXPECT_TRUE(st->complete());
  EXPECT_EQ(st->pieces_local, 5u);
  EXPECT_EQ(ReadAll(*id), data);
  EXPECT_EQ(store_->Stats().used_bytes, 300'000u);
}

// Identical pieces are stored once and stay until the last content using them
// is removed.
TEST_F(ChunkStoreTest, DeduplicatesChunks) {
  std::string common = RandomBytes(4 * 65536, 2);
  std::string a = common + RandomBytes(65536, 3);
  std::string b = common + RandomBytes(65536, 4);
  auto ida = Add(a);
  auto idb = Add(b);
  ASSERT_TRUE(ida.ok() && idb.ok());
  EXPECT_EQ(store_->Stats().num_chunks, 6u);
  EXPECT_EQ(store_->Stats().used_bytes, 6u * 65536);
  ASSERT_TRUE(store_->Remove(*ida).ok());
  EXPECT_EQ(store_->Stats().num_chunks, 5u);
  EXPECT_EQ(ReadAll(*idb), b);
  Reopen();
  EXPECT_EQ(store_->Stats().num_chunks, 5u);
  EXPECT_EQ(ReadAll(*idb), b);
  EXPECT_EQ(store_->Remove(*ida).code(), absl::StatusCode::kNotFound);
}

// Adding the same bytes twice gives one content and no extra chunks.
TEST_F(ChunkStoreTest, AddTwiceIsIdempotent) {
  std::string data = RandomBytes(200'000, 5);
  auto a = Add(data);
  auto b = Add(data);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
  EXPECT_THAT(store_->List(), SizeIs(1));
  EXPECT_EQ(store_->Stats().used_bytes, 200'000u);
  ASSERT_TRUE(store_->Remove(*a).ok());
  EXPECT_EQ(store_->Stats().num_chunks, 0u);
}

// An add interrupted before commit (as by a crash) is rolled back at the next
// open.
TEST_F(ChunkStoreTest, InterruptedAddRolledBackOnOpen) {
  std::string data = RandomBytes(500'000, 6);
  Upload(data);  // never committed
  EXPECT_GT(store_->Stats().used_bytes, 0u);
  Reopen();
  EXPECT_EQ(store_->Stats().used_bytes, 0u);
  EXPECT_EQ(store_->Stats().num_chunks, 0u);
  EXPECT_TRUE(Add(data).ok());
  EXPECT_EQ(store_->Stats().used_bytes, 500'000u);
}

// An aborted add releases its chunks but not those another content shares.
TEST_F(ChunkStoreTest, AbortReleasesOnlyItsChunks) {
  std::string a = RandomBytes(2 * 65536, 7);
  auto id = Add(a);
  ASSERT_TRUE(id.ok());
  auto [up, record] = Upload(a + RandomBytes(65536, 8));
  store_->AbortUpload(up);
  EXPECT_EQ(store_->Stats().num_chunks, 2u);
  EXPECT_EQ(store_->Stats().reserved_bytes, 0u);
  EXPECT_EQ(ReadAll(*id), a);
}

// Commit refuses an upload that lacks pieces.
TEST_F(ChunkStoreTest, CommitNeedsEveryPiece) {
  std::string data = RandomBytes(3 * 65536, 9);
  auto [up, record] = Upload(data);
  record.piece_layer.push_back(record.piece_layer[0]);
  record.length += 65536;
  EXPECT_EQ(store_->CommitUpload(up, record).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

// A corrupt chunk is never served: the read fails with DATA_LOSS, the piece is
// dropped, the loss is counted, and adding the bytes again repairs the content.
TEST_F(ChunkStoreTest, CorruptChunkIsDroppedNotServed) {
  std::string data = RandomBytes(3 * 65536, 10);
  auto id = Add(data);
  ASSERT_TRUE(id.ok());
  auto st = store_->Stat(*id);
  std::string bad = RandomBytes(65536, 11) + std::string(1, '\x02');
  ASSERT_TRUE(
      store_->CorruptChunkForTesting(st->record.piece_layer[1], bad).ok());
  EXPECT_EQ(store_->ReadPiece(*id, 1).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(store_->ReadPiece(*id, 1).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(store_->Stat(*id)->pieces_local, 2u);
  EXPECT_FALSE(store_->Stat(*id)->complete());
  EXPECT_EQ(store_->Stats().data_loss_events, 1u);
  EXPECT_EQ(store_->Stats().used_bytes, 2u * 65536);
  Reopen();
  EXPECT_EQ(store_->Stat(*id)->pieces_local, 2u);
  ASSERT_TRUE(Add(data).ok());
  EXPECT_TRUE(store_->Stat(*id)->complete());
  EXPECT_EQ(ReadAll(*id), data);
}

// A chunk shared by two contents that is lost is detected from either content.
TEST_F(ChunkStoreTest, LostSharedChunk) {
  std::string common = RandomBytes(65536, 12);
  std::string a = common + RandomBytes(65536, 13);
  std::string b = common + RandomBytes(65536, 14);
  auto ida = Add(a);
  auto idb = Add(b);
  auto st = store_->Stat(*ida);
  ASSERT_TRUE(
      store_->CorruptChunkForTesting(st->record.piece_layer[0], "x").ok());
  EXPECT_EQ(store_->ReadPiece(*ida, 0).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(store_->ReadPiece(*idb, 0).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(store_->Stats().data_loss_events, 2u);
  ASSERT_TRUE(store_->Remove(*ida).ok());
  ASSERT_TRUE(store_->Remove(*idb).ok());
  EXPECT_EQ(store_->Stats().num_chunks, 0u);
  EXPECT_EQ(store_->Stats().used_bytes, 0u);
}

// When full, unpinned content goes least recently used first; pinned content
// stays; an add that cannot fit even then fails with RESOURCE_EXHAUSTED and
// evicts nothing.
TEST_F(ChunkStoreTest, EvictsLeastRecentlyUsedUnpinned) {
  Reopen(/*capacity=*/4 * 65536);
  auto a = Add(RandomBytes(65536, 20));
  now_ += absl::Seconds(1);
  auto b = Add(RandomBytes(65536, 21));
  now_ += absl::Seconds(1);
  auto c = Add(RandomBytes(65536, 22));
  now_ += absl::Seconds(1);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  ASSERT_TRUE(store_->Touch(*a).ok());  // a is now the most recent
  now_ += absl::Seconds(1);
  ASSERT_TRUE(store_->SetPinned(*b, true).ok());
  auto d =
      Add(RandomBytes(2 * 65536, 23));  // needs one eviction: c (b is pinned)
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_TRUE(store_->Stat(*a).ok());
  EXPECT_TRUE(store_->Stat(*b).ok());
  EXPECT_EQ(store_->Stat(*c).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->Stats().evictions, 1u);

  // Too big even with everything unpinned gone: nothing is evicted.
  auto huge = store_->BeginUpload(4 * 65536);
  EXPECT_EQ(huge.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(store_->Stat(*a).ok());
  EXPECT_TRUE(store_->Stat(*d).ok());

  // Pin everything: any further add fails.
  ASSERT_TRUE(store_->SetPinned(*a, true).ok());
  ASSERT_TRUE(store_->SetPinned(*d, true).ok());
  EXPECT_EQ(store_->BeginUpload(1).status().code(),
            absl::StatusCode::kResourceExhausted);
  Reopen(4 * 65536);
  EXPECT_TRUE(store_->Stat(*b)->pinned);
}

// Reads of unknown content and bad indexes get specific errors.
TEST_F(ChunkStoreTest, ReadErrors) {
  ContentId unknown;
  EXPECT_EQ(store_->ReadPiece(unknown, 0).status().code(),
            absl::StatusCode::kNotFound);
  auto id = Add(RandomBytes(10, 30));
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(store_->ReadPiece(*id, 1).status().code(),
            absl::StatusCode::kOutOfRange);
}

// Empty content has no pieces and can be added, listed and removed.
TEST_F(ChunkStoreTest, EmptyContent) {
  auto id = Add("");
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_TRUE(store_->Stat(*id)->complete());
  Reopen();
  EXPECT_TRUE(store_->Stat(*id)->complete());
  EXPECT_TRUE(store_->Remove(*id).ok());
}

// A second store on the same directory is refused while the first is open.
TEST_F(ChunkStoreTest, SecondOpenRefused) {
  StoreOptions o;
  o.dir = dir_;
  EXPECT_EQ(ChunkStore::Open(o).status().code(),
            absl::StatusCode::kUnavailable);
}

// Content fetched from peers: the record comes first, pieces one by one, in any
// order; the store knows which it has across a reopen, and finds the content by
// its 20-byte info-hash.
TEST_F(ChunkStoreTest, FetchedContent) {
  std::string data = RandomBytes(3 * 65536 + 5, 40);
  auto [up, record] = Upload(data);
  store_->AbortUpload(up);
  ASSERT_EQ(store_->Stats().num_chunks, 0u);
  auto created = store_->CreateContent(record);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(created->pieces_local, 0u);
  ContentLayout layout = record.layout();
  auto piece = [&](uint32_t i) {
    return Bytes(data).subspan(layout.piece_offset(i), layout.piece_size(i));
  };
  ASSERT_TRUE(store_->PutContentPiece(record.id, 2, piece(2)).ok());
  ASSERT_TRUE(store_->PutContentPiece(record.id, 0, piece(0)).ok());
  EXPECT_EQ(store_->PutContentPiece(record.id, 9, piece(0)).code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_EQ(store_->PutContentPiece(record.id, 1, piece(3)).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->ReadPiece(record.id, 1).status().code(),
            absl::StatusCode::kUnavailable);
  Reopen();
  EXPECT_EQ(store_->Stat(record.id)->pieces_local, 2u);
  ASSERT_TRUE(store_->PutContentPiece(record.id, 1, piece(1)).ok());
  // Readable at once; counted as stored once a flush made it durable.
  EXPECT_EQ(
      store_->ReadPiece(record.id, 1).value_or(""),
      std::string(data.substr(layout.piece_offset(1), layout.piece_size(1))));
  EXPECT_EQ(store_->Stat(record.id)->pieces_local, 2u);
  ASSERT_TRUE(store_->Sync().ok());
  EXPECT_EQ(store_->Stat(record.id)->pieces_local, 3u);
  ASSERT_TRUE(store_->Sync().ok());  // nothing left: a no-op
  // The last piece makes the whole content durable before it returns.
  ASSERT_TRUE(store_->PutContentPiece(record.id, 3, piece(3)).ok());
  EXPECT_TRUE(store_->Stat(record.id)->complete());
  EXPECT_EQ(ReadAll(record.id), data);
  auto found =
      store_->FindByTruncatedId(record.id.AsStringView().substr(0, 20));
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(*found, record.id);
  EXPECT_EQ(store_->FindByTruncatedId(std::string(20, 'x')).status().code(),
            absl::StatusCode::kNotFound);
}

// Fetched pieces become durable as memtables flush, without an explicit Sync,
// and an add of the same content makes a not-yet-durable piece durable.
TEST_F(ChunkStoreTest, FetchedPiecesBecomeDurable) {
  std::string data = RandomBytes(10 << 20, 41);
  auto [up, record] = Upload(data);
  store_->AbortUpload(up);
  ASSERT_TRUE(store_->CreateContent(record).ok());
  ContentLayout layout = record.layout();
  const uint32_t n = layout.num_pieces();
  ASSERT_GT(n, 3u);
  for (uint32_t i = 0; i + 1 < n; ++i) {
    ASSERT_TRUE(
        store_
            ->PutContentPiece(record.id, i,
                              Bytes(data).subspan(layout.piece_offset(i),
                                                  layout.piece_size(i)))
            .ok());
  }
  // Memtables fill and flush in the background; the pieces they held are
  // then counted.
  uint32_t durable = 0;
  for (int i = 0; i < 500 && durable == 0; ++i) {
    durable = store_->Stat(record.id)->pieces_local;
    if (durable == 0) absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_GT(durable, 0u);
  EXPECT_LT(durable, n - 1);
  // An add of the whole content: every piece is stored and durable.
  ASSERT_TRUE(Add(data).ok());
  EXPECT_TRUE(store_->Stat(record.id)->complete());
  EXPECT_EQ(store_->Stats().used_bytes, data.size());
  Reopen();
  EXPECT_TRUE(store_->Stat(record.id)->complete());
  EXPECT_EQ(ReadAll(record.id), data);
}

// While a large add (WAL-less) runs, `chunks` has larger memtables (fewer,
// larger flushes); once the last one is committed or aborted, small again.
TEST_F(ChunkStoreTest, LargeAddsUseLargerMemtablesWhileTheyRun) {
  auto* rocks = dynamic_cast<internal::RocksDbChunkStore*>(store_.get());
  ASSERT_NE(rocks, nullptr);
  EXPECT_EQ(rocks->ChunkMemtableBytesForTesting(),
            internal::kBlobMemtableBytes);
  const std::string data = RandomBytes(20 << 20, 7);
  auto [up, record] = Upload(data);
  auto other = store_->BeginUpload(internal::kWalLessAddBytes);
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(rocks->ChunkMemtableBytesForTesting(),
            internal::kLargeAddMemtableBytes);
  ASSERT_TRUE(store_->CommitUpload(up, record).ok());
  EXPECT_EQ(rocks->ChunkMemtableBytesForTesting(),
            internal::kLargeAddMemtableBytes);  // the other still runs
  store_->AbortUpload(*other);
  EXPECT_EQ(rocks->ChunkMemtableBytesForTesting(),
            internal::kBlobMemtableBytes);
  auto small = store_->BeginUpload(internal::kWalLessAddBytes - 1);
  ASSERT_TRUE(small.ok());
  EXPECT_EQ(rocks->ChunkMemtableBytesForTesting(),
            internal::kBlobMemtableBytes);
  store_->AbortUpload(*small);
  auto read = store_->ReadPiece(record.id, 0);
  EXPECT_TRUE(read.ok()) << read.status();
}

// Bytes damaged in a blob file after the chunk was verified are caught by
// RocksDB's CRC32C: the read fails with DATA_LOSS, the piece is dropped.
TEST_F(ChunkStoreTest, DamagedBlobFileCaughtByCrc) {
  std::string data = RandomBytes(4 * 65536, 42);
  auto id = Add(data);
  ASSERT_TRUE(id.ok());
  Reopen();                       // the chunks are now in a blob file
  EXPECT_EQ(ReadAll(*id), data);  // checks every hash once
  std::filesystem::path blob;
  for (const auto& entry : std::filesystem::directory_iterator(dir_))
    if (entry.path().extension() == ".blob") blob = entry.path();
  ASSERT_FALSE(blob.empty());
  {
    // Flip one byte in the middle of the file (inside some chunk's bytes).
    std::fstream f(blob, std::ios::in | std::ios::out | std::ios::binary);
    const auto mid =
        static_cast<std::streamoff>(std::filesystem::file_size(blob) / 2);
    f.seekg(mid);
    char c = 0;
    f.read(&c, 1);
    c = static_cast<char>(c ^ 0x55);
    f.seekp(mid);
    f.write(&c, 1);
  }
  int lost = 0;
  for (uint32_t i = 0; i < 4; ++i) {
    auto piece = store_->ReadPiece(*id, i);
    if (!piece.ok()) {
      EXPECT_EQ(piece.status().code(), absl::StatusCode::kDataLoss);
      ++lost;
    }
  }
  EXPECT_EQ(lost, 1);
  EXPECT_EQ(store_->Stat(*id)->pieces_local, 3u);
}

// Torrent pieces kept in the store: listed without reading their bytes,
// kept across a reopen, removed per torrent.
TEST_F(ChunkStoreTest, TorrentPieces) {
  const std::string a(20, 'a');
  const std::string b(32, 'b');
  std::string p0 = RandomBytes(65536, 50), p7 = RandomBytes(1000, 51);
  EXPECT_TRUE(store_->TorrentPieces(a)->empty());
  ASSERT_TRUE(store_->PutTorrentPiece(a, 7, p7).ok());
  ASSERT_TRUE(store_->PutTorrentPiece(a, 0, p0).ok());
  ASSERT_TRUE(store_->PutTorrentPiece(b, 1, p0).ok());
  EXPECT_THAT(*store_->TorrentPieces(a), testing::ElementsAre(0u, 7u));
  Reopen();  // not rolled back as stray piece-index entries
  EXPECT_THAT(*store_->TorrentPieces(a), testing::ElementsAre(0u, 7u));
  EXPECT_EQ(*store_->ReadTorrentPiece(a, 7), p7);
  EXPECT_EQ(*store_->ReadTorrentPiece(a, 0), p0);
  EXPECT_EQ(store_->ReadTorrentPiece(a, 1).status().code(),
            absl::StatusCode::kUnavailable);
  ASSERT_TRUE(store_->RemoveTorrentPieces(a).ok());
  EXPECT_TRUE(store_->TorrentPieces(a)->empty());
  EXPECT_EQ(store_->ReadTorrentPiece(a, 0).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_THAT(*store_->TorrentPieces(b), testing::ElementsAre(1u));
  EXPECT_EQ(*store_->ReadTorrentPiece(b, 1), p0);
}

// Node state round-trips.
TEST_F(ChunkStoreTest, State) {
  EXPECT_EQ(store_->GetState("k").status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(store_->PutState("k", "v").ok());
  Reopen();
  EXPECT_EQ(*store_->GetState("k"), "v");
}

}  // namespace
}  // namespace shoal::store

namespace shoal::store {
namespace {

class DirectoryStoreTest : public ChunkStoreTest {
 protected:
  // Adds `data` as a file of a directory add; returns its directory entry.
  chunk::DirectoryFile AddMember(const std::string& path,
                                 std::string_view data) {
    auto [up, record] = Upload(data);
    record.in_directory_only = true;
    auto st = store_->CommitUpload(up, record);
    EXPECT_TRUE(st.ok()) << st.status();
    return {path, data.size(), record.pieces_root};
  }
  std::shared_ptr<const chunk::Directory> Dir(
      std::vector<chunk::DirectoryFile> files) {
    auto d = chunk::Directory::Build(std::move(files));
    EXPECT_TRUE(d.ok()) << d.status();
    return *d;
  }
};

// A directory holds its files: removing it takes the files nothing else
// holds, keeps those another directory or an add of their own holds, and it
// all survives a reopen.
TEST_F(DirectoryStoreTest, RemoveTakesOnlyWhatNothingElseHolds) {
  const std::string shared_bytes = RandomBytes(70'000, 1);
  auto a = AddMember("a.html", RandomBytes(1000, 2));
  auto s = AddMember("s.js", shared_bytes);
  auto own = Add(RandomBytes(3000, 3));  // added on its own first
  ASSERT_TRUE(own.ok());
  auto own_again = AddMember("own.css", RandomBytes(3000, 3));
  auto d1 = Dir({a, s, own_again});
  auto st = store_->PutDirectory(d1, "site");
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_TRUE(st->record.is_directory());
  EXPECT_EQ(st->files_local, 3u);
  EXPECT_TRUE(st->complete());
  EXPECT_EQ(st->record.length, 1000u + 70'000 + 3000);

  auto s2 = AddMember("lib/s.js", shared_bytes);
  auto d2 = Dir({s2});
  ASSERT_TRUE(store_->PutDirectory(d2, "other").ok());

  // A file a directory holds cannot be removed alone.
  EXPECT_EQ(store_->Remove(a.id()).code(),
            absl::StatusCode::kFailedPrecondition);

  Reopen();  // records, flags and holds survive
  auto again = store_->Stat(d1->id());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->record.directory->id(), d1->id());
  EXPECT_EQ(again->files_local, 3u);

  // Handshakes find it by its truncated ID, before and after a reopen.
  EXPECT_EQ(*store_->FindByTruncatedId(d1->id().AsStringView().substr(0, 20)),
            d1->id());
  ASSERT_TRUE(store_->Remove(d1->id()).ok());
  EXPECT_EQ(store_->Stat(d1->id()).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->FindByTruncatedId(d1->id().AsStringView().substr(0, 20))
                .status()
                .code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->FindByTruncatedId(a.id().AsStringView().substr(0, 20))
                .status()
                .code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->Stat(a.id()).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(store_->Stat(s.id()).ok());  // d2 holds it
  EXPECT_TRUE(store_->Stat(*own).ok());    // added on its own
  ASSERT_TRUE(store_->Remove(d2->id()).ok());
  EXPECT_EQ(store_->Stat(s.id()).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(store_->Stat(*own).ok());
  EXPECT_EQ(store_->Stats().num_contents, 1u);
}

// Files a crash left without their directory are removed at open, and by
// RemoveOrphans; a file of a missing directory is stored for it once fetched.
TEST_F(DirectoryStoreTest, Orphans) {
  auto a = AddMember("a", RandomBytes(1000, 4));
  auto b = AddMember("b", RandomBytes(1000, 5));
  store_->RemoveOrphans({a.id()});
  EXPECT_EQ(store_->Stat(a.id()).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(store_->Stat(b.id()).ok());
  Reopen();
  EXPECT_EQ(store_->Stat(b.id()).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->Stats().num_chunks, 0u);

  // A directory whose files are not here yet.
  auto dir = Dir({a, b});
  auto st = store_->PutDirectory(dir, "");
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->files_local, 0u);
  EXPECT_FALSE(st->complete());
}

// Eviction treats a directory as one item: its files go with it, a pinned
// directory keeps them.
TEST_F(DirectoryStoreTest, EvictionAndPins) {
  Reopen(/*capacity=*/4 * 65536);
  auto a = AddMember("a", RandomBytes(65536, 6));
  auto b = AddMember("b", RandomBytes(65536, 7));
  auto d = Dir({a, b});
  ASSERT_TRUE(store_->PutDirectory(d, "").ok());
  now_ += absl::Seconds(10);
  auto c = Add(RandomBytes(65536, 8));
  ASSERT_TRUE(c.ok());
  now_ += absl::Seconds(10);
  ASSERT_TRUE(store_->SetPinned(d->id(), true).ok());
  // Needs two pieces: only c may go (the directory is pinned).
  EXPECT_EQ(store_->BeginUpload(3 * 65536).status().code(),
            absl::StatusCode::kResourceExhausted);
  ASSERT_TRUE(store_->SetPinned(d->id(), false).ok());
  auto up = store_->BeginUpload(3 * 65536);
  ASSERT_TRUE(up.ok()) << up.status();
  store_->AbortUpload(*up);
  // The least recently used item, the directory, went whole.
  EXPECT_EQ(store_->Stat(d->id()).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->Stat(a.id()).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->Stat(b.id()).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(store_->Stat(*c).ok());
}

// Brief(): what the gateway asks of every request, with the access recorded
// as Touch() records it.
TEST_F(DirectoryStoreTest, Brief) {
  EXPECT_FALSE(store_->Brief(ContentId(), /*touch=*/true).has_value());

  const std::string bytes = RandomBytes(70'000, 40);
  auto id = Add(bytes);
  ASSERT_TRUE(id.ok()) << id.status();
  auto st = store_->Stat(*id);
  ASSERT_TRUE(st.ok());
  auto brief = store_->Brief(*id, /*touch=*/false);
  ASSERT_TRUE(brief.has_value());
  EXPECT_TRUE(brief->complete);
  EXPECT_FALSE(brief->is_directory());
  EXPECT_EQ(brief->length, bytes.size());
  EXPECT_EQ(brief->piece_length, st->record.piece_length);

  const absl::Time added = st->record.last_access;
  now_ += absl::Minutes(5);
  ASSERT_TRUE(store_->Brief(*id, /*touch=*/false).has_value());
  EXPECT_EQ(store_->Stat(*id)->record.last_access, added);
  ASSERT_TRUE(store_->Brief(*id, /*touch=*/true).has_value());
  EXPECT_EQ(store_->Stat(*id)->record.last_access, now_);
  Reopen();  // the access was stored (more than a minute after the add)
  EXPECT_EQ(store_->Stat(*id)->record.last_access, now_);

  // A directory: its dict, never "complete" (its files are served one by
  // one), even when every file is here.
  auto dir = Dir({AddMember("a.txt", RandomBytes(10, 41))});
  ASSERT_TRUE(store_->PutDirectory(dir, "site").ok());
  auto db = store_->Brief(dir->id(), /*touch=*/true);
  ASSERT_TRUE(db.has_value());
  EXPECT_TRUE(db->is_directory());
  EXPECT_FALSE(db->complete);
  EXPECT_EQ(db->directory->id(), dir->id());
  EXPECT_EQ(db->length, 10u);
}

}  // namespace
}  // namespace shoal::store
