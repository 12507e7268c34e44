#include "chunk/reveal_schedule.h"

#include <random>
#include <set>

#include "gtest/gtest.h"

namespace shoal::chunk {
namespace {

std::function<uint64_t()> Seeded(uint64_t seed) {
  auto rng = std::make_shared<std::mt19937_64>(seed);
  return [rng] { return (*rng)(); };
}

// Every piece once, in a random order, before any twice.
TEST(RevealScheduleTest, EachPieceOnceBeforeAnyTwice) {
  RevealSchedule s(100, Seeded(1));
  std::set<uint32_t> first;
  std::vector<uint32_t> order;
  for (int k = 0; k < 100; ++k) {
    auto p = s.Next([](uint32_t) { return false; });
    ASSERT_TRUE(p.has_value());
    EXPECT_TRUE(first.insert(*p).second) << "piece " << *p << " twice";
    order.push_back(*p);
  }
  EXPECT_EQ(s.round(), 1u);
  std::vector<uint32_t> sorted = order;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_NE(order, sorted);  // not in index order
  auto again = s.Next([](uint32_t) { return false; });
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(s.times_revealed(*again), 2u);
}

// What a peer can't take is skipped and stays for the next peer; a peer
// that can take nothing gets nothing.
TEST(RevealScheduleTest, SkipsWhatThePeerHas) {
  RevealSchedule s(10, Seeded(2));
  // A peer that has the even pieces.
  for (int k = 0; k < 5; ++k) {
    auto p = s.Next([](uint32_t i) { return i % 2 == 0; });
    ASSERT_TRUE(p.has_value());
    EXPECT_EQ(*p % 2, 1u);
  }
  // Another peer takes the even ones before any odd piece again.
  for (int k = 0; k < 5; ++k) {
    auto p = s.Next([](uint32_t) { return false; });
    ASSERT_TRUE(p.has_value());
    EXPECT_EQ(*p % 2, 0u);
  }
  EXPECT_FALSE(s.Next([](uint32_t) { return true; }).has_value());
}

// A piece revealed to a peer that left unserved goes back to the front.
TEST(RevealScheduleTest, UnrevealedPieceComesNext) {
  RevealSchedule s(4, Seeded(3));
  std::vector<uint32_t> got;
  for (int k = 0; k < 4; ++k)
    got.push_back(*s.Next([](uint32_t) { return false; }));
  EXPECT_EQ(s.round(), 1u);
  s.Unreveal(got[2]);
  EXPECT_EQ(s.round(), 0u);
  EXPECT_EQ(*s.Next([](uint32_t) { return false; }), got[2]);
  EXPECT_EQ(s.round(), 1u);
}

// NextInIndexOrder: the lowest-numbered piece revealed fewest times, past
// what the random order revealed already and what the peer can't take.
TEST(RevealScheduleTest, InIndexOrderAmongTheLeastRevealed) {
  RevealSchedule s(8, Seeded(5));
  auto none = [](uint32_t) { return false; };
  auto not3 = [](uint32_t i) { return i == 3; };
  const uint32_t random = *s.Next(none);
  std::vector<uint32_t> want;
  for (uint32_t i = 0; i < 8; ++i)
    if (i != random && i != 3) want.push_back(i);
  std::vector<uint32_t> got;
  for (size_t k = 0; k < want.size(); ++k)
    got.push_back(*s.NextInIndexOrder(not3));
  EXPECT_EQ(got, want);
  if (random != 3) {
    EXPECT_EQ(s.round(), 0u);
    EXPECT_EQ(*s.NextInIndexOrder(none), 3u);  // skipped, still the least
  }
  EXPECT_EQ(s.round(), 1u);
  // The next round starts from the first piece again; one given back comes
  // first.
  EXPECT_EQ(*s.NextInIndexOrder(none), 0u);
  EXPECT_EQ(*s.NextInIndexOrder(none), 1u);
  s.Unreveal(0);
  EXPECT_EQ(*s.NextInIndexOrder(none), 0u);
  EXPECT_EQ(*s.NextInIndexOrder(none), 2u);
}

TEST(RevealScheduleTest, Empty) {
  RevealSchedule s(0, Seeded(4));
  EXPECT_FALSE(s.Next([](uint32_t) { return false; }).has_value());
  EXPECT_FALSE(s.NextInIndexOrder([](uint32_t) { return false; }).has_value());
}

// After the first round, only pieces nobody holds or is being sent are
// revealed again, the least revealed first.
TEST(RevealScheduleTest, RepeatsOnlyUncopiedPieces) {
  RevealSchedule s(6, Seeded(4));
  for (int k = 0; k < 6; ++k) s.Next([](uint32_t) { return false; });
  ASSERT_EQ(s.round(), 1u);
  auto none = [](uint32_t) { return false; };
  // Pieces 2 and 4 have no copy left among the peers.
  auto copies = [](uint32_t i) -> uint32_t { return i == 2 || i == 4 ? 0 : 3; };
  std::set<uint32_t> got;
  for (int k = 0; k < 2; ++k) {
    auto p = s.NextUncopied(none, copies);
    ASSERT_TRUE(p.has_value());
    got.insert(*p);
  }
  EXPECT_EQ(got, (std::set<uint32_t>{2, 4}));
  // Both were revealed twice now: a third call takes the less revealed one
  // again only if it still has no copy; with none it gives nothing.
  EXPECT_EQ(s.times_revealed(2), 2u);
  auto p = s.NextUncopied(none, copies);
  ASSERT_TRUE(p.has_value());
  EXPECT_TRUE(*p == 2 || *p == 4);
  EXPECT_FALSE(
      s.NextUncopied(none, [](uint32_t) -> uint32_t { return 1; }).has_value());
  // What the peer can't take is skipped.
  EXPECT_FALSE(
      s.NextUncopied([](uint32_t i) { return i == 2 || i == 4; }, copies)
          .has_value());
}

}  // namespace
}  // namespace shoal::chunk
