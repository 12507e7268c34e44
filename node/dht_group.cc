#include "node/dht_group.h"

#include <algorithm>
#include <utility>

namespace shoal::node {

void DhtGroup::Add(std::unique_ptr<DhtService> service, uint16_t port) {
  services_.push_back({std::move(service), port});
}

absl::Status DhtGroup::Start() {
  for (Member& m : services_) {
    if (m.service->running()) continue;
    if (absl::Status s = m.service->Start(); !s.ok()) {
      Stop();
      return s;
    }
  }
  return absl::OkStatus();
}

void DhtGroup::Stop() {
  for (Member& m : services_) m.service->Stop();
}

bool DhtGroup::running() const {
  return std::any_of(services_.begin(), services_.end(),
                     [](const Member& m) { return m.service->running(); });
}

namespace {

// Collects the answers of several lookups and calls `done` with all of them
// once the last one is in.
template <typename Result>
struct Gather {
  size_t remaining = 0;
  Result result;
};

void Dedup(std::vector<tcp::endpoint>& peers) {
  std::sort(peers.begin(), peers.end());
  peers.erase(std::unique(peers.begin(), peers.end()), peers.end());
}

}  // namespace

void DhtGroup::GetPeers(Network net, const Key& key,
                        std::function<void(std::vector<tcp::endpoint>)> done,
                        std::function<void(std::vector<tcp::endpoint>)> found) {
  if (services_.size() == 1) {
    services_.front().service->GetPeers(net, key, std::move(done),
                                        std::move(found));
    return;
  }
  if (services_.empty()) return done({});
  auto g = std::make_shared<Gather<std::vector<tcp::endpoint>>>();
  g->remaining = services_.size();
  auto shared_done =
      std::make_shared<std::function<void(std::vector<tcp::endpoint>)>>(
          std::move(done));
  for (Member& m : services_) {
    m.service->GetPeers(
        net, key, [g, shared_done](std::vector<tcp::endpoint> peers) {
          g->result.insert(g->result.end(), peers.begin(), peers.end());
          if (--g->remaining > 0) return;
          Dedup(g->result);
          (*shared_done)(std::move(g->result));
        });
  }
}

void DhtGroup::ClosestNodes(
    const Key& key,
    std::function<void(std::vector<dht::NodeInfo>, std::vector<tcp::endpoint>)>
        done) {
  if (services_.size() == 1) {
    services_.front().service->ClosestNodes(key, std::move(done));
    return;
  }
  if (services_.empty()) return done({}, {});
  struct Both {
    std::vector<dht::NodeInfo> nodes;
    std::vector<tcp::endpoint> providers;
  };
  auto g = std::make_shared<Gather<Both>>();
  g->remaining = services_.size();
  auto shared_done = std::make_shared<std::function<void(
      std::vector<dht::NodeInfo>, std::vector<tcp::endpoint>)>>(
      std::move(done));
  const dht::NodeId target(key);
  for (Member& m : services_) {
    m.service->ClosestNodes(key, [g, shared_done, target](
                                     std::vector<dht::NodeInfo> nodes,
                                     std::vector<tcp::endpoint> providers) {
      g->result.nodes.insert(g->result.nodes.end(), nodes.begin(), nodes.end());
      g->result.providers.insert(g->result.providers.end(), providers.begin(),
                                 providers.end());
      if (--g->remaining > 0) return;
      std::vector<dht::NodeInfo>& all = g->result.nodes;
      // Stable: of a node found over both families, the first service's
      // (the first listen address's family) answer stays.
      std::stable_sort(all.begin(), all.end(),
                       [&](const dht::NodeInfo& a, const dht::NodeInfo& b) {
                         return dht::CloserTo(target, a.id, b.id);
                       });
      all.erase(std::unique(all.begin(), all.end(),
                            [](const dht::NodeInfo& a, const dht::NodeInfo& b) {
                              return a.id == b.id;
                            }),
                all.end());
      Dedup(g->result.providers);
      (*shared_done)(std::move(all), std::move(g->result.providers));
    });
  }
}

void DhtGroup::Preheat(const dht::NodeInfo& node, std::string content,
                       dht::DhtNode::PreheatCallback done) {
  for (Member& m : services_) {
    if (m.service->Carries(node.endpoint)) {
      m.service->Preheat(node, std::move(content), std::move(done));
      return;
    }
  }
  done(std::nullopt);
}

void DhtGroup::Provide(Network net, const Key& key) {
  for (Member& m : services_) m.service->Provide(net, key, m.port);
}

void DhtGroup::StopProviding(Network net, const Key& key) {
  for (Member& m : services_) m.service->StopProviding(net, key);
}

size_t DhtGroup::NumNodes(Network net) const {
  size_t n = 0;
  for (const Member& m : services_) n += m.service->NumNodes(net);
  return n;
}

uint64_t DhtGroup::Unauthenticated() const {
  uint64_t n = 0;
  for (const Member& m : services_) n += m.service->Unauthenticated();
  return n;
}

bool DhtGroup::ClusterReachable() const {
  return std::any_of(services_.begin(), services_.end(), [](const Member& m) {
    return m.service->ClusterReachable();
  });
}

}  // namespace shoal::node
