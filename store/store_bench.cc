// Throughput of the chunk store's hot paths: writing pieces of an add, and
// verified reads.
#include <filesystem>
#include <random>

#include "benchmark/benchmark.h"
#include "store/chunk_store.h"

namespace shoal::store {
namespace {

constexpr uint32_t kPiece = 1 << 20;

struct Fixture {
  Fixture() {
    dir = std::filesystem::temp_directory_path() /
          ("shoal_store_bench_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    StoreOptions o;
    o.dir = dir;
    store = *ChunkStore::Open(o);
    data.resize(kPiece);
    std::mt19937_64 rng(1);
    for (size_t i = 0; i < data.size(); i += 8) {
      uint64_t v = rng();
      std::memcpy(&data[i], &v, 8);
    }
  }
  ~Fixture() {
    store.reset();
    std::filesystem::remove_all(dir);
  }
  std::filesystem::path dir;
  std::unique_ptr<ChunkStore> store;
  std::vector<uint8_t> data;
};

// Stores `range(0)` distinct 1 MiB pieces per iteration (hashes precomputed:
// this measures the store alone).
void BM_PutPieces(benchmark::State& state) {
  Fixture f;
  const int n = static_cast<int>(state.range(0));
  uint64_t counter = 0;
  for (auto _ : state) {
    auto up = f.store->BeginUpload(uint64_t{kPiece} * n);
    for (int i = 0; i < n; ++i) {
      ++counter;
      std::memcpy(f.data.data(), &counter, sizeof(counter));  // distinct chunks
      codec::Sha256Digest h{};
      std::memcpy(h.data(), &counter, sizeof(counter));
      auto s = f.store->PutUploadPiece(*up, i, h, 6, f.data);
      if (!s.ok()) state.SkipWithError("put failed");
    }
    f.store->AbortUpload(*up);
  }
  state.SetBytesProcessed(state.iterations() * int64_t{kPiece} * n);
}
BENCHMARK(BM_PutPieces)->Arg(256)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace shoal::store
