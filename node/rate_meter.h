// RateMeter: a byte counter and its rate, an exponential average over about
// five ticks (a tick is a second in the swarm engine). Used for a swarm's
// payload totals and for each peer's.
#ifndef SHOAL_NODE_RATE_METER_H_
#define SHOAL_NODE_RATE_METER_H_

#include <cstdint>

namespace shoal::node {

class RateMeter {
 public:
  void Add(uint64_t bytes) { total_ += bytes; }
  uint64_t total() const { return total_; }
  // Bytes per tick; 0 until the first Tick.
  double rate() const { return rate_; }
  // Once a tick: folds the bytes counted since the last tick into the rate,
  // and returns them.
  uint64_t Tick() {
    const uint64_t delta = total_ - at_last_tick_;
    at_last_tick_ = total_;
    rate_ += kAlpha * (static_cast<double>(delta) - rate_);
    return delta;
  }

 private:
  static constexpr double kAlpha = 0.2;
  uint64_t total_ = 0;
  uint64_t at_last_tick_ = 0;
  double rate_ = 0;
};

}  // namespace shoal::node

#endif  // SHOAL_NODE_RATE_METER_H_
