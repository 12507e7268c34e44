// The node's SwarmEnv: the network thread's io_context and the hashing pool;
// and the conversions between Asio's endpoints and PeerEndpoint at the
// boundary of the sans-I/O code.
#ifndef SHOAL_NODE_ASIO_SWARM_ENV_H_
#define SHOAL_NODE_ASIO_SWARM_ENV_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <vector>

#include "base/peer_endpoint.h"
#include "base/thread_pool.h"
#include "node/asio.h"
#include "node/swarm_env.h"

namespace shoal::node {

class AsioSwarmEnv final : public SwarmEnv {
 public:
  // Swarms using it run on `io`'s thread; offloaded work runs on `pool`.
  AsioSwarmEnv(asio::io_context& io, ThreadPool& pool);

  uint64_t Random() override { return rng_(); }
  void Offload(std::function<void()> work, std::function<void()> done) override;
  void Defer(std::function<void()> fn) override;
  std::unique_ptr<Ticker> EverySecond(std::function<void()> tick) override;

 private:
  asio::io_context& io_;
  ThreadPool& pool_;
  std::mt19937_64 rng_;
};

PeerEndpoint ToPeerEndpoint(const tcp::endpoint& e);
tcp::endpoint ToTcpEndpoint(const PeerEndpoint& p);
std::vector<PeerEndpoint> ToPeerEndpoints(const std::vector<tcp::endpoint>& e);

}  // namespace shoal::node

#endif  // SHOAL_NODE_ASIO_SWARM_ENV_H_
