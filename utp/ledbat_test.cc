#include "utp/ledbat.h"

#include "gtest/gtest.h"

namespace shoal::utp {
namespace {

constexpr size_t kMss = 1374;

TEST(LedbatTest, SlowStartDoublesAWindowPerRoundTripAtNoDelay) {
  Ledbat cc(kMss);
  cc.OnDelaySample(50'000, 0);  // the base
  const size_t start = cc.window();
  cc.OnAck(start, /*window_full=*/true);
  EXPECT_GE(cc.window(), 2 * start);
  EXPECT_TRUE(cc.slow_start());
}

TEST(LedbatTest, GrowsBelowTheTargetAndShrinksAboveIt) {
  Ledbat cc(kMss);
  cc.OnDelaySample(1'000'000, 0);
  for (int i = 0; i < 5; ++i) cc.OnAck(cc.window(), true);
  // 70 ms of queueing ends slow start; the window still grows.
  cc.OnDelaySample(1'070'000, 1000);
  const size_t before = cc.window();
  cc.OnAck(before, true);
  EXPECT_FALSE(cc.slow_start());
  EXPECT_GT(cc.window(), before);
  EXPECT_LT(cc.window(), before + 3000);
  // 200 ms: past the target, it shrinks, by up to 3,000 bytes a window.
  cc.OnDelaySample(1'200'000, 2000);
  const size_t high = cc.window();
  cc.OnAck(high, true);
  EXPECT_LT(cc.window(), high);
  EXPECT_GE(cc.window(), high - 3000);
  EXPECT_EQ(cc.queuing_delay_us(), 200'000u);
}

TEST(LedbatTest, NeverBelowOnePacket) {
  Ledbat cc(kMss);
  cc.OnDelaySample(1000, 0);
  cc.OnDelaySample(10'000'000, 1);  // ten seconds of queue
  for (int i = 0; i < 1000; ++i) cc.OnAck(kMss, true);
  EXPECT_EQ(cc.window(), kMss);
}

TEST(LedbatTest, LossHalvesTimeoutResets) {
  Ledbat cc(kMss);
  cc.OnDelaySample(1000, 0);
  for (int i = 0; i < 6; ++i) cc.OnAck(cc.window(), true);
  const size_t w = cc.window();
  cc.OnLoss();
  EXPECT_EQ(cc.window(), w / 2);
  EXPECT_FALSE(cc.slow_start());
  cc.OnTimeout();
  EXPECT_EQ(cc.window(), kMss);
}

TEST(LedbatTest, AnIdleSenderDoesNotGrowItsWindow) {
  Ledbat cc(kMss);
  cc.OnDelaySample(1000, 0);
  const size_t w = cc.window();
  for (int i = 0; i < 10; ++i) cc.OnAck(kMss, /*window_full=*/false);
  EXPECT_EQ(cc.window(), w);
}

TEST(LedbatTest, BaseDelayForgetsOldMinimaAfterTwoMinutes) {
  Ledbat cc(kMss);
  cc.OnDelaySample(1000, 0);  // a low sample, then the path gets longer
  uint64_t now = 0;
  for (int i = 0; i < 4; ++i) {
    now += 61'000'000;
    cc.OnDelaySample(80'000, now);
  }
  EXPECT_EQ(cc.queuing_delay_us(), 0u);
}

TEST(LedbatTest, SamplesWrapAround) {
  Ledbat cc(kMss);
  cc.OnDelaySample(0xffffff00u, 0);
  cc.OnDelaySample(0x00000100u, 1);  // 512 µs later, past the wrap
  EXPECT_EQ(cc.queuing_delay_us(), 512u);
}

}  // namespace
}  // namespace shoal::utp
