// PeerList: the peers a swarm knows of and may dial, and when each may be
// dialed again (libtorrent's peer list, smaller).
//
// Peers come from trackers, the DHT, PEX, LSD, `--peer`, and the listen ports
// that incoming peers give in their extension handshakes. Without a list, a
// swarm dialed what it was given once: peers beyond its free slots were
// forgotten, and a peer that dropped (a restart, a network blip) was not seen
// again until a tracker, the DHT or PEX named it anew (a tracker's interval is
// often 30 minutes).
//
// A peer that could not be reached waits retry_ticks times its failures before
// the next try, and is forgotten at max_failures (libtorrent: 60 s times the
// fail count, 3 failures). One that was connected and went waits
// reconnect_ticks; gone within short_lived_ticks of connecting, that counts as
// a failure (a peer that takes connections only to close them). The list holds
// at most max_size peers; when full, a newcomer replaces the peer with the most
// failures that is not connected, or is dropped.
//
// Sans-I/O, in the swarm's ticks (a second each); not thread-safe (the swarm's
// thread).
#ifndef SHOAL_NODE_PEER_LIST_H_
#define SHOAL_NODE_PEER_LIST_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "base/peer_endpoint.h"

namespace shoal::node {

class PeerList {
 public:
  struct Options {
    size_t max_size = 1000;
    int max_failures = 3;
    uint64_t retry_ticks = 60;
    uint64_t reconnect_ticks = 60;
    uint64_t short_lived_ticks = 10;
  };

  PeerList() : PeerList(Options{}) {}
  explicit PeerList(Options options) : options_(options) {}

  // A peer someone named: dialable at once if new; one already known keeps
  // its state (a tracker naming it again does not undo a failure's wait).
  void Add(const PeerEndpoint& peer, uint64_t now);
  // A dial did not come up (refused, timed out, the handshake failed).
  void Failed(const PeerEndpoint& peer, uint64_t now);
  // A dial was not made, for reasons of ours (a node-wide connection limit):
  // tried again after `wait` ticks, no failure counted.
  void Postpone(const PeerEndpoint& peer, uint64_t now, uint64_t wait);
  // A connection to the peer's listen address is up (ours, or theirs with the
  // listen port they gave): not dialed while it lasts; failures forgotten.
  void Connected(const PeerEndpoint& peer, uint64_t now);
  // That connection went, `seed` if the peer had every piece. Gone within
  // short_lived_ticks of coming up, it counts as a failure. Closed by us for
  // reasons of ours (`ours`: the swarm paused or stopped), it may be dialed
  // again at once.
  void Disconnected(const PeerEndpoint& peer, uint64_t now, bool seed,
                    bool ours = false);
  // Never dialed again (banned, or ourselves).
  void Remove(const PeerEndpoint& peer);

  // Up to `n` peers that may be dialed at `now`: not connected, their wait
  // over, `skip` false for them (banned, already being dialed, or seeds while
  // we seed); fewest failures first, then the longest known.
  std::vector<PeerEndpoint> Due(
      uint64_t now, size_t n,
      const std::function<bool(const PeerEndpoint&, bool seed)>& skip) const;

  size_t size() const { return peers_.size(); }
  bool Contains(const PeerEndpoint& peer) const {
    return peers_.contains(peer);
  }

 private:
  struct Entry {
    uint64_t added = 0;  // an order: the Add()s before it
    uint64_t next_try = 0;
    uint64_t connected_at = 0;
    int failures = 0;
    bool connected = false;
    bool seed = false;
  };

  struct Hash {
    size_t operator()(const PeerEndpoint& p) const;
  };

  const Options options_;
  absl::flat_hash_map<PeerEndpoint, Entry, Hash> peers_;
  uint64_t added_ = 0;
};

}  // namespace shoal::node

#endif  // SHOAL_NODE_PEER_LIST_H_
