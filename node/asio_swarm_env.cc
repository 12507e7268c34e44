#include "node/asio_swarm_env.h"

#include <chrono>
#include <utility>

namespace shoal::node {
namespace {

// Rearms a one-second timer until destroyed; the timer's handler sees the
// cancellation (or the expired flag) and stops.
class AsioTicker final : public Ticker {
 public:
  AsioTicker(asio::io_context& io, std::function<void()> tick)
      : state_(std::make_shared<State>(io, std::move(tick))) {
    Arm(state_);
  }
  ~AsioTicker() override {
    state_->stopped = true;
    state_->timer.cancel();
  }

 private:
  struct State {
    State(asio::io_context& io, std::function<void()> t)
        : timer(io), tick(std::move(t)) {}
    asio::steady_timer timer;
    std::function<void()> tick;
    bool stopped = false;
  };
  static void Arm(const std::shared_ptr<State>& s) {
    s->timer.expires_after(std::chrono::seconds(1));
    s->timer.async_wait([s](boost::system::error_code ec) {
      if (ec || s->stopped) return;
      s->tick();
      // The tick may have destroyed the ticker (and stopped it).
      if (!s->stopped) Arm(s);
    });
  }
  std::shared_ptr<State> state_;
};

}  // namespace

AsioSwarmEnv::AsioSwarmEnv(asio::io_context& io, ThreadPool& pool)
    : io_(io), pool_(pool), rng_(std::random_device{}()) {}

void AsioSwarmEnv::Offload(std::function<void()> work,
                           std::function<void()> done) {
  pool_.Post(
      [&io = io_, work = std::move(work), done = std::move(done)]() mutable {
        work();
        asio::post(io, std::move(done));
      });
}

void AsioSwarmEnv::Defer(std::function<void()> fn) {
  asio::post(io_, std::move(fn));
}

std::unique_ptr<Ticker> AsioSwarmEnv::EverySecond(std::function<void()> tick) {
  return std::make_unique<AsioTicker>(io_, std::move(tick));
}

PeerEndpoint ToPeerEndpoint(const tcp::endpoint& e) {
  PeerEndpoint p;
  const asio::ip::address a = e.address();
  if (a.is_v4()) {
    const auto b = a.to_v4().to_bytes();
    std::copy(b.begin(), b.end(), p.address.begin());
    p.family = AddressFamily::kV4;
  } else {
    const auto b = a.to_v6().to_bytes();
    std::copy(b.begin(), b.end(), p.address.begin());
    p.family = AddressFamily::kV6;
  }
  p.port = e.port();
  return p;
}

tcp::endpoint ToTcpEndpoint(const PeerEndpoint& p) {
  if (p.family == AddressFamily::kV4) {
    asio::ip::address_v4::bytes_type b;
    std::copy(p.address.begin(), p.address.begin() + 4, b.begin());
    return tcp::endpoint(asio::ip::address_v4(b), p.port);
  }
  asio::ip::address_v6::bytes_type b;
  std::copy(p.address.begin(), p.address.end(), b.begin());
  return tcp::endpoint(asio::ip::address_v6(b), p.port);
}

std::vector<PeerEndpoint> ToPeerEndpoints(const std::vector<tcp::endpoint>& e) {
  std::vector<PeerEndpoint> out;
  out.reserve(e.size());
  for (const tcp::endpoint& x : e) out.push_back(ToPeerEndpoint(x));
  return out;
}

}  // namespace shoal::node
