#include "node/events.h"

#include <gtest/gtest.h>

namespace shoal::node {
namespace {

Event Make(EventKind kind, std::string id) {
  Event e;
  e.kind = kind;
  e.id = std::move(id);
  return e;
}

std::vector<Event> All(EventBus& bus, uint64_t after, uint64_t* missed) {
  return bus.Wait(after, absl::ZeroDuration(), missed);
}

// A newer progress event of an item replaces the unread one; other items'
// progress and other kinds stay.
TEST(EventBusTest, ProgressOfAnItemIsCoalesced) {
  EventBus bus;
  bus.Publish(Make(EventKind::kFetchStarted, "a"));
  for (int i = 0; i < 100; ++i) {
    Event p = Make(EventKind::kFetchProgress, "a");
    p.bytes = static_cast<uint64_t>(i);
    bus.Publish(std::move(p));
    bus.Publish(Make(EventKind::kProgress, "t"));  // a torrent's
  }
  bus.Publish(Make(EventKind::kFetchCompleted, "a"));
  uint64_t missed = 0;
  std::vector<Event> got = All(bus, 0, &missed);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[0].kind, EventKind::kFetchStarted);
  EXPECT_EQ(got[1].kind, EventKind::kFetchProgress);
  EXPECT_EQ(got[1].bytes, 99u);  // the latest
  EXPECT_EQ(got[2].kind, EventKind::kProgress);
  EXPECT_EQ(got[3].kind, EventKind::kFetchCompleted);
  EXPECT_EQ(missed, 0u);
  EXPECT_EQ(bus.size(), 4u);
  // A reader that already read the old progress gets only what is newer.
  got = All(bus, got[1].seq, &missed);
  EXPECT_EQ(got.size(), 2u);
}

// A flood of progress (many items, many updates) never pushes out a start,
// completion or removal, and what the bus holds stays bounded.
TEST(EventBusTest, ProgressNeverCrowdsOutOtherKinds) {
  EventBus bus;
  bus.Publish(Make(EventKind::kFetchStarted, "first"));
  for (int round = 0; round < 50; ++round) {
    for (int item = 0; item < 1000; ++item)
      bus.Publish(Make(EventKind::kFetchProgress, std::to_string(item)));
  }
  bus.Publish(Make(EventKind::kContentRemoved, "last"));
  uint64_t missed = 0;
  std::vector<Event> got = All(bus, 0, &missed);
  EXPECT_EQ(missed, 0u);
  ASSERT_EQ(got.size(), 1002u);
  EXPECT_EQ(got.front().id, "first");
  EXPECT_EQ(got.back().id, "last");
  EXPECT_LE(bus.size(), 2 * EventBus::kCapacity);
}

// Past the capacity the oldest events go, and a reader behind is told how
// many it missed; one that read them is not.
TEST(EventBusTest, CapacityDropsTheOldestAndCountsThem) {
  EventBus bus;
  const size_t n = EventBus::kCapacity + 10;
  for (size_t i = 0; i < n; ++i)
    bus.Publish(Make(EventKind::kContentAdded, std::to_string(i)));
  uint64_t missed = 0;
  std::vector<Event> got = All(bus, 0, &missed);
  EXPECT_EQ(missed, 10u);
  ASSERT_EQ(got.size(), EventBus::kCapacity);
  EXPECT_EQ(got.front().id, "10");
  got = All(bus, 5, &missed);
  EXPECT_EQ(missed, 5u);
  got = All(bus, 10, &missed);
  EXPECT_EQ(missed, 0u);
  EXPECT_EQ(bus.last_seq(), n);
}

// Many distinct items' progress (more than twice the capacity) is bounded
// too: the oldest go first.
TEST(EventBusTest, ManyItemsProgressIsBounded) {
  EventBus bus;
  for (size_t i = 0; i < 3 * EventBus::kCapacity; ++i)
    bus.Publish(Make(EventKind::kFetchProgress, std::to_string(i)));
  EXPECT_LE(bus.size(), 2 * EventBus::kCapacity);
  uint64_t missed = 0;
  std::vector<Event> got = All(bus, 0, &missed);
  EXPECT_EQ(got.back().id, std::to_string(3 * EventBus::kCapacity - 1));
}

TEST(EventBusTest, KindNames) {
  EXPECT_STREQ(EventKindName(EventKind::kFetchProgress), "fetch_progress");
  EXPECT_STREQ(EventKindName(EventKind::kContentEvicted), "content_evicted");
  EXPECT_STREQ(EventKindName(EventKind::kDhtState), "dht_state");
  EXPECT_TRUE(IsProgress(EventKind::kProgress));
  EXPECT_FALSE(IsProgress(EventKind::kFetchCompleted));
}

}  // namespace
}  // namespace shoal::node
