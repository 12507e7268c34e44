#include "node/super_seeder.h"

#include <algorithm>
#include <utility>

namespace shoal::node {

SuperSeeder::SuperSeeder(uint32_t num_pieces,
                         std::function<uint64_t(uint32_t)> piece_size,
                         const std::function<uint64_t()>& random, bool strict)
    : num_pieces_(num_pieces),
      piece_size_(std::move(piece_size)),
      schedule_(num_pieces, random),
      strict_(strict) {}

SuperSeeder::PeerState& SuperSeeder::StateOf(PeerKey peer, uint64_t tick) {
  auto [it, added] = peers_.try_emplace(peer);
  if (added) {
    it->second.last_new_piece_tick = tick;
    it->second.first_tick = tick;
    it->second.slow_start = piece_size_(0);
  }
  return it->second;
}

std::vector<uint32_t> SuperSeeder::RevealMore(
    PeerKey peer, const chunk::Bitfield& has, double rate, uint64_t tick,
    const std::function<uint32_t(uint32_t)>& copies) {
  std::vector<uint32_t> out;
  if (num_pieces_ == 0) return out;
  PeerState& p = StateOf(peer, tick);
  last_tick_ = tick;
  if (strict_) {
    // One piece at a time, the next once the last was shared (or after a
    // wait: a lone peer shares with nobody).
    if (p.bytes_left > 0) return out;
    if (!p.unspread.empty() && tick < p.sent_tick + kStrictWaitTicks)
      return out;
    p.unspread.clear();
    const auto skip = [&](uint32_t i) {
      return has.size() == num_pieces_ && has.test(i);
    };
    if (const std::optional<uint32_t> next = schedule_.Next(skip)) {
      p.left[*next] = piece_size_(*next);
      p.bytes_left += piece_size_(*next);
      out.push_back(*next);
    }
    return out;
  }
  // A second of its rate, and at least one piece: enough to keep its request
  // pipeline going across a round trip, and no more (what is shown to one
  // peer is not shown to the others; in the simulation a window of two pieces
  // made the origin send 1.40x the content, one piece 1.11x). Until its
  // rate has been measured over a tick or two, the window of a peer of an
  // origin with few peers grows by a piece for each piece sent (doubling
  // each round trip, as TCP's slow start): a one-piece window moved 6 MB/s
  // to a lone libtorrent leecher on loopback for its first seconds (256 MiB
  // in 4.0 s; 1.5 s with slow start). With many peers our uplink is what
  // limits each, and wider windows cost the fan-out (100 nodes in the
  // simulation: ratio 1.26 against 1.18).
  uint64_t want =
      std::max<uint64_t>(piece_size_(0), static_cast<uint64_t>(rate));
  if (tick < p.first_tick + kSlowStartTicks && peers_.size() <= kSlowStartPeers)
    want = std::max(want, p.slow_start);
  if (p.bytes_left >= want) return out;
  const bool repeat = schedule_.round() >= 1;
  const bool starving = tick >= p.last_new_piece_tick + 2;
  // Pieces being sent to the other peers count as copies.
  std::vector<uint32_t> on_the_way;
  if (repeat && !starving) {
    for (const auto& [key, q] : peers_) {
      if (key == peer) continue;
      for (const auto& [i, left] : q.left) on_the_way.push_back(i);
      on_the_way.insert(on_the_way.end(), q.delivered.begin(),
                        q.delivered.end());
    }
    std::sort(on_the_way.begin(), on_the_way.end());
  }
  const auto skip = [&](uint32_t i) {
    return p.left.contains(i) || p.delivered.contains(i) ||
           (has.size() == num_pieces_ && has.test(i));
  };
  const auto all_copies = [&](uint32_t i) -> uint32_t {
    const auto [lo, hi] =
        std::equal_range(on_the_way.begin(), on_the_way.end(), i);
    return copies(i) + static_cast<uint32_t>(hi - lo);
  };
  // A lone peer (no other to trade with) is shown the pieces in order: a
  // reader on it streams the content as it arrives instead of waiting for
  // the random order to fill in the start (`shoal cat --peer` of 1 GiB sent
  // its first bytes after 4-5 s of a 5.5 s fetch).
  const bool lone = peers_.size() == 1;
  while (p.bytes_left < want) {
    const std::optional<uint32_t> next =
        repeat && !starving ? schedule_.NextUncopied(skip, all_copies)
        : lone              ? schedule_.NextInIndexOrder(skip)
                            : schedule_.Next(skip);
    if (!next) break;
    const uint64_t size = piece_size_(*next);
    p.left[*next] = size;
    p.bytes_left += size;
    out.push_back(*next);
  }
  return out;
}

bool SuperSeeder::Sent(PeerKey peer, uint32_t piece, uint64_t bytes) {
  auto pit = peers_.find(peer);
  if (pit == peers_.end()) return false;
  PeerState& p = pit->second;
  auto it = p.left.find(piece);
  if (it == p.left.end()) return false;
  const uint64_t n = std::min(bytes, it->second);
  it->second -= n;
  p.bytes_left -= n;
  if (it->second > 0) return false;
  p.left.erase(it);
  p.delivered.insert(piece);
  p.slow_start += piece_size_(piece);
  if (strict_) {
    p.unspread.insert(piece);
    p.sent_tick = last_tick_;
    return false;  // the next waits until another peer has this one
  }
  return true;
}

bool SuperSeeder::Announced(PeerKey peer, uint32_t piece, uint64_t tick) {
  if (strict_) {
    for (auto& [key, q] : peers_) {
      if (key == peer || q.unspread.erase(piece) == 0) continue;
      if (q.unspread.empty() && q.bytes_left == 0) ready_.push_back(key);
    }
  }
  PeerState& p = StateOf(peer, tick);
  p.last_new_piece_tick = tick;
  p.delivered.erase(piece);
  auto it = p.left.find(piece);
  if (it == p.left.end()) return false;
  p.bytes_left -= it->second;
  p.left.erase(it);
  return true;
}

void SuperSeeder::PeerGone(PeerKey peer) {
  auto it = peers_.find(peer);
  if (it == peers_.end()) return;
  for (const auto& [piece, left] : it->second.left)
    if (left == piece_size_(piece)) schedule_.Unreveal(piece);
  peers_.erase(it);
}

std::vector<SuperSeeder::PeerKey> SuperSeeder::TakeReady() {
  std::vector<PeerKey> out;
  out.swap(ready_);
  return out;
}

uint64_t SuperSeeder::bytes_left(PeerKey peer) const {
  auto it = peers_.find(peer);
  return it == peers_.end() ? 0 : it->second.bytes_left;
}

}  // namespace shoal::node
