// When a fetch looks for providers of a content on the cluster DHT
// (Session::LookupProviders), shared with the swarm simulation
// (tests/sim/swarm_sim_test.cc) so that both follow one schedule.
#ifndef SHOAL_NODE_PROVIDER_LOOKUPS_H_
#define SHOAL_NODE_PROVIDER_LOOKUPS_H_

#include <chrono>
#include <cstddef>

namespace shoal::node {

// A fetch looks for more providers while it has fewer peers than this: each
// one is another fetcher to trade with (the simulation: 100 nodes complete a
// release 16% sooner than with 8).
inline constexpr size_t kLookupPeers = 30;

// The wait after lookup `round` (0: the one made when the fetch starts)
// before the next. The first come fast: at a release every fetcher starts at
// once, its first lookup finds only the origin (fetchers provide once their
// metadata checks out), and the origin takes its first max_peers; the others
// trade with nobody until a later lookup finds the fetchers. Then every
// second, and from the sixth round on every `interval` (options).
constexpr std::chrono::milliseconds ProviderLookupDelay(
    int round, std::chrono::milliseconds interval) {
  using std::chrono::milliseconds;
  const milliseconds early = round < 2   ? milliseconds(250)
                             : round < 3 ? milliseconds(500)
                                         : milliseconds(1000);
  if (round >= 5) return interval;
  return early < interval ? early : interval;
}

}  // namespace shoal::node

#endif  // SHOAL_NODE_PROVIDER_LOOKUPS_H_
