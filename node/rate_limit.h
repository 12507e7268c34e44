// RateLimit: a token bucket limiting bytes per second (a torrent's or the
// node's, upload or download). Peer connections take tokens before they read
// or write, so a limited transfer slows at the socket: the sender sees TCP
// back-pressure and no buffer grows.
//
// Network thread only. Shared (shared_ptr) between a swarm or the session and
// the connections it limits, which may outlive it briefly.
#ifndef SHOAL_NODE_RATE_LIMIT_H_
#define SHOAL_NODE_RATE_LIMIT_H_

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <limits>

namespace shoal::node {

class RateLimit {
 public:
  using Clock = std::chrono::steady_clock;

  // 0: unlimited.
  void set_rate(uint64_t bytes_per_second) {
    rate_ = bytes_per_second;
    tokens_ = std::min(tokens_, static_cast<double>(Burst()));
    last_ = Clock::now();
  }
  uint64_t rate() const { return rate_; }

  // Bytes that may pass now.
  size_t Available() {
    if (rate_ == 0) return std::numeric_limits<size_t>::max();
    Refill();
    return tokens_ > 0 ? static_cast<size_t>(tokens_) : 0;
  }

  // Takes `n` bytes (after a read or write that moved them).
  void Consume(size_t n) {
    if (rate_ == 0) return;
    Refill();
    tokens_ -= static_cast<double>(n);
  }

  // How long until about `n` bytes are available (0 if they are).
  Clock::duration Wait(size_t n) {
    if (rate_ == 0) return Clock::duration::zero();
    Refill();
    const double missing = static_cast<double>(n) - tokens_;
    if (missing <= 0) return Clock::duration::zero();
    return std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(missing / static_cast<double>(rate_)));
  }

 private:
  // A tenth of a second's worth, and at least a block with its header, so a
  // limited peer still moves whole blocks.
  uint64_t Burst() const {
    return std::max<uint64_t>(rate_ / 10, 16 * 1024 + 13);
  }

  void Refill() {
    const auto now = Clock::now();
    const double secs = std::chrono::duration<double>(now - last_).count();
    last_ = now;
    tokens_ = std::min(tokens_ + secs * static_cast<double>(rate_),
                       static_cast<double>(Burst()));
  }

  uint64_t rate_ = 0;
  double tokens_ = 0;
  Clock::time_point last_ = Clock::now();
};

}  // namespace shoal::node

#endif  // SHOAL_NODE_RATE_LIMIT_H_
