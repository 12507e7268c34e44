#include "node/peer_list.h"

#include <algorithm>
#include <string_view>
#include <tuple>

#include "absl/hash/hash.h"

namespace shoal::node {

size_t PeerList::Hash::operator()(const PeerEndpoint& p) const {
  return absl::Hash<std::tuple<int, std::string_view, uint16_t>>{}(
      {static_cast<int>(p.family), p.AddressBytes(), p.port});
}

void PeerList::Add(const PeerEndpoint& peer, uint64_t now) {
  if (peer.port == 0 || peers_.contains(peer)) return;
  if (peers_.size() >= options_.max_size) {
    // Full: the unconnected peer with the most failures (the oldest of
    // those) makes room, if it has failed more than a newcomer has.
    auto worst = peers_.end();
    for (auto it = peers_.begin(); it != peers_.end(); ++it) {
      if (it->second.connected) continue;
      if (worst == peers_.end() ||
          it->second.failures > worst->second.failures ||
          (it->second.failures == worst->second.failures &&
           it->second.added < worst->second.added)) {
        worst = it;
      }
    }
    if (worst == peers_.end() || worst->second.failures == 0) return;
    peers_.erase(worst);
  }
  Entry e;
  e.added = added_++;
  e.next_try = now;
  peers_.emplace(peer, e);
}

void PeerList::Failed(const PeerEndpoint& peer, uint64_t now) {
  auto it = peers_.find(peer);
  if (it == peers_.end()) return;
  Entry& e = it->second;
  e.connected = false;
  if (++e.failures >= options_.max_failures) {
    peers_.erase(it);
    return;
  }
  e.next_try = now + options_.retry_ticks * static_cast<uint64_t>(e.failures);
}

void PeerList::Postpone(const PeerEndpoint& peer, uint64_t now, uint64_t wait) {
  auto it = peers_.find(peer);
  if (it != peers_.end()) it->second.next_try = now + wait;
}

void PeerList::Connected(const PeerEndpoint& peer, uint64_t now) {
  auto it = peers_.find(peer);
  if (it == peers_.end()) {
    Add(peer, now);
    it = peers_.find(peer);
    if (it == peers_.end()) return;  // full of peers that never failed
  }
  it->second.connected = true;
  it->second.connected_at = now;
}

void PeerList::Disconnected(const PeerEndpoint& peer, uint64_t now, bool seed,
                            bool ours) {
  auto it = peers_.find(peer);
  if (it == peers_.end() || !it->second.connected) return;
  Entry& e = it->second;
  e.seed = seed;
  if (ours) {
    e.connected = false;
    e.next_try = now;
    return;
  }
  if (now - e.connected_at < options_.short_lived_ticks) {
    Failed(peer, now);
    return;
  }
  e.connected = false;
  e.failures = 0;
  e.next_try = now + options_.reconnect_ticks;
}

void PeerList::Remove(const PeerEndpoint& peer) { peers_.erase(peer); }

std::vector<PeerEndpoint> PeerList::Due(
    uint64_t now, size_t n,
    const std::function<bool(const PeerEndpoint&, bool seed)>& skip) const {
  std::vector<std::pair<const PeerEndpoint*, const Entry*>> due;
  if (n == 0) return {};
  for (const auto& [peer, e] : peers_) {
    if (e.connected || e.next_try > now || skip(peer, e.seed)) continue;
    due.emplace_back(&peer, &e);
  }
  const size_t k = std::min(n, due.size());
  std::partial_sort(due.begin(), due.begin() + static_cast<ptrdiff_t>(k),
                    due.end(), [](const auto& a, const auto& b) {
                      if (a.second->failures != b.second->failures)
                        return a.second->failures < b.second->failures;
                      return a.second->added < b.second->added;
                    });
  std::vector<PeerEndpoint> out;
  out.reserve(k);
  for (size_t i = 0; i < k; ++i) out.push_back(*due[i].first);
  return out;
}

}  // namespace shoal::node
