// A deterministic simulation of a swarm: N nodes, each running the real swarm
// engine (node/swarm.h, with real hashing and verification) over a simulated
// network. Each node has an uplink and a downlink capacity (bytes/s); a pair
// of nodes has a one-way latency (5-45 ms, fixed per pair); a lost segment
// arrives one retransmission timeout (200 ms) late, in order, as TCP would
// deliver it. A node's uplink sends its connections' queued bytes round-robin
// in segments of 16 KiB; its downlink takes arriving segments first come,
// first served. Events sit in a priority queue ordered by simulated time, and
// all randomness comes from one seeded generator: a run is reproducible from
// its seed, printed on failure.
//
//   SHOAL_SWARM_SIM_SEED     replay a run
//   SHOAL_SWARM_SIM_NODES    fetchers (default 100; 1,000 and more work)
//   SHOAL_SWARM_SIM_MIB      content size in MiB (default 16)
//   SHOAL_SWARM_SIM_TRACE    print how the links are used, every 0.2 s
//   SHOAL_SWARM_SIM_TRACE_IDLE  with TRACE: each fetcher whose uplink is idle,
//                            its pieces and how many of its peers want
//                            something of it and have requests out to it
//   SHOAL_SWARM_SIM_MAX_PEERS  SwarmOptions::max_peers of CDN swarms (50)
//   SHOAL_SWARM_SIM_BACKLOG  SwarmOptions::upload_backlog_bytes of CDN
//                            swarms (768 KiB; 0 turns rejecting off)
//
// Each scenario prints one line:
//   swarm sim release: seed S, N nodes, all complete in T s, lower bound L s,
//   ratio R, seed sent X x the content
// with T* = max(F/u_seed, F/min d_i, N·F/(u_seed + Σ u_i)) for F the content
// size (for nodes that arrive or leave, the line says which bound is used).
#include "tests/sim/swarm_sim.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "spdlog/spdlog.h"

namespace shoal::node::sim {
namespace {

// --- Scenarios

struct Outcome {
  bool complete = false;
  double time = 0;                 // until every counted node completed
  double bound = 0;                // the lower bound
  double seed_sent = 0;            // bytes the seed sent / content size
  std::vector<double> completion;  // per node, -1 if not
};

Outcome Summarize(const Sim& sim, bool complete, double bound, int seed,
                  double size) {
  Outcome o;
  o.complete = complete;
  o.bound = bound;
  o.seed_sent = static_cast<double>(sim.Uploaded(seed)) / size;
  for (size_t i = 0; i < sim.size(); ++i) {
    const double t = sim.node(static_cast<int>(i)).completed_at;
    o.completion.push_back(t);
    o.time = std::max(o.time, t);
  }
  return o;
}

// The completion time at quantile q of the nodes that completed.
double Quantile(const Outcome& o, double q) {
  std::vector<double> t;
  for (double x : o.completion)
    if (x >= 0) t.push_back(x);
  if (t.empty()) return 0;
  std::sort(t.begin(), t.end());
  return t[std::min(t.size() - 1, static_cast<size_t>(q * t.size()))];
}

void Print(const char* name, uint64_t seed, size_t n, const Outcome& o,
           const std::string& extra = "") {
  std::printf(
      "swarm sim %s: seed %llu, %zu nodes, all complete in %.2f s, lower "
      "bound %.2f s, ratio %.2f, seed sent %.2f x the content%s\n",
      name, static_cast<unsigned long long>(seed), n, o.time, o.bound,
      o.bound > 0 ? o.time / o.bound : 0, o.seed_sent, extra.c_str());
  std::fflush(stdout);
}

class SwarmSim : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    spdlog::set_level(spdlog::level::err);
    const uint64_t mib = EnvU64("SHOAL_SWARM_SIM_MIB", 16);
    content_ = new TestContent(TestContent::Make(mib << 20, 7));
  }
  static void TearDownTestSuite() {
    delete content_;
    content_ = nullptr;
    spdlog::set_level(spdlog::level::info);
  }
  void SetUp() override {
    seed_ = SimSeed();
    n_ = static_cast<int>(EnvU64("SHOAL_SWARM_SIM_NODES", 100));
  }
  void TearDown() override {
    if (HasFailure()) {
      std::printf("swarm sim: replay with SHOAL_SWARM_SIM_SEED=%llu\n",
                  static_cast<unsigned long long>(seed_));
    }
  }
  double F() const { return static_cast<double>(content_->data.size()); }
  // T* of a release from `seed` to n_ nodes like `f`, all there from the start.
  double ReleaseBound(const NodeSpec& seed, const NodeSpec& f) const {
    return std::max(
        {F() / seed.up, F() / f.down, n_ * F() / (seed.up + n_ * f.up)});
  }
  // The first time at which `capacity(t)`, the bytes the uplinks could have
  // sent by then (increasing in t), reaches `bytes`.
  static double FirstTime(double bytes,
                          const std::function<double(double)>& capacity) {
    double lo = 0, hi = 1e6;
    for (int k = 0; k < 100; ++k) {
      const double t = (lo + hi) / 2;
      (capacity(t) >= bytes ? hi : lo) = t;
    }
    return hi;
  }

  static SwarmOptions Cdn() {
    SwarmOptions o = CdnSwarmOptions(
        static_cast<int>(EnvU64("SHOAL_SWARM_SIM_MAX_PEERS", 50)));
    o.super_seed = EnvU64("SHOAL_SWARM_SIM_SUPER_SEED", 1) != 0;
    o.upload_backlog_bytes =
        EnvU64("SHOAL_SWARM_SIM_BACKLOG", o.upload_backlog_bytes);
    return o;
  }

  static TestContent* content_;
  uint64_t seed_ = 0;
  int n_ = 100;
};
TestContent* SwarmSim::content_ = nullptr;

// A CDN release: one seed, N fetchers arriving at once.
TEST_F(SwarmSim, Release) {
  Sim sim(seed_, *content_, Cdn());
  NodeSpec seed;
  seed.seed = true;
  const int s = sim.AddNode(seed);
  NodeSpec f;
  for (int i = 0; i < n_; ++i) sim.AddNode(f);
  const double bound = ReleaseBound(seed, f);
  const bool done = sim.Run(40 * bound + 60);
  Outcome o = Summarize(sim, done, bound, s, F());
  Print("release", seed_, n_, o,
        absl::StrCat(" (p50 ", std::lround(Quantile(o, 0.5) * 100) / 100.0,
                     " s, p90 ", std::lround(Quantile(o, 0.9) * 100) / 100.0,
                     " s)"));
  ASSERT_TRUE(done);
  // 16 MiB at 10 MB/s: the protocol's round trips and one-second lookups
  // weigh more than at 64 MiB, where the ratio is about 1.35.
  EXPECT_LT(o.time / bound, 3.5);
  EXPECT_LT(o.seed_sent, 2.0);  // the origin super-seeds
}

// Fetchers arriving over time: uniformly over twice the release's bound.
// Bound: the latest of (arrival + F/d) over the nodes, and the first time T
// at which the uplinks present could have sent N·F: u_seed·T + Σ u_i·(T -
// a_i)+ = N·F.
TEST_F(SwarmSim, ArrivalsOverTime) {
  Sim sim(seed_, *content_, Cdn());
  NodeSpec seed;
  seed.seed = true;
  const int s = sim.AddNode(seed);
  NodeSpec f;
  const double window =
      2 * std::max(F() / seed.up, n_ * F() / (seed.up + n_ * f.up));
  std::vector<double> arrivals;
  std::mt19937_64 rng(seed_ ^ 0x5eed);
  for (int i = 0; i < n_; ++i) {
    f.arrive = window * static_cast<double>(rng() % 1'000'000) / 1e6;
    arrivals.push_back(f.arrive);
    sim.AddNode(f);
  }
  double bound = 0;
  for (double a : arrivals) bound = std::max(bound, a + F() / f.down);
  bound = std::max(bound, FirstTime(n_ * F(), [&](double t) {
                     double cap = seed.up * t;
                     for (double a : arrivals)
                       cap += f.up * std::max(0.0, t - a);
                     return cap;
                   }));
  const bool done = sim.Run(40 * bound + 60);
  Outcome o = Summarize(sim, done, bound, s, F());
  Print("arrivals", seed_, n_, o,
        absl::StrCat(" (arrivals over ", std::lround(window * 100) / 100.0,
                     " s; bound: latest arrival + F/d, and uplink capacity "
                     "since each arrival)"));
  ASSERT_TRUE(done);
  EXPECT_LT(o.time / bound, 2.0);
}

// Half the fetchers leave at half the release's bound; the rest complete.
// Bound for those who stay (N' of them): F/u_seed, F/d, and N'·F over the
// seed's and the stayers' uplinks plus the leavers' until they left.
TEST_F(SwarmSim, HalfLeaveMidway) {
  Sim sim(seed_, *content_, Cdn());
  NodeSpec seed;
  seed.seed = true;
  const int s = sim.AddNode(seed);
  NodeSpec f;
  const double release = ReleaseBound(seed, f);
  const double leave = release / 2;
  const int stay = n_ - n_ / 2;
  for (int i = 0; i < n_; ++i) {
    NodeSpec x = f;
    if (i % 2 == 1) x.leave = leave;
    sim.AddNode(x);
  }
  const double sent_by = FirstTime(stay * F(), [&](double t) {
    return (seed.up + stay * f.up) * t + (n_ / 2) * f.up * std::min(t, leave);
  });
  const double bound = std::max({F() / seed.up, F() / f.down, sent_by});
  const bool done = sim.Run(40 * bound + 60);
  Outcome o = Summarize(sim, done, bound, s, F());
  Print("half-leave", seed_, stay, o,
        absl::StrCat(" (", n_ / 2, " of ", n_, " left at ",
                     std::lround(leave * 100) / 100.0,
                     " s; bound over those who stay)"));
  ASSERT_TRUE(done);
  EXPECT_LT(o.time / bound, 3.5);
}

// One malicious node that has "everything" and sends corrupt blocks: every
// honest node completes, and those it sent to ban it.
TEST_F(SwarmSim, MaliciousNode) {
  Sim sim(seed_, *content_, Cdn());
  NodeSpec seed;
  seed.seed = true;
  const int s = sim.AddNode(seed);
  NodeSpec bad;
  bad.malicious = true;
  const int m = sim.AddNode(bad);
  NodeSpec f;
  std::vector<int> fetchers;
  for (int i = 0; i < n_; ++i) fetchers.push_back(sim.AddNode(f));
  const double bound = ReleaseBound(seed, f);
  const bool done = sim.Run(40 * bound + 60);
  Outcome o = Summarize(sim, done, bound, s, F());
  int banned = 0;
  for (int i : fetchers) banned += sim.BannedBy(i, m);
  Print("malicious", seed_, n_, o,
        absl::StrCat(" (", banned,
                     " nodes banned the corrupt one, which "
                     "sent ",
                     std::lround(sim.Uploaded(m) / F() * 100) / 100.0,
                     " x the content)"));
  ASSERT_TRUE(done);
  EXPECT_GT(banned, 0);
  EXPECT_LT(o.time / bound, 3.5);
}

// Torrent mode (tit-for-tat, 4 upload slots, a rechoke every 10 s): half the
// nodes upload 4x faster than the others (0.5 against 0.125 MB/s, slow
// enough that the download lasts several rechokes; the seed's 5 MB/s is not
// what is scarce). They should get the better
// download.
TEST_F(SwarmSim, TitForTatFavoursFastUploaders) {
  SwarmOptions o;
  o.trusted_peers = false;
  o.upload_slots = 4;
  Sim sim(seed_, *content_, o);
  NodeSpec seed;
  seed.seed = true;
  seed.up = 5 * kMB;  // the fetchers' uplinks are what is scarce
  const int s = sim.AddNode(seed);
  std::vector<int> fast, slow;
  double sum_up = 0;
  for (int i = 0; i < n_; ++i) {
    NodeSpec f;
    f.up = (i % 2 == 0 ? 0.5 : 0.125) * kMB;
    f.down = 2.5 * kMB;
    sum_up += f.up;
    (i % 2 == 0 ? fast : slow).push_back(sim.AddNode(f));
  }
  const double bound = std::max(
      {F() / seed.up, F() / (2.5 * kMB), n_ * F() / (seed.up + sum_up)});
  const bool done = sim.Run(60 * bound + 120);
  Outcome out = Summarize(sim, done, bound, s, F());
  auto mean = [&](const std::vector<int>& v) {
    double t = 0;
    for (int i : v) t += sim.node(i).completed_at;
    return t / static_cast<double>(v.size());
  };
  Print("tit-for-tat", seed_, n_, out,
        absl::StrCat(" (fast uploaders' mean ",
                     std::lround(mean(fast) * 100) / 100.0,
                     " s, slow uploaders' mean ",
                     std::lround(mean(slow) * 100) / 100.0, " s)"));
  ASSERT_TRUE(done);
  EXPECT_LT(mean(fast), 0.95 * mean(slow));
}

}  // namespace
}  // namespace shoal::node::sim
