#include "base/memory.h"

#include <unistd.h>

#include <cstdio>
#include <memory>
#include <vector>

#include "gtest/gtest.h"

namespace shoal {
namespace {

// Resident bytes of this process.
size_t Resident() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long size = 0, resident = 0;
  const int n = std::fscanf(f, "%lu %lu", &size, &resident);
  std::fclose(f);
  return n == 2 ? resident * static_cast<size_t>(sysconf(_SC_PAGESIZE)) : 0;
}

// The tests run on glibc's malloc: freed memory inside the heap, which free()
// keeps, goes back to the system.
TEST(ReleaseFreeMemoryTest, GivesFreedHeapBack) {
  // Below the mmap threshold, so that the blocks live on the heap.
  std::vector<std::unique_ptr<char[]>> blocks;
  for (int i = 0; i < 512; ++i) {
    blocks.emplace_back(new char[64 * 1024]);
    for (size_t k = 0; k < 64 * 1024; k += 4096) blocks.back()[k] = 1;
  }
  // One block above them keeps the heap's top in use: free() can't shrink
  // the heap, only a trim that reaches inside it can.
  std::unique_ptr<char[]> last(new char[64]);
  blocks.clear();
  const size_t before = Resident();
  ReleaseFreeMemory();
  const size_t after = Resident();
  ASSERT_GT(before, 0u);
  EXPECT_LT(after + (8u << 20), before) << before << " -> " << after;
}

}  // namespace
}  // namespace shoal
