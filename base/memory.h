#ifndef SHOAL_BASE_MEMORY_H_
#define SHOAL_BASE_MEMORY_H_

namespace shoal {

// Returns the allocator's free pages to the system now, rather than when its
// own policy would. shoald runs on jemalloc (purges every arena); a binary on
// glibc's malloc (tests, tools) gets malloc_trim(0). Costs a few milliseconds
// on a large heap: call it after freeing something big, not per operation.
void ReleaseFreeMemory();

}  // namespace shoal

#endif  // SHOAL_BASE_MEMORY_H_
