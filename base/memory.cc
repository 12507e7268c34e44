#include "base/memory.h"

#include <dlfcn.h>
#include <malloc.h>

#include <cstddef>

namespace shoal {
namespace {

using MallctlFn = int (*)(const char*, void*, size_t*, void*, size_t);

// jemalloc's mallctl when the process runs on jemalloc, found at run time so
// that this library does not depend on it.
MallctlFn Mallctl() {
  static const MallctlFn fn =
      reinterpret_cast<MallctlFn>(::dlsym(RTLD_DEFAULT, "mallctl"));
  return fn;
}

}  // namespace

void ReleaseFreeMemory() {
  if (const MallctlFn mallctl = Mallctl()) {
    // 4096 is MALLCTL_ARENAS_ALL.
    mallctl("arena.4096.purge", nullptr, nullptr, nullptr, 0);
    return;
  }
  ::malloc_trim(0);
}

}  // namespace shoal
