#include "base/thread_pool.h"

#include <atomic>

#include "gtest/gtest.h"

namespace shoal {
namespace {

// Every posted task runs before the pool's destructor returns.
TEST(ThreadPoolTest, RunsAllTasks) {
  std::atomic<int> count{0};
  {
    ThreadPool pool(3);
    for (int i = 0; i < 1000; ++i) pool.Post([&] { count.fetch_add(1); });
  }
  EXPECT_EQ(count.load(), 1000);
}

// A task may post further tasks.
TEST(ThreadPoolTest, TasksMayPost) {
  std::atomic<int> count{0};
  {
    ThreadPool pool(2);
    pool.Post([&] {
      count.fetch_add(1);
      pool.Post([&] { count.fetch_add(1); });
    });
  }
  EXPECT_EQ(count.load(), 2);
}

}  // namespace
}  // namespace shoal
