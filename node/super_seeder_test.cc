#include "node/super_seeder.h"

#include <algorithm>
#include <random>
#include <set>

#include "gtest/gtest.h"

namespace shoal::node {
namespace {

constexpr uint64_t kPiece = 64 * 1024;

SuperSeeder Make(uint32_t n, uint64_t seed = 1, bool strict = false) {
  auto rng = std::make_shared<std::mt19937_64>(seed);
  return SuperSeeder(
      n, [](uint32_t) { return kPiece; }, [rng] { return (*rng)(); }, strict);
}

uint32_t NoCopies(uint32_t) { return 0; }

// One piece at a time to a slow peer; a second of its rate to a fast one.
TEST(SuperSeederTest, ShowsASecondOfTheRateAndAtLeastAPiece) {
  SuperSeeder s = Make(100);
  chunk::Bitfield none;
  EXPECT_EQ(s.RevealMore(1, none, 1000, 0, NoCopies).size(), 1u);
  EXPECT_TRUE(s.RevealMore(1, none, 1000, 0, NoCopies).empty());  // still due
  EXPECT_EQ(s.RevealMore(2, none, 4 * kPiece, 0, NoCopies).size(), 4u);
  EXPECT_EQ(s.bytes_left(2), 4 * kPiece);
}

// A lone peer is shown the pieces in order (a reader on it streams them); once
// there are two, each gets the schedule's random order.
TEST(SuperSeederTest, LonePeerIsShownThePiecesInOrder) {
  SuperSeeder s = Make(100);
  chunk::Bitfield none;
  EXPECT_EQ(s.RevealMore(1, none, 4 * kPiece, 0, NoCopies),
            (std::vector<uint32_t>{0, 1, 2, 3}));
  for (uint32_t i = 0; i < 4; ++i) s.Sent(1, i, kPiece);
  // (Past its slow start: tick 5.)
  EXPECT_EQ(s.RevealMore(1, none, 2 * kPiece, 5, NoCopies),
            (std::vector<uint32_t>{4, 5}));
  std::vector<uint32_t> second = s.RevealMore(2, none, 8 * kPiece, 5, NoCopies);
  ASSERT_EQ(second.size(), 8u);
  for (uint32_t i : second) EXPECT_GE(i, 6u);  // not shown twice yet
  EXPECT_FALSE(std::is_sorted(second.begin(), second.end()));
}

// A piece all sent, or got elsewhere, makes room for the next.
TEST(SuperSeederTest, SentOrAnnouncedMakesRoom) {
  SuperSeeder s = Make(10);
  chunk::Bitfield none;
  const uint32_t a = s.RevealMore(1, none, 0, 0, NoCopies).at(0);
  EXPECT_FALSE(s.Sent(1, a, kPiece / 2));
  EXPECT_TRUE(s.Sent(1, a, kPiece / 2));
  EXPECT_EQ(s.bytes_left(1), 0u);
  const uint32_t b = s.RevealMore(1, none, 0, 0, NoCopies).at(0);
  EXPECT_NE(a, b);
  EXPECT_TRUE(s.Announced(1, b, 0));
  EXPECT_FALSE(s.Announced(1, 9, 0));   // not shown to it
  EXPECT_FALSE(s.Sent(1, 99, kPiece));  // never shown
}

// While a new peer's rate is unknown (its first two ticks), each piece all
// sent to it widens its window by a piece; then the window is its rate again.
TEST(SuperSeederTest, SlowStartWhileTheRateIsUnknown) {
  SuperSeeder s = Make(100);
  chunk::Bitfield none;
  std::vector<uint32_t> shown = s.RevealMore(1, none, 0, 5, NoCopies);
  ASSERT_EQ(shown.size(), 1u);
  ASSERT_TRUE(s.Sent(1, shown[0], kPiece));
  shown = s.RevealMore(1, none, 0, 5, NoCopies);
  ASSERT_EQ(shown.size(), 2u);  // a window of two pieces
  for (uint32_t i : shown) ASSERT_TRUE(s.Sent(1, i, kPiece));
  EXPECT_EQ(s.RevealMore(1, none, 0, 6, NoCopies).size(), 4u);
  EXPECT_EQ(s.bytes_left(1), 4 * kPiece);
  // Two ticks on, the measured rate decides alone: nothing more is due while
  // four pieces wait and the rate is two pieces a second.
  EXPECT_TRUE(s.RevealMore(1, none, 2 * kPiece, 7, NoCopies).empty());
  // With more than three peers, nobody's window grows: our uplink is shared.
  for (uint64_t peer = 2; peer <= 4; ++peer)
    ASSERT_EQ(s.RevealMore(peer, none, 0, 5, NoCopies).size(), 1u);
  shown = s.RevealMore(5, none, 0, 5, NoCopies);
  ASSERT_EQ(shown.size(), 1u);
  ASSERT_TRUE(s.Sent(5, shown[0], kPiece));
  EXPECT_EQ(s.RevealMore(5, none, 0, 5, NoCopies).size(), 1u);
}

// Each piece is shown once before any twice; a peer is never shown what it
// has.
TEST(SuperSeederTest, FirstRoundCoversEveryPieceOnce) {
  SuperSeeder s = Make(8);
  chunk::Bitfield has(8);
  has.set(0);
  std::set<uint32_t> seen;
  for (uint64_t peer = 1; peer <= 8; ++peer) {
    for (uint32_t i : s.RevealMore(peer, peer == 1 ? has : chunk::Bitfield(), 0,
                                   0, NoCopies)) {
      if (peer == 1) {
        EXPECT_NE(i, 0u);
      }
      EXPECT_TRUE(seen.insert(i).second) << "piece " << i << " twice";
    }
  }
  EXPECT_EQ(seen.size(), 8u);
  EXPECT_EQ(s.schedule().round(), 1u);
}

// After the first round only pieces with no copy among the peers, and none
// being sent, are shown again; a starving peer gets one regardless.
TEST(SuperSeederTest, RepeatsOnlyWhatHasNoCopyUnlessStarving) {
  SuperSeeder s = Make(4);
  chunk::Bitfield none;
  std::vector<uint32_t> first;
  for (uint64_t peer = 1; peer <= 4; ++peer) {
    auto got = s.RevealMore(peer, none, 0, 0, NoCopies);
    ASSERT_EQ(got.size(), 1u);
    first.push_back(got[0]);
  }
  // Peers 1-3 got theirs; peer 4's is still being sent.
  for (uint64_t peer = 1; peer <= 3; ++peer)
    ASSERT_TRUE(s.Sent(peer, first[peer - 1], kPiece));
  // Every piece has a copy (or is on its way to peer 4): nothing for peer 5,
  // fresh at tick 1.
  auto held = [&](uint32_t i) -> uint32_t { return i == first[3] ? 0 : 1; };
  EXPECT_TRUE(s.RevealMore(5, none, 0, 1, held).empty());
  // Peers 1-3 have not announced theirs yet, but they were sent all of it:
  // even a caller that counts no holder yet sees no piece without a copy.
  EXPECT_TRUE(s.RevealMore(5, none, 0, 1, NoCopies).empty());
  // The holder of first[0] left: that piece has no copy now.
  s.PeerGone(1);
  auto lost = [&](uint32_t i) -> uint32_t {
    return i == first[3] || i == first[0] ? 0 : 1;
  };
  EXPECT_EQ(s.RevealMore(5, none, 0, 1, lost), std::vector<uint32_t>{first[0]});
  ASSERT_TRUE(s.Sent(5, first[0], kPiece));
  // Two ticks with no new piece: peer 5 starves, and is shown one anyway.
  EXPECT_TRUE(s.RevealMore(5, none, 0, 2, held).empty());
  EXPECT_EQ(s.RevealMore(5, none, 0, 3, held).size(), 1u);
}

// A piece shown to a peer that left unserved goes to the next peer.
TEST(SuperSeederTest, PeerGoneUnshowsWhatItWasNotSent) {
  SuperSeeder s = Make(3);
  chunk::Bitfield none;
  const uint32_t a = s.RevealMore(1, none, 0, 0, NoCopies).at(0);
  s.RevealMore(2, none, 0, 0, NoCopies);
  s.RevealMore(3, none, 0, 0, NoCopies);
  s.PeerGone(1);
  EXPECT_EQ(s.bytes_left(1), 0u);
  // Every other piece was shown once: the one never sent comes first.
  EXPECT_EQ(s.RevealMore(4, none, 0, 0, NoCopies).at(0), a);
}

// BEP 16 for untrusted peers: one piece at a time, whatever the rate; the
// next only once another peer announced the last (or after the wait).
TEST(SuperSeederTest, StrictShowsTheNextOnlyOnceTheLastIsShared) {
  SuperSeeder s = Make(10, 1, /*strict=*/true);
  chunk::Bitfield none;
  const std::vector<uint32_t> a =
      s.RevealMore(1, none, 10 * kPiece, 0, NoCopies);
  ASSERT_EQ(a.size(), 1u);
  const uint32_t b = s.RevealMore(2, none, 0, 0, NoCopies).at(0);
  EXPECT_FALSE(s.Sent(1, a[0], kPiece));  // all sent: still no more
  EXPECT_TRUE(s.RevealMore(1, none, 10 * kPiece, 1, NoCopies).empty());
  // Peer 1 announcing its own piece is not sharing it.
  EXPECT_FALSE(s.Announced(1, a[0], 1));
  EXPECT_TRUE(s.TakeReady().empty());
  EXPECT_TRUE(s.RevealMore(1, none, 0, 1, NoCopies).empty());
  // Peer 2 got it from peer 1: peer 1 may have the next.
  s.Announced(2, a[0], 2);
  EXPECT_EQ(s.TakeReady(), std::vector<uint64_t>{1});
  const std::vector<uint32_t> next = s.RevealMore(1, none, 0, 2, NoCopies);
  ASSERT_EQ(next.size(), 1u);
  EXPECT_NE(next[0], a[0]);
  // A peer nobody shares with gets the next after the wait.
  EXPECT_FALSE(s.Sent(2, b, kPiece));
  EXPECT_TRUE(s.RevealMore(2, none, 0, 5, NoCopies).empty());
  EXPECT_EQ(s.RevealMore(2, none, 0, 12, NoCopies).size(), 1u);
}

}  // namespace
}  // namespace shoal::node
