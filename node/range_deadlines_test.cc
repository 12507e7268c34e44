#include "node/range_deadlines.h"

#include <functional>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace shoal::node {
namespace {

constexpr uint32_t kPiece = 4 * chunk::kBlockLength;
constexpr uint32_t kPieces = 64;

class RangeDeadlinesTest : public ::testing::Test {
 protected:
  RangeDeadlinesTest()
      : picker_(
            chunk::PiecePickerOptions{
                .total_length = uint64_t{kPieces} * kPiece,
                .piece_length = kPiece,
                .strategy = chunk::PickStrategy::kRandom},
            [rng = std::mt19937_64(7)]() mutable { return rng(); }),
        seed_has_(kPieces) {}

  // The pieces of the next `n` pieces' worth of blocks a seed is asked for,
  // in order of first appearance.
  std::vector<uint32_t> Next(size_t n) {
    std::vector<uint32_t> pieces;
    for (const chunk::Block& b : picker_.Pick(1, seed_has_, n * 4, true))
      if (pieces.empty() || pieces.back() != b.piece) pieces.push_back(b.piece);
    return pieces;
  }
  void Have(uint32_t first, uint32_t end) {
    for (uint32_t i = first; i < end; ++i) picker_.SetHave(i);
  }

  chunk::PiecePicker picker_;
  chunk::Bitfield seed_has_;
  // A window of 4 pieces.
  RangeDeadlines ranges_{4 * kPiece};
};

TEST_F(RangeDeadlinesTest, FromSeedsOnlyTheWholeRangeComesInOrder) {
  ranges_.Add(10, 20, 0);
  ranges_.Advance(picker_, kPiece, /*trading=*/false);
  EXPECT_EQ(Next(10),
            (std::vector<uint32_t>{10, 11, 12, 13, 14, 15, 16, 17, 18, 19}));
}

TEST_F(RangeDeadlinesTest, WhileTradingOnlyAWindowAheadMovingOn) {
  ranges_.Add(10, 30, 0);
  ranges_.Advance(picker_, kPiece, /*trading=*/true);
  EXPECT_EQ(Next(4), (std::vector<uint32_t>{10, 11, 12, 13}));
  Have(10, 14);
  ranges_.Advance(picker_, kPiece, true);
  EXPECT_EQ(Next(4), (std::vector<uint32_t>{14, 15, 16, 17}));
}

TEST_F(RangeDeadlinesTest, WindowIsAtLeastFourPieces) {
  RangeDeadlines tiny(1);
  tiny.Add(0, 10, 0);
  tiny.Advance(picker_, kPiece, true);
  EXPECT_EQ(Next(4), (std::vector<uint32_t>{0, 1, 2, 3}));
}

TEST_F(RangeDeadlinesTest, EarlierBaseFirstAndHeldRangesDropped) {
  ranges_.Add(40, 42, 1000);
  ranges_.Add(20, 22, 0);
  ranges_.Advance(picker_, kPiece, false);
  EXPECT_EQ(Next(4), (std::vector<uint32_t>{20, 21, 40, 41}));
  Have(20, 22);
  ranges_.Advance(picker_, kPiece, false);
  EXPECT_FALSE(ranges_.empty());
  Have(40, 42);
  ranges_.Advance(picker_, kPiece, false);
  EXPECT_TRUE(ranges_.empty());
}

}  // namespace
}  // namespace shoal::node
