// LEDBAT (RFC 6817), the delay-based congestion control of µTP (BEP 29): the
// window grows while the queueing delay the peer measures on our packets is
// under the 100 ms target and shrinks above it, so µTP yields to TCP on a
// shared link; a loss halves it, a timeout drops it to one packet. Sans-I/O:
// the connection reports acks, delay samples, losses and timeouts.
//
//   Ledbat cc(/*mss=*/1380);
//   cc.OnDelaySample(header.timestamp_diff_us, now_us);
//   cc.OnAck(bytes_acked, window_was_full, now_us);
//   if (in_flight + size <= cc.window()) send...
#ifndef SHOAL_UTP_LEDBAT_H_
#define SHOAL_UTP_LEDBAT_H_

#include <array>
#include <cstddef>
#include <cstdint>

namespace shoal::utp {

inline constexpr uint32_t kTargetDelayUs = 100'000;

class Ledbat {
 public:
  // `mss` is the largest payload of a packet: the window never goes below
  // it, and a timeout sets it there. `max_window` caps it.
  explicit Ledbat(size_t mss, size_t max_window = 4 << 20);

  // A delay sample: the peer's timestamp_difference_microseconds for one of
  // our packets (0, "no sample yet", is ignored). Clocks are not
  // synchronised; only the difference from the smallest sample of the last
  // two minutes (the base delay) counts.
  void OnDelaySample(uint32_t sample_us, uint64_t now_us);
  // `bytes` of payload newly acknowledged. `window_full`: a send waited on
  // the window since the last ack (the window only grows when it is what
  // limits the sender).
  void OnAck(size_t bytes, bool window_full);
  // A packet was lost (three later ones acked): the window halves, once per
  // round trip (the connection calls it once per window of packets).
  void OnLoss();
  // No ack for a retransmission timeout: one packet.
  void OnTimeout();

  size_t window() const { return static_cast<size_t>(window_); }
  // The queueing delay last measured (the newest sample minus the base).
  uint32_t queuing_delay_us() const { return our_delay_us_; }
  bool slow_start() const { return slow_start_; }

 private:
  // Base delay: the minimum sample of each of the last minutes.
  static constexpr uint64_t kBucketUs = 60'000'000;
  static constexpr size_t kBuckets = 3;
  // Bytes the window grows per round trip at zero queueing delay (libutp's
  // MAX_CWND_INCREASE_BYTES_PER_RTT).
  static constexpr double kGain = 3000;

  uint32_t BaseDelay() const;

  const double mss_;
  const double max_window_;
  double window_;
  bool slow_start_ = true;
  bool have_sample_ = false;
  uint32_t our_delay_us_ = 0;
  std::array<uint32_t, kBuckets> base_{};
  std::array<bool, kBuckets> base_set_{};
  uint64_t bucket_start_us_ = 0;
  size_t bucket_ = 0;
};

}  // namespace shoal::utp

#endif  // SHOAL_UTP_LEDBAT_H_
