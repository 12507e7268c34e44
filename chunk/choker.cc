#include "chunk/choker.h"

#include <algorithm>
#include <tuple>
#include <utility>

namespace shoal::chunk {
namespace {

// Peers connected for less than this are "new" for the optimistic unchoke.
constexpr int64_t kNewPeerMs = 60'000;
constexpr uint64_t kNewPeerWeight = 3;

}  // namespace

Choker::Choker(const ChokerOptions& options, std::function<uint64_t()> random)
    : options_(options), random_(std::move(random)) {
  options_.optimistic_every = std::max(options_.optimistic_every, 1);
  options_.seed_rotation_rounds = std::max(options_.seed_rotation_rounds, 1);
}

std::vector<PeerKey> Choker::Rechoke(const std::vector<ChokePeer>& peers,
                                     bool seeding) {
  ++round_;
  std::vector<PeerKey> unchoke;

  // Trusted peers first: always unchoked, outside the slot count.
  std::vector<const ChokePeer*> candidates;
  for (const ChokePeer& p : peers) {
    if (p.trusted) {
      unchoke.push_back(p.key);
    } else if (p.interested && (seeding || !p.snubbed)) {
      candidates.push_back(&p);
    }
  }

  // A random order first, so that equal ranks fall at random.
  for (size_t i = candidates.size(); i > 1; --i) {
    std::swap(candidates[i - 1], candidates[random_() % i]);
  }
  // seed_turns_ is sorted by key.
  auto turns_of = [&](PeerKey key) {
    auto it = std::lower_bound(seed_turns_.begin(), seed_turns_.end(), key,
                               [](const std::pair<PeerKey, int>& e, PeerKey k) {
                                 return e.first < k;
                               });
    return it != seed_turns_.end() && it->first == key ? it->second : 0;
  };
  std::vector<int> turns(candidates.size());
  for (size_t i = 0; i < candidates.size(); ++i) {
    turns[i] = seeding ? turns_of(candidates[i]->key) : 0;
  }
  std::vector<size_t> order(candidates.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  if (seeding) {
    // Rotation: holders keep their slot for seed_rotation_rounds, then the
    // peers that have waited longest take over, and the peers whose turn is
    // over go last. Within each group the fastest downloaders from us first.
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      auto key = [&](size_t i) {
        int t = turns[i];
        int group = t > 0 ? (t < options_.seed_rotation_rounds ? 0 : 2) : 1;
        return std::tuple(group, group == 1 ? t : 0,
                          -candidates[i]->upload_rate);
      };
      return key(a) < key(b);
    });
  } else {
    // Tit-for-tat: fastest downloads first; at equal rates keep the peers
    // already unchoked, to avoid churn.
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      return std::tuple(-candidates[a]->download_rate, candidates[a]->choked) <
             std::tuple(-candidates[b]->download_rate, candidates[b]->choked);
    });
  }
  size_t regular =
      options_.slots < 0
          ? candidates.size()
          : std::min(candidates.size(), static_cast<size_t>(options_.slots));

  // Seeding: count rounds held (> 0) and waited (< 0) for the rotation.
  std::vector<std::pair<PeerKey, int>> next_turns;
  std::vector<PeerKey> regular_keys;
  for (size_t r = 0; r < order.size(); ++r) {
    size_t i = order[r];
    if (r < regular) {
      unchoke.push_back(candidates[i]->key);
      regular_keys.push_back(candidates[i]->key);
    }
    if (seeding) {
      int t = turns[i];
      next_turns.emplace_back(candidates[i]->key, r < regular
                                                      ? std::max(t, 0) + 1
                                                      : std::min(t, 0) - 1);
    }
  }
  std::sort(next_turns.begin(), next_turns.end());
  seed_turns_ = std::move(next_turns);
  std::sort(regular_keys.begin(), regular_keys.end());

  // Optimistic unchoke: among interested peers left choked by the regular
  // slots (snubbed ones included: this is their chance).
  auto in_regular = [&](PeerKey key) {
    return std::binary_search(regular_keys.begin(), regular_keys.end(), key);
  };
  bool current_valid = false;
  if (has_optimistic_) {
    for (const ChokePeer& p : peers) {
      if (p.key == optimistic_ && p.interested && !p.trusted &&
          !in_regular(p.key)) {
        current_valid = true;
      }
    }
  }
  bool rotate = (round_ - 1) % options_.optimistic_every == 0;
  if (rotate || !current_valid) {
    std::vector<std::pair<PeerKey, uint64_t>> pool;
    uint64_t total = 0;
    for (const ChokePeer& p : peers) {
      if (!p.interested || p.trusted ||
          (has_optimistic_ && p.key == optimistic_) || in_regular(p.key)) {
        continue;
      }
      uint64_t weight = p.connected_for_ms < kNewPeerMs ? kNewPeerWeight : 1;
      pool.emplace_back(p.key, weight);
      total += weight;
    }
    if (total > 0) {
      uint64_t r = random_() % total;
      for (const auto& [key, weight] : pool) {
        if (r < weight) {
          optimistic_ = key;
          break;
        }
        r -= weight;
      }
      has_optimistic_ = true;
      current_valid = true;
    }
  }
  if (current_valid) {
    unchoke.push_back(optimistic_);
  } else {
    has_optimistic_ = false;
    optimistic_ = 0;
  }
  return unchoke;
}

}  // namespace shoal::chunk
