// Hot paths of the content model: hashing a piece into its merkle root.
#include <vector>

#include "benchmark/benchmark.h"
#include "chunk/content_id.h"
#include "codec/sha.h"

namespace shoal::chunk {

using codec::Sha256;
namespace {

void BM_Sha256(benchmark::State& state) {
  std::vector<uint8_t> data(state.range(0), 'x');
  for (auto _ : state) benchmark::DoNotOptimize(Sha256::Hash(data));
  state.SetBytesProcessed(state.iterations() * data.size());
}
BENCHMARK(BM_Sha256)->Arg(16 * 1024)->Arg(1 << 20);

// A 1 MiB piece: 64 leaf hashes plus 63 inner nodes.
void BM_HashPiece(benchmark::State& state) {
  std::vector<uint8_t> data(state.range(0), 'x');
  ContentLayout layout{uint64_t{1} << 30,
                       static_cast<uint32_t>(state.range(0))};
  for (auto _ : state)
    benchmark::DoNotOptimize(HashPiece(data, layout.piece_tree_levels(0)));
  state.SetBytesProcessed(state.iterations() * data.size());
}
BENCHMARK(BM_HashPiece)->Arg(64 * 1024)->Arg(1 << 20)->Arg(4 << 20);

}  // namespace
}  // namespace shoal::chunk
