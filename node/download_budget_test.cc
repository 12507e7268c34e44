#include "node/download_budget.h"

#include "gtest/gtest.h"

namespace shoal::node {
namespace {

TEST(DownloadBudgetTest, ChargesReplaceEachHoldersShare) {
  DownloadBudget budget(100);
  size_t a = 0, b = 0;
  budget.Charge(a, 60);
  budget.Charge(b, 30);
  EXPECT_EQ(budget.used(), 90u);
  EXPECT_EQ(budget.available(), 10u);
  budget.Charge(a, 80);  // over the limit: nothing is refused, nothing left
  EXPECT_EQ(a, 80u);
  EXPECT_EQ(budget.used(), 110u);
  EXPECT_EQ(budget.available(), 0u);
  budget.Charge(a, 0);
  budget.Charge(b, 0);
  EXPECT_EQ(budget.used(), 0u);
}

TEST(DownloadBudgetTest, WaitersWakeOnceWhenARelaseLeavesRoom) {
  DownloadBudget budget(100);
  size_t a = 0;
  budget.Charge(a, 150);
  int woken = 0;
  budget.WaitForRoom([&] { ++woken; });
  budget.Charge(a, 160);  // more: no
  EXPECT_EQ(woken, 0);
  budget.Charge(a, 120);  // less, still no room: no
  EXPECT_EQ(woken, 0);
  budget.Charge(a, 50);
  EXPECT_EQ(woken, 1);
  budget.Charge(a, 10);  // once only
  EXPECT_EQ(woken, 1);
}

}  // namespace
}  // namespace shoal::node
