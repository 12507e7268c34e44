#include "wire/allowed_fast.h"

#include "gtest/gtest.h"

namespace shoal::wire {
namespace {

std::array<uint8_t, 20> Aa() {
  std::array<uint8_t, 20> h;
  h.fill(0xaa);
  return h;
}

// The examples in BEP 6.
TEST(AllowedFastTest, MatchesBep6Examples) {
  const std::array<uint8_t, 4> ip{80, 4, 4, 200};
  EXPECT_EQ(AllowedFastSet(ip, Aa(), 1313, 7),
            (std::vector<uint32_t>{1059, 431, 808, 1217, 287, 376, 1188}));
  EXPECT_EQ(
      AllowedFastSet(ip, Aa(), 1313, 9),
      (std::vector<uint32_t>{1059, 431, 808, 1217, 287, 376, 1188, 353, 508}));
}

TEST(AllowedFastTest, SameSlash24SameSet) {
  EXPECT_EQ(AllowedFastSet({80, 4, 4, 1}, Aa(), 1313, 10),
            AllowedFastSet({80, 4, 4, 200}, Aa(), 1313, 10));
}

TEST(AllowedFastTest, FewPiecesGivesEveryPieceOnce) {
  auto set = AllowedFastSet({10, 0, 0, 1}, Aa(), 3, 10);
  std::sort(set.begin(), set.end());
  EXPECT_EQ(set, (std::vector<uint32_t>{0, 1, 2}));
  EXPECT_TRUE(AllowedFastSet({10, 0, 0, 1}, Aa(), 0, 10).empty());
}

}  // namespace
}  // namespace shoal::wire
