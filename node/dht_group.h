// DhtGroup: a node's DHT services, one per address family it listens on
// (BEP 32: a dual-stack node keeps an IPv4 and an IPv6 routing table, each on
// its own socket), behind the one interface the session uses.
//
//   DhtGroup dht;
//   dht.Add(std::make_unique<DhtService>(io, udp4, store, o4), tcp_port4);
//   dht.Add(std::make_unique<DhtService>(io, udp6, store, o6), tcp_port6);
//   SHOAL_RETURN_IF_ERROR(dht.Start());
//   dht.Provide(DhtService::Network::kCluster, key);  // on both
//   dht.GetPeers(DhtService::Network::kCluster, key, done);  // merged
#ifndef SHOAL_NODE_DHT_GROUP_H_
#define SHOAL_NODE_DHT_GROUP_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "node/dht_service.h"

namespace shoal::node {

// Not thread-safe: the network thread's, like DhtService. Callbacks run on
// that thread.
class DhtGroup {
 public:
  using Key = DhtService::Key;
  using Network = DhtService::Network;

  // Adds the service of one socket; `port` is the TCP peer port it announces
  // (implied_port is not used: a node may listen on different ports per
  // family). Before Start().
  void Add(std::unique_ptr<DhtService> service, uint16_t port);
  // Starts the services not running yet, in the order added; the first
  // error stops them all.
  absl::Status Start();
  void Stop();
  bool running() const;

  // Every family's lookup; `done` once all have answered, with the peers
  // deduplicated.
  // `found` as DhtService::GetPeers's, from every family.
  void GetPeers(
      Network net, const Key& key,
      std::function<void(std::vector<tcp::endpoint>)> done,
      std::function<void(std::vector<tcp::endpoint>)> found = nullptr);
  // The cluster's closest nodes over every family, closest first, each node
  // ID once (a dual-stack node shares its cluster ID between families), and
  // the providers found.
  void ClosestNodes(const Key& key,
                    std::function<void(std::vector<dht::NodeInfo> nodes,
                                       std::vector<tcp::endpoint> providers)>
                        done);
  // Through the service of `node`'s address family; nullopt if none.
  void Preheat(const dht::NodeInfo& node, std::string content,
               dht::DhtNode::PreheatCallback done);
  // On every family, each with its own port.
  void Provide(Network net, const Key& key);
  void StopProviding(Network net, const Key& key);

  // Summed over the families.
  size_t NumNodes(Network net) const;
  uint64_t Unauthenticated() const;
  bool ClusterReachable() const;

  // The first service (the first listen address's), for its cluster ID.
  DhtService* primary() const {
    return services_.empty() ? nullptr : services_.front().service.get();
  }

 private:
  struct Member {
    std::unique_ptr<DhtService> service;
    uint16_t port = 0;
  };
  std::vector<Member> services_;
};

}  // namespace shoal::node

#endif  // SHOAL_NODE_DHT_GROUP_H_
