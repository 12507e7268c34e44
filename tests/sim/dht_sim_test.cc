// A deterministic simulation of a DHT network: N DhtNodes in one process on a
// simulated network with per-link latency and 5% packet loss. Deliveries sit
// in a priority queue ordered by simulated time; all randomness comes from one
// seeded generator, so a run is reproducible from its seed (printed on
// failure; set SHOAL_SIM_SEED to replay it, SHOAL_SIM_NODES to change N,
// default 1,000, about 5 s for both tests; SHOAL_SIM_DEBUG=1 prints misses).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <queue>
#include <random>
#include <set>

#include "dht/dht_node.h"
#include "gtest/gtest.h"

namespace shoal::dht {
namespace {

int EnvInt(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v ? std::atoi(v) : fallback;
}

class SimNetwork {
 public:
  SimNetwork(int n, uint64_t seed, double loss) : rng_(seed), loss_(loss) {
    for (int i = 0; i < n; ++i) {
      DhtOptions o;
      o.id = NodeId::Random(random_);
      o.cluster_name = "sim";
      o.query_timeout_ms = 1000;
      o.query_retries = 3;
      Endpoint self = Address(i);
      auto node = DhtNode::Create(
          o, [this] { return now_; }, random_,
          [this, self](const Endpoint& to, std::string bytes) {
            Deliver(self, to, std::move(bytes));
          });
      nodes_.push_back(std::move(*node));
    }
    dead_.assign(n, false);
  }

  static Endpoint Address(int i) {
    return Endpoint::V4(0x0a000000u + static_cast<uint32_t>(i) + 1, 6881);
  }
  static int Index(const Endpoint& e) {
    const auto* a = reinterpret_cast<const uint8_t*>(e.address.data());
    return ((a[1] << 16) | (a[2] << 8) | a[3]) - 1;
  }

  // Runs until simulated time `until`, ticking every node every 500 ms.
  void RunUntil(int64_t until) {
    while (now_ < until) {
      int64_t next_tick = (now_ / 500 + 1) * 500;
      int64_t stop = std::min(next_tick, until);
      while (!events_.empty() && events_.top().at <= stop) {
        Event e = events_.top();
        events_.pop();
        now_ = e.at;
        int to = Index(e.to);
        if (to >= 0 && to < static_cast<int>(nodes_.size())) {
          if (!dead_[to]) nodes_[to]->OnPacket(e.from, e.bytes);
        }
        ++delivered_;
      }
      now_ = stop;
      if (now_ == next_tick) {
        for (size_t i = 0; i < nodes_.size(); ++i) {
          if (!dead_[i]) nodes_[i]->Tick();
        }
      }
    }
  }
  // Runs until `done()` or `limit_ms` more simulated time.
  template <typename F>
  void RunWhile(F busy, int64_t limit_ms) {
    int64_t end = now_ + limit_ms;
    while (busy() && now_ < end) RunUntil(now_ + 100);
  }

  DhtNode& node(int i) { return *nodes_[i]; }
  int size() const { return static_cast<int>(nodes_.size()); }
  uint64_t Uniform(uint64_t n) { return rng_() % n; }
  const std::function<uint64_t()>& random() const { return random_; }
  int64_t now() const { return now_; }
  uint64_t delivered() const { return delivered_; }
  // A dead node neither receives nor ticks.
  void Kill(int i) { dead_[i] = true; }
  bool dead(int i) const { return dead_[i]; }

 private:
  struct Event {
    int64_t at;
    uint64_t seq;
    Endpoint from, to;
    std::string bytes;
    bool operator>(const Event& o) const {
      return at != o.at ? at > o.at : seq > o.seq;
    }
  };
  void Deliver(const Endpoint& from, const Endpoint& to, std::string bytes) {
    if (std::uniform_real_distribution<double>(0, 1)(rng_) < loss_) return;
    // A fixed latency per (unordered) link, 5..105 ms, plus up to 5 ms jitter.
    uint64_t a = Index(from), b = Index(to);
    uint64_t h =
        (std::min(a, b) * 1000003u + std::max(a, b)) * 0x9e3779b97f4a7c15ull;
    int64_t latency = 5 + static_cast<int64_t>((h >> 33) % 100) +
                      static_cast<int64_t>(rng_() % 6);
    events_.push({now_ + latency, seq_++, from, to, std::move(bytes)});
  }

  std::mt19937_64 rng_;
  std::function<uint64_t()> random_ = [this] { return rng_(); };
  double loss_;
  int64_t now_ = 0;
  uint64_t seq_ = 0;
  uint64_t delivered_ = 0;
  std::priority_queue<Event, std::vector<Event>, std::greater<>> events_;
  std::vector<std::unique_ptr<DhtNode>> nodes_;
  std::vector<bool> dead_;
};

// Three seeds know each other; everyone else joins through a random seed, ten
// nodes every 100 ms; then a minute passes.
void BootstrapAll(SimNetwork& net) {
  const int n = net.size();
  const int seeds = std::min(3, n);
  for (int i = 0; i < seeds; ++i) {
    std::vector<Endpoint> others;
    for (int j = 0; j < seeds; ++j) {
      if (j != i) others.push_back(SimNetwork::Address(j));
    }
    net.node(i).Bootstrap(others);
  }
  for (int i = seeds; i < n; ++i) {
    net.node(i).Bootstrap(
        {SimNetwork::Address(static_cast<int>(net.Uniform(seeds)))});
    if (i % 10 == 0) net.RunUntil(net.now() + 100);
  }
  net.RunUntil(net.now() + 60'000);
}

// Lookups find the true k closest nodes and get_peers finds announcers in >=
// 99%.
TEST(DhtSimTest, LookupsAndGetPeersOnLossyNetwork) {
  const int n = EnvInt("SHOAL_SIM_NODES", 1000);
  const uint64_t seed =
      static_cast<uint64_t>(EnvInt("SHOAL_SIM_SEED", 20261121));
  SCOPED_TRACE(testing::Message() << "seed " << seed << ", " << n << " nodes");
  auto wall_start = std::chrono::steady_clock::now();
  SimNetwork net(n, seed, 0.05);
  const int k = net.node(0).options().k;

  BootstrapAll(net);

  // Lookups of random keys from random nodes, 10 at a time.
  const int kLookups = 1000;
  int found = 0, finished = 0;
  std::vector<int> hops;
  for (int batch = 0; batch < kLookups; batch += 10) {
    int outstanding = 0;
    for (int j = 0; j < 10; ++j) {
      int from = static_cast<int>(net.Uniform(n));
      NodeId target = NodeId::Random(net.random());
      std::vector<NodeId> truth;
      for (int i = 0; i < n; ++i) {
        if (i != from) truth.push_back(net.node(i).id());
      }
      std::partial_sort(truth.begin(), truth.begin() + k, truth.end(),
                        [&](const NodeId& a, const NodeId& b) {
                          return CloserTo(target, a, b);
                        });
      truth.resize(k);
      ++outstanding;
      net.node(from).FindNode(
          target, [&, truth, from](const std::vector<NodeInfo>& closest,
                                   const LookupStats& stats) {
            --outstanding;
            ++finished;
            hops.push_back(stats.hops);
            std::vector<NodeId> got;
            for (const NodeInfo& c : closest) got.push_back(c.id);
            if (got == truth) {
              ++found;
            } else if (std::getenv("SHOAL_SIM_DEBUG")) {
              int missing = 0;
              for (const NodeId& t : truth) {
                missing += std::find(got.begin(), got.end(), t) == got.end();
              }
              std::printf(
                  "lookup from %d: got %zu nodes, %d of the true %d missing, "
                  "%d queries\n",
                  from, got.size(), missing, k, stats.queries);
            }
          });
    }
    net.RunWhile([&] { return outstanding > 0; }, 120'000);
  }

  // Announce random keys from random nodes, then get_peers from other nodes.
  const int kSwarms = 300;
  int announced_ok = 0, peers_found = 0;
  for (int batch = 0; batch < kSwarms; batch += 10) {
    int outstanding = 0;
    std::vector<std::pair<NodeId, int>> swarms;
    for (int j = 0; j < 10; ++j) {
      int announcer = static_cast<int>(net.Uniform(n));
      NodeId ih = NodeId::Random(net.random());
      swarms.push_back({ih, announcer});
      ++outstanding;
      net.node(announcer).Announce(ih, 7000, true, [&, announcer](int acked) {
        --outstanding;
        if (acked > 0) ++announced_ok;
        if (acked == 0 && std::getenv("SHOAL_SIM_DEBUG")) {
          const DhtNode::Stats& st = net.node(announcer).stats();
          std::printf(
              "announce from %d acked by none; table %zu in %llu timeouts "
              "%llu\n",
              announcer, net.node(announcer).routing_table().size(),
              (unsigned long long)st.packets_in,
              (unsigned long long)st.timeouts);
        }
      });
    }
    net.RunWhile([&] { return outstanding > 0; }, 120'000);
    for (const auto& [ih, announcer] : swarms) {
      int from = static_cast<int>(net.Uniform(n));
      Endpoint expected = SimNetwork::Address(announcer);
      ++outstanding;
      net.node(from).GetPeers(
          ih,
          [&, expected](const std::vector<Endpoint>& peers,
                        const std::vector<NodeWithToken>&, const LookupStats&) {
            --outstanding;
            if (std::find(peers.begin(), peers.end(), expected) != peers.end())
              ++peers_found;
          });
    }
    net.RunWhile([&] { return outstanding > 0; }, 120'000);
  }

  std::sort(hops.begin(), hops.end());
  double seconds = std::chrono::duration<double>(
                       std::chrono::steady_clock::now() - wall_start)
                       .count();
  std::printf(
      "dht sim: seed %llu, %d nodes, 5%% loss: find_node exact k-closest "
      "%d/%d, "
      "get_peers found announcer %d/%d (announces acked %d), median hops %d, "
      "%llu datagrams delivered, %.1f simulated s, %.2f wall s\n",
      static_cast<unsigned long long>(seed), n, found, kLookups, peers_found,
      kSwarms, announced_ok, hops.empty() ? -1 : hops[hops.size() / 2],
      static_cast<unsigned long long>(net.delivered()), net.now() / 1000.0,
      seconds);
  EXPECT_EQ(finished, kLookups) << "seed " << seed;
  EXPECT_GE(found * 100, kLookups * 99) << "seed " << seed;
  EXPECT_GE(peers_found * 100, kSwarms * 99) << "seed " << seed;
}

// After 10% of the nodes die, lookups among the living still find the true k
// closest living nodes in >= 99% of cases: timeouts and liveness route around
// the dead.
TEST(DhtSimTest, LookupsAfterChurn) {
  const int n = EnvInt("SHOAL_SIM_NODES", 1000);
  const uint64_t seed =
      static_cast<uint64_t>(EnvInt("SHOAL_SIM_SEED", 20261121));
  SCOPED_TRACE(testing::Message() << "seed " << seed << ", " << n << " nodes");
  SimNetwork net(n, seed, 0.05);
  const int k = net.node(0).options().k;
  BootstrapAll(net);
  for (int i = 0; i < n / 10; ++i) net.Kill(static_cast<int>(net.Uniform(n)));
  // One bucket-refresh period (15 min) lets the tables heal.
  net.RunUntil(net.now() + 16 * 60'000);

  const int kLookups = 500;
  int found = 0, finished = 0;
  std::vector<int> hops;
  for (int batch = 0; batch < kLookups; batch += 10) {
    int outstanding = 0;
    for (int j = 0; j < 10; ++j) {
      int from;
      do {
        from = static_cast<int>(net.Uniform(n));
      } while (net.dead(from));
      NodeId target = NodeId::Random(net.random());
      std::vector<NodeId> truth;
      for (int i = 0; i < n; ++i) {
        if (i != from && !net.dead(i)) truth.push_back(net.node(i).id());
      }
      std::partial_sort(truth.begin(), truth.begin() + k, truth.end(),
                        [&](const NodeId& a, const NodeId& b) {
                          return CloserTo(target, a, b);
                        });
      truth.resize(k);
      ++outstanding;
      net.node(from).FindNode(
          target, [&, truth](const std::vector<NodeInfo>& closest,
                             const LookupStats& stats) {
            --outstanding;
            ++finished;
            hops.push_back(stats.hops);
            std::vector<NodeId> got;
            for (const NodeInfo& c : closest) got.push_back(c.id);
            if (got == truth) {
              ++found;
            } else if (std::getenv("SHOAL_SIM_DEBUG")) {
              int missing = 0;
              for (const NodeId& t : truth) {
                missing += std::find(got.begin(), got.end(), t) == got.end();
              }
              std::printf("churn lookup: got %zu, %d missing, %d queries\n",
                          got.size(), missing, stats.queries);
            }
          });
    }
    net.RunWhile([&] { return outstanding > 0; }, 120'000);
  }
  std::sort(hops.begin(), hops.end());
  std::printf(
      "dht sim churn: seed %llu, %d nodes, ~10%% dead, 5%% loss: find_node "
      "exact "
      "k-closest living %d/%d, median hops %d\n",
      static_cast<unsigned long long>(seed), n, found, kLookups,
      hops.empty() ? -1 : hops[hops.size() / 2]);
  EXPECT_EQ(finished, kLookups) << "seed " << seed;
  EXPECT_GE(found * 100, kLookups * 99) << "seed " << seed;
}

}  // namespace
}  // namespace shoal::dht
