#include "base/ordered_work.h"

#include <chrono>
#include <thread>

#include "gtest/gtest.h"

namespace shoal {
namespace {

// Results come back in submission order even when later jobs finish first.
TEST(OrderedWorkTest, ResultsInOrder) {
  ThreadPool pool(4);
  OrderedWork<int> work(pool, 4);
  std::vector<int> got;
  for (int i = 0; i < 20; ++i) {
    if (work.full()) got.push_back(work.PopOldest());
    work.Submit([i] {
      if (i % 3 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
      return i;
    });
  }
  while (!work.empty()) got.push_back(work.PopOldest());
  ASSERT_EQ(got.size(), 20u);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(got[i], i);
}

// Destroying the work with jobs still in flight waits for them.
TEST(OrderedWorkTest, DestructorWaits) {
  ThreadPool pool(2);
  std::atomic<int> done{0};
  {
    OrderedWork<int> work(pool, 2);
    work.Submit([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      done.fetch_add(1);
      return 0;
    });
  }
  EXPECT_EQ(done.load(), 1);
}

}  // namespace
}  // namespace shoal
