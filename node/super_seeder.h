// SuperSeeder: which pieces an origin that super-seeds (SwarmOptions::
// super_seed, BEP 16 for trusted peers) shows each peer, so that it sends
// each piece about once and the fetchers trade the rest. Part of the swarm
// engine's uploads (node/swarm_upload.cc serves the blocks; this keeps the
// books).
//
// Contract:
//   - A peer is shown pieces (as haves) a few at a time: until the bytes
//     shown and not yet sent to it cover a second of the rate we send it at,
//     and at least one piece. In its first two ticks, while that rate is
//     still unknown, and while we show pieces to at most three peers, the
//     window starts at one piece and grows by each piece all sent to it
//     (slow start: what holds a lone peer back is the round trip; when our
//     uplink is shared by many, a wider window only queues pieces that
//     others could have had first). When a shown piece is all sent, or the peer
//     announces it got it elsewhere, the caller asks for more.
//   - First round: every piece is shown once, in a random order, before any
//     piece twice (chunk::RevealSchedule); a peer is never shown a piece it
//     has or was shown.
//   - After the first round, a piece is shown again only if none of our peers
//     holds it (the caller's count) or is being sent it by us, or was sent
//     it all and has not announced it yet: the rest is on its way through the
//     swarm. A peer that announced no new piece for two
//     ticks may be cut off from the copies, and is shown the schedule's next
//     piece regardless, so that nobody starves.
//   - A piece shown to a peer that leaves before any of it was sent counts
//     as never shown.
//
//   - Strict mode (BEP 16, for a torrent's untrusted peers): one piece at a
//     time, and a peer sent a piece whole is shown the next only once another
//     peer announces that piece (it was shared, not hoarded: TakeReady says
//     who), or after kStrictWaitTicks ticks (a lone peer has nobody to share
//     with).
//
// Pure bookkeeping: no I/O, no clock (ticks come in), no picker.
#ifndef SHOAL_NODE_SUPER_SEEDER_H_
#define SHOAL_NODE_SUPER_SEEDER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <vector>

#include "chunk/bitfield.h"
#include "chunk/reveal_schedule.h"

namespace shoal::node {

class SuperSeeder {
 public:
  using PeerKey = uint64_t;

  // `piece_size(i)`: the bytes of piece i. `random` orders the first round.
  SuperSeeder(uint32_t num_pieces, std::function<uint64_t(uint32_t)> piece_size,
              const std::function<uint64_t()>& random, bool strict = false);

  // The pieces to show `peer` now, in order. `has`: what it announced (empty
  // while unknown); `rate`: bytes/s we send it; `tick`: the swarm's tick;
  // `copies(i)`: how many of our peers hold piece i.
  std::vector<uint32_t> RevealMore(
      PeerKey peer, const chunk::Bitfield& has, double rate, uint64_t tick,
      const std::function<uint32_t(uint32_t)>& copies);
  // `bytes` of `piece` went to `peer`. True if a piece shown to it is now all
  // sent (show it more).
  bool Sent(PeerKey peer, uint32_t piece, uint64_t bytes);
  // `peer` announced `piece`, new to it, at `tick`. True if it was shown the
  // piece and not sent all of it (it got it elsewhere: show it more).
  bool Announced(PeerKey peer, uint32_t piece, uint64_t tick);
  // `peer` left.
  void PeerGone(PeerKey peer);
  // Strict mode: the peers whose last piece another peer has announced since
  // the last call (show them more).
  std::vector<PeerKey> TakeReady();

  // Bytes shown to `peer` and not yet sent.
  uint64_t bytes_left(PeerKey peer) const;
  const chunk::RevealSchedule& schedule() const { return schedule_; }

 private:
  struct PeerState {
    std::map<uint32_t, uint64_t> left;  // shown piece -> bytes not yet sent
    // Pieces all sent that it has not announced yet: on their way still
    // (its downlink, its hashing, the round trip of its `have`).
    std::set<uint32_t> delivered;
    uint64_t bytes_left = 0;
    uint64_t last_new_piece_tick = 0;
    uint64_t first_tick = 0;  // when we first showed it something
    uint64_t slow_start = 0;  // the window while its rate is unknown
    // Strict mode: pieces sent whole that no other peer has announced yet,
    // and the tick the last of them was sent.
    std::set<uint32_t> unspread;
    uint64_t sent_tick = 0;
  };
  static constexpr uint64_t kStrictWaitTicks = 10;
  // How long a new peer's window grows by what it is sent.
  static constexpr uint64_t kSlowStartTicks = 2;
  static constexpr size_t kSlowStartPeers = 3;
  PeerState& StateOf(PeerKey peer, uint64_t tick);

  const uint32_t num_pieces_;
  const std::function<uint64_t(uint32_t)> piece_size_;
  chunk::RevealSchedule schedule_;
  const bool strict_;
  std::map<PeerKey, PeerState> peers_;
  std::vector<PeerKey> ready_;
  uint64_t last_tick_ = 0;
};

}  // namespace shoal::node

#endif  // SHOAL_NODE_SUPER_SEEDER_H_
