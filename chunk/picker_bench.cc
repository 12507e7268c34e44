// Piece picker costs on a 100,000-piece torrent (256 KiB pieces, 16 blocks
// each) with 50 connected peers:
//   picker_bench --benchmark_min_time=0.2
#include <memory>
#include <random>
#include <vector>

#include "benchmark/benchmark.h"
#include "chunk/piece_picker.h"

namespace shoal::chunk {
namespace {

constexpr uint32_t kPieces = 100'000;
constexpr uint32_t kPieceLength = 16 * kBlockLength;
constexpr int kPeers = 50;

struct Swarm {
  std::unique_ptr<PiecePicker> picker;
  std::vector<Bitfield> bits;  // per peer
};

// 50 peers, each with every piece with probability `density` percent.
Swarm MakeSwarm(PickStrategy strategy, int density) {
  std::mt19937_64 rng(42);
  Swarm s;
  s.picker = std::make_unique<PiecePicker>(
      PiecePickerOptions{.total_length = uint64_t{kPieces} * kPieceLength,
                         .piece_length = kPieceLength,
                         .strategy = strategy},
      [r = std::mt19937_64(7)]() mutable { return r(); });
  for (int peer = 0; peer < kPeers; ++peer) {
    Bitfield b(kPieces);
    for (uint32_t p = 0; p < kPieces; ++p) {
      if (static_cast<int>(rng() % 100) < density) b.set(p);
    }
    s.picker->PeerHasBitfield(b);
    s.bits.push_back(std::move(b));
  }
  return s;
}

// One Pick of `state.range(0)` blocks for each peer in turn; the swarm is
// rebuilt (untimed) before a third of the torrent is requested.
void PickBench(benchmark::State& state, PickStrategy strategy, int density) {
  const size_t max_blocks = static_cast<size_t>(state.range(0));
  Swarm s = MakeSwarm(strategy, density);
  size_t picked = 0, blocks = 0;
  int peer = 0;
  for (auto _ : state) {
    std::vector<Block> got = s.picker->Pick(peer, s.bits[peer], max_blocks);
    benchmark::DoNotOptimize(got.data());
    picked += got.size();
    blocks += got.size();
    peer = (peer + 1) % kPeers;
    if (picked > uint64_t{kPieces} * 16 / 3) {
      state.PauseTiming();
      s = MakeSwarm(strategy, density);
      picked = 0;
      state.ResumeTiming();
    }
  }
  state.counters["blocks/s"] = benchmark::Counter(static_cast<double>(blocks),
                                                  benchmark::Counter::kIsRate);
}

void BM_PickRarestFirst(benchmark::State& state) {
  PickBench(state, PickStrategy::kRarestFirst, 50);
}
BENCHMARK(BM_PickRarestFirst)->Arg(16)->Arg(64)->Arg(256);

// Peers with about 1% of the pieces (new leechers).
void BM_PickRarestFirstSparsePeers(benchmark::State& state) {
  PickBench(state, PickStrategy::kRarestFirst, 1);
}
BENCHMARK(BM_PickRarestFirstSparsePeers)->Arg(64);

void BM_PickSequential(benchmark::State& state) {
  PickBench(state, PickStrategy::kSequential, 50);
}
BENCHMARK(BM_PickSequential)->Arg(64);

void BM_PickRandom(benchmark::State& state) {
  PickBench(state, PickStrategy::kRandom, 50);
}
BENCHMARK(BM_PickRandom)->Arg(64);

// BlockReceived for blocks requested through Pick, in arrival order per peer;
// completed pieces are marked had (SetHave is part of the cost).
void BM_BlockReceived(benchmark::State& state) {
  Swarm s;
  std::vector<std::pair<PeerKey, Block>> pending;
  size_t next = 0;
  auto refill = [&] {
    s = MakeSwarm(PickStrategy::kRarestFirst, 50);
    pending.clear();
    next = 0;
    for (int round = 0; round < 200; ++round) {
      for (int peer = 0; peer < kPeers; ++peer) {
        for (const Block& b : s.picker->Pick(peer, s.bits[peer], 64)) {
          pending.emplace_back(peer, b);
        }
      }
    }
  };
  refill();
  for (auto _ : state) {
    if (next == pending.size()) {
      state.PauseTiming();
      refill();
      state.ResumeTiming();
    }
    const auto& [peer, block] = pending[next++];
    if (s.picker->BlockReceived(peer, block)) s.picker->SetHave(block.piece);
  }
}
BENCHMARK(BM_BlockReceived);

// A HAVE message from one peer.
void BM_PeerHas(benchmark::State& state) {
  Swarm s = MakeSwarm(PickStrategy::kRarestFirst, 50);
  uint32_t piece = 0;
  for (auto _ : state) {
    s.picker->PeerHas(piece);
    piece = (piece + 7919) % kPieces;
  }
}
BENCHMARK(BM_PeerHas);

// A 50% peer connecting (its bitfield) and disconnecting.
void BM_PeerHasAndLostBitfield(benchmark::State& state) {
  Swarm s = MakeSwarm(PickStrategy::kRarestFirst, 50);
  int peer = 0;
  for (auto _ : state) {
    s.picker->PeerHasBitfield(s.bits[peer]);
    s.picker->PeerLostBitfield(s.bits[peer]);
    peer = (peer + 1) % kPeers;
  }
}
BENCHMARK(BM_PeerHasAndLostBitfield);

// A peer disconnecting with 64 outstanding requests.
void BM_PickThenPeerGone(benchmark::State& state) {
  Swarm s = MakeSwarm(PickStrategy::kRarestFirst, 50);
  int peer = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(s.picker->Pick(peer, s.bits[peer], 64).data());
    s.picker->PeerGone(peer);
    peer = (peer + 1) % kPeers;
  }
}
BENCHMARK(BM_PickThenPeerGone);

}  // namespace
}  // namespace shoal::chunk

BENCHMARK_MAIN();
