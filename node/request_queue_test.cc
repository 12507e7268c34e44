#include "node/request_queue.h"

#include "gtest/gtest.h"

namespace shoal::node {
namespace {

constexpr uint32_t kB = chunk::kBlockLength;

RequestQueue::Options Opts() {
  return {
      .min_depth = 4, .max_depth = 64, .queue_seconds = 2.0, .snub_ticks = 3};
}

chunk::Block B(uint32_t i) { return {i / 4, (i % 4) * kB, kB}; }

TEST(RequestQueueTest, SlowStartUpToTheCapItsRateEarns) {
  RequestQueue q(Opts());
  EXPECT_EQ(q.room(), 4u);
  for (uint32_t i = 0; i < 4; ++i) q.Sent(B(i), 0);
  EXPECT_EQ(q.room(), 0u);
  EXPECT_EQ(q.outstanding(), 4u);
  EXPECT_TRUE(q.Arrived(B(0)));
  EXPECT_EQ(q.depth(), 5u);  // one more per block that arrives
  EXPECT_EQ(q.room(), 2u);
  // 10 blocks a second for 2 s: a cap of 20.
  q.Tick(1, 10.0 * kB, /*connected_ticks=*/3, /*got=*/true, false, {});
  for (uint32_t i = 4; i < 100; ++i) {
    q.Sent(B(i), 1);
    q.Arrived(B(i));
  }
  EXPECT_EQ(q.depth(), 20u);
  // A peer that says it queues 8 caps it lower.
  q.Tick(2, 10.0 * kB, 4, true, false, int64_t{8});
  EXPECT_EQ(q.depth(), 8u);
}

// With rtt_cover_rate: a near peer's queue is capped by its round-trip time
// from the first block (before any rate is measured), a far one's is not, and
// an unknown round-trip time caps nothing.
TEST(RequestQueueTest, RoundTripTimeCapsTheQueueOfANearPeer) {
  RequestQueue::Options o = Opts();
  o.max_depth = 500;
  o.rtt_cover_rate = 100.0 * kB;  // 100 blocks a second
  o.rtt_slack_seconds = 0.1;
  auto grown = [&](double rtt) {
    RequestQueue q(o);
    q.SetRtt(rtt);
    for (uint32_t i = 0; i < 1000; ++i) {
      q.Sent(B(i), 0);
      q.Arrived(B(i));
    }
    return q.depth();
  };
  EXPECT_EQ(grown(0), 500u);       // unknown: up to max_depth
  EXPECT_EQ(grown(0.0001), 10u);   // 100/s * (0.2 ms + 100 ms)
  EXPECT_EQ(grown(0.2), 50u);      // 100/s * (400 ms + 100 ms)
  EXPECT_EQ(grown(0.00001), 10u);  // never below min_depth (4) either way
  o.rtt_cover_rate = 0;            // off
  EXPECT_EQ(grown(0.0001), 500u);
  // The rate's cap applies under it, and each tick's round-trip time too.
  o.rtt_cover_rate = 100.0 * kB;
  RequestQueue q(o);
  q.Tick(1, 5.0 * kB, /*connected_ticks=*/3, true, false, {}, 0.0001);
  for (uint32_t i = 0; i < 100; ++i) {
    q.Sent(B(i), 1);
    q.Arrived(B(i));
  }
  EXPECT_EQ(q.depth(), 10u);  // min(10 by rtt, 5/s * 2 s)
  q.Tick(2, 5.0 * kB, 4, true, false, {}, 0.0001);
  EXPECT_EQ(q.depth(), 10u);
}

TEST(RequestQueueTest, RateIsIgnoredInTheFirstTicks) {
  RequestQueue q(Opts());
  q.Tick(1, 1.0, /*connected_ticks=*/2, true, false, {});
  for (uint32_t i = 0; i < 10; ++i) q.Arrived(B(i));
  EXPECT_EQ(q.depth(), 14u);  // not capped down to min_depth by the rate
}

TEST(RequestQueueTest, UnknownAndRejectedBlocks) {
  RequestQueue q(Opts());
  q.Sent(B(0), 0);
  q.Sent(B(1), 0);
  EXPECT_FALSE(q.Arrived(B(7)));  // never asked for: nothing to forget
  EXPECT_EQ(q.outstanding(), 2u);
  EXPECT_TRUE(q.Forget(B(1)));
  EXPECT_FALSE(q.Forget(B(1)));
  EXPECT_EQ(q.outstanding(), 1u);
  q.Clear();
  EXPECT_EQ(q.outstanding(), 0u);
}

TEST(RequestQueueTest, SnubbedAfterSilenceThenOneAtATimeUntilItSends) {
  RequestQueue q(Opts());
  q.Sent(B(0), 0);
  q.Sent(B(1), 0);
  EXPECT_FALSE(q.Tick(1, 0, 1, false, false, {}).snubbed);
  EXPECT_FALSE(q.Tick(2, 0, 2, false, false, {}).snubbed);
  RequestQueue::TickResult r = q.Tick(3, 0, 3, false, false, {});
  EXPECT_TRUE(r.snubbed);
  EXPECT_TRUE(q.snubbed());
  EXPECT_EQ(q.outstanding(), 0u);  // its requests were dropped
  EXPECT_EQ(q.room(), 1u);
  q.Sent(B(2), 3);
  q.Arrived(B(2));
  q.Tick(4, kB, 4, /*got=*/true, false, {});
  EXPECT_FALSE(q.snubbed());
  EXPECT_EQ(q.depth(), 4u);  // back to min_depth
}

TEST(RequestQueueTest, NotSnubbedWhileItChokesUs) {
  RequestQueue q(Opts());
  q.Sent(B(0), 0);
  for (uint64_t t = 1; t < 10; ++t)
    EXPECT_FALSE(q.Tick(t, 0, t, false, /*peer_choking=*/true, {}).snubbed);
}

TEST(RequestQueueTest, OldRequestsExpireOldestFirst) {
  RequestQueue q(Opts());
  q.Sent(B(0), 0);
  q.Sent(B(1), 5);
  // At 1 MB/s, two blocks should take milliseconds: the limit is 10 ticks.
  // It keeps sending (got), so it is not snubbed.
  EXPECT_TRUE(q.Tick(10, 1e6, 10, true, false, {}).expired.empty());
  RequestQueue::TickResult r = q.Tick(11, 1e6, 11, true, false, {});
  ASSERT_EQ(r.expired.size(), 1u);
  EXPECT_EQ(r.expired[0], B(0));
  r = q.Tick(16, 1e6, 16, true, false, {});
  ASSERT_EQ(r.expired.size(), 1u);
  EXPECT_EQ(r.expired[0], B(1));
  EXPECT_EQ(q.outstanding(), 0u);
}

}  // namespace
}  // namespace shoal::node
