// Parsing benchmark: Shoal's ParseMetainfo on generated .torrent files.
// tools/bench/metadata_bench.sh generates the files (gen_torrents.py, with
// libtorrent), runs this binary and times libtorrent's torrent_info on the
// same files (metadata_bench_lt.py), so both figures come from one run.
//
//   metadata_bench --benchmark_filter=... -- FILE...
// Each FILE becomes one benchmark named after it. Not part of ctest.
#include <benchmark/benchmark.h>

#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "chunk/metainfo.h"
#include "codec/bdecode.h"

namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void BM_ParseMetainfo(benchmark::State& state, std::string bytes) {
  shoal::chunk::MetainfoLimits limits;
  for (auto _ : state) {
    auto m = shoal::chunk::ParseMetainfo(bytes, limits);
    if (!m.ok()) {
      state.SkipWithError(m.status().ToString().c_str());
      break;
    }
    benchmark::DoNotOptimize(m->num_pieces);
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(bytes.size()));
}

void BM_Bdecode(benchmark::State& state, std::string bytes) {
  shoal::codec::BdecodeOptions o;
  o.allow_trailing_bytes = true;
  for (auto _ : state) {
    auto doc = shoal::codec::Bdecode(bytes, o);
    benchmark::DoNotOptimize(doc.ok());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(bytes.size()));
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  for (int i = 1; i < argc; ++i) {
    std::string path = argv[i];
    std::string bytes = ReadFile(path);
    if (bytes.empty()) {
      std::cerr << "cannot read " << path << "\n";
      return 1;
    }
    std::string name = path.substr(path.find_last_of('/') + 1);
    benchmark::RegisterBenchmark(("ParseMetainfo/" + name).c_str(),
                                 BM_ParseMetainfo, bytes)
        ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark(("Bdecode/" + name).c_str(), BM_Bdecode, bytes)
        ->Unit(benchmark::kMicrosecond);
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
