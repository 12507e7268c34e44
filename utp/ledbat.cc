#include "utp/ledbat.h"

#include <algorithm>

namespace shoal::utp {
namespace {

// Timestamps wrap at 2^32 µs (71 minutes): compare by signed difference.
bool DelayLess(uint32_t a, uint32_t b) {
  return static_cast<int32_t>(a - b) < 0;
}

}  // namespace

Ledbat::Ledbat(size_t mss, size_t max_window)
    : mss_(static_cast<double>(mss)),
      max_window_(static_cast<double>(std::max(max_window, mss))),
      // Two packets to start, as TCP's initial window.
      window_(2 * static_cast<double>(mss)) {}

uint32_t Ledbat::BaseDelay() const {
  uint32_t base = 0;
  bool any = false;
  for (size_t i = 0; i < kBuckets; ++i) {
    if (!base_set_[i]) continue;
    if (!any || DelayLess(base_[i], base)) base = base_[i];
    any = true;
  }
  return base;
}

void Ledbat::OnDelaySample(uint32_t sample_us, uint64_t now_us) {
  if (sample_us == 0) return;
  if (!have_sample_) {
    bucket_start_us_ = now_us;
    have_sample_ = true;
  } else if (now_us - bucket_start_us_ >= kBucketUs) {
    bucket_ = (bucket_ + 1) % kBuckets;
    base_set_[bucket_] = false;
    bucket_start_us_ = now_us;
  }
  if (!base_set_[bucket_] || DelayLess(sample_us, base_[bucket_])) {
    base_[bucket_] = sample_us;
    base_set_[bucket_] = true;
  }
  our_delay_us_ = sample_us - BaseDelay();
}

void Ledbat::OnAck(size_t bytes, bool window_full) {
  if (bytes == 0) return;
  const double acked = static_cast<double>(bytes);
  const double delay_factor =
      (static_cast<double>(kTargetDelayUs) - our_delay_us_) / kTargetDelayUs;
  const double window_factor =
      std::min(acked, window_) / std::max(window_, acked);
  double gain = kGain * delay_factor * window_factor;
  if (slow_start_) {
    // Exponential growth while the queue stays under half the target.
    if (our_delay_us_ > kTargetDelayUs / 2) {
      slow_start_ = false;
    } else {
      gain = std::max(gain, acked);
    }
  }
  // An application that does not fill the window learns nothing about the
  // path: no growth then (RFC 7661).
  if (gain > 0 && !window_full) return;
  window_ = std::clamp(window_ + gain, mss_, max_window_);
}

void Ledbat::OnLoss() {
  slow_start_ = false;
  window_ = std::max(window_ / 2, mss_);
}

void Ledbat::OnTimeout() {
  slow_start_ = false;
  window_ = mss_;
}

}  // namespace shoal::utp
