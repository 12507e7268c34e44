// RequestQueue: the blocks one peer has been asked for, oldest first, and how
// many it may be asked for at once. Part of the swarm engine's request
// pipeline (node/swarm_download.cc picks the blocks; this keeps the books).
//
// Depth: starts at `min_depth`, grows by one per block that arrives (slow
// start) up to a cap that follows the peer's measured rate: enough blocks to
// cover `queue_seconds` of it, within [min_depth, max_depth] and never above
// the queue the peer says it keeps (BEP 10 `reqq`). With `rtt_cover_rate`
// set and the link's round-trip time known (SetRtt, from the first block on),
// the depth is also at most what that rate moves in two round trips plus
// `rtt_slack_seconds`: enough to keep a link busy, without asking for blocks
// long before they can be taken in (each block that arrives needs memory until
// its piece is stored). A peer a few milliseconds away gets a short queue, one
// far away the usual one.
//
// Snubbing: a peer that has requests out, does not choke us, and sends
// nothing for `snub_ticks` ticks is snubbed: its requests are dropped (the
// caller gives them back to the picker) and it is asked for one block at a
// time until it sends again.
//
// Timeouts: a request older than twice the time the peer's queue should take
// at its rate (and at least 10 ticks) was lost or dropped by the peer; Tick
// hands it back for the caller to cancel and give to anyone.
//
// Pure bookkeeping: no I/O, no clock (ticks come in), no picker.
#ifndef SHOAL_NODE_REQUEST_QUEUE_H_
#define SHOAL_NODE_REQUEST_QUEUE_H_

#include <cstdint>
#include <deque>
#include <optional>
#include <utility>
#include <vector>

#include "chunk/piece_picker.h"

namespace shoal::node {

class RequestQueue {
 public:
  struct Options {
    uint32_t min_depth = 16;
    uint32_t max_depth = 500;
    double queue_seconds = 2.0;
    // 0: no cap from the round-trip time.
    double rtt_cover_rate = 0;  // bytes/s
    double rtt_slack_seconds = 0.01;
    uint64_t snub_ticks = 20;
  };

  explicit RequestQueue(const Options& options)
      : options_(options),
        depth_(options.min_depth),
        depth_cap_(options.max_depth),
        rtt_cap_(options.max_depth) {}

  uint32_t outstanding() const { return static_cast<uint32_t>(sent_.size()); }
  uint32_t depth() const { return depth_; }
  bool snubbed() const { return snubbed_; }
  // How many more blocks it may be asked for now.
  uint32_t room() const {
    return depth_ > outstanding() ? depth_ - outstanding() : 0;
  }

  // The link's round-trip time (0: unknown); see rtt_cover_rate.
  void SetRtt(double rtt_seconds);

  // `b` was requested at `tick`.
  void Sent(const chunk::Block& b, uint64_t tick) {
    sent_.emplace_back(b, tick);
  }
  // `b` arrived: true if it was outstanding. Either way the depth grows by
  // one (a peer that keeps the pipeline full earns a deeper one).
  bool Arrived(const chunk::Block& b);
  // `b` was rejected by the peer, or cancelled by us: true if it was
  // outstanding.
  bool Forget(const chunk::Block& b);
  // Every request is void (the peer choked us without the fast extension, or
  // the swarm restarts).
  void Clear() { sent_.clear(); }

  struct TickResult {
    // It just became snubbed: its requests (now dropped) go back to the
    // picker.
    bool snubbed = false;
    // Requests that timed out, oldest first: to cancel and give back.
    std::vector<chunk::Block> expired;
  };
  // Once a tick (a second). `rate`: its measured download rate (bytes/s),
  // used once it has been connected more than 2 ticks; `got` whether a block
  // arrived since the last tick; `reqq` the queue length it announced.
  TickResult Tick(uint64_t tick, double rate, uint64_t connected_ticks,
                  bool got, bool peer_choking, std::optional<int64_t> reqq,
                  double rtt_seconds = 0);

 private:
  Options options_;
  uint32_t depth_;
  uint32_t depth_cap_;
  // Blocks the round-trip time allows (max_depth when not capped by it).
  uint32_t rtt_cap_;
  bool snubbed_ = false;
  // Ticks with requests out and nothing received.
  uint64_t ticks_waiting_ = 0;
  // Requests out, oldest first, with the tick each was sent.
  std::deque<std::pair<chunk::Block, uint64_t>> sent_;
};

}  // namespace shoal::node

#endif  // SHOAL_NODE_REQUEST_QUEUE_H_
