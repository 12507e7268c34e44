#include "node/request_queue.h"

#include <algorithm>

namespace shoal::node {

bool RequestQueue::Forget(const chunk::Block& b) {
  auto it = std::find_if(sent_.begin(), sent_.end(),
                         [&](const auto& s) { return s.first == b; });
  if (it == sent_.end()) return false;
  sent_.erase(it);
  return true;
}

bool RequestQueue::Arrived(const chunk::Block& b) {
  const bool was_out = Forget(b);
  if (depth_ < depth_cap_) ++depth_;
  return was_out;
}

void RequestQueue::SetRtt(double rtt_seconds) {
  if (options_.rtt_cover_rate <= 0 || rtt_seconds <= 0) return;
  const double blocks = options_.rtt_cover_rate *
                        (2 * rtt_seconds + options_.rtt_slack_seconds) /
                        chunk::kBlockLength;
  rtt_cap_ = static_cast<uint32_t>(
      std::clamp<double>(blocks, options_.min_depth, options_.max_depth));
  depth_cap_ = std::min(depth_cap_, rtt_cap_);
  depth_ = std::min(depth_, depth_cap_);
}

RequestQueue::TickResult RequestQueue::Tick(uint64_t tick, double rate,
                                            uint64_t connected_ticks, bool got,
                                            bool peer_choking,
                                            std::optional<int64_t> reqq,
                                            double rtt_seconds) {
  TickResult r;
  SetRtt(rtt_seconds);
  if (connected_ticks > 2 && rate > 0) {
    const double blocks = rate * options_.queue_seconds / chunk::kBlockLength;
    depth_cap_ = std::min(rtt_cap_,
                          static_cast<uint32_t>(std::clamp<double>(
                              blocks, options_.min_depth, options_.max_depth)));
    if (reqq && *reqq > 0)
      depth_cap_ = static_cast<uint32_t>(
          std::min<int64_t>(depth_cap_, std::min<int64_t>(*reqq, UINT32_MAX)));
    depth_ = std::min(depth_, depth_cap_);
  }
  if (!sent_.empty() && !peer_choking && !got) {
    if (++ticks_waiting_ >= options_.snub_ticks && !snubbed_) {
      snubbed_ = true;
      sent_.clear();
      depth_ = 1;
      r.snubbed = true;
      return r;
    }
  } else if (got) {
    ticks_waiting_ = 0;
    if (snubbed_) {
      snubbed_ = false;
      depth_ = options_.min_depth;
    }
  }
  if (!sent_.empty() && !snubbed_) {
    const double per_second = std::max(rate, 1.0);
    const uint64_t limit =
        10 + static_cast<uint64_t>(2.0 * outstanding() * chunk::kBlockLength /
                                   per_second);
    while (!sent_.empty() && tick - sent_.front().second > limit) {
      r.expired.push_back(sent_.front().first);
      sent_.pop_front();
    }
  }
  return r;
}

}  // namespace shoal::node
