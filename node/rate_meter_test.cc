#include "node/rate_meter.h"

#include "gtest/gtest.h"

namespace shoal::node {
namespace {

TEST(RateMeterTest, AveragesTheBytesOfEachTick) {
  RateMeter m;
  EXPECT_EQ(m.rate(), 0);
  m.Add(1000);
  m.Add(1000);
  EXPECT_EQ(m.total(), 2000u);
  EXPECT_EQ(m.Tick(), 2000u);
  EXPECT_DOUBLE_EQ(m.rate(), 400);  // a fifth of the way to 2,000
  // A steady 2,000 a tick: the rate converges on it.
  for (int i = 0; i < 60; ++i) {
    m.Add(2000);
    m.Tick();
  }
  EXPECT_NEAR(m.rate(), 2000, 1);
  // Silence: the rate decays, the total stays.
  for (int i = 0; i < 60; ++i) EXPECT_EQ(m.Tick(), 0u);
  EXPECT_NEAR(m.rate(), 0, 1);
  EXPECT_EQ(m.total(), 2000u + 60 * 2000u);
}

}  // namespace
}  // namespace shoal::node
