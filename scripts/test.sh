#!/usr/bin/env bash
# The README's second command: installs what is needed, builds, and runs the whole test suite
# (unit tests, end-to-end tests with real shoald processes, interop tests with libtorrent).
# Benchmarks and fuzzers are not part of it (see README, "Developing").
#
#   scripts/test.sh              the suite, in ./build
#   scripts/test.sh --sanitize   the same suite built with ASan and UBSan, in ./build-asan
#                                (BUILD_DIR overrides); any sanitizer report fails the test
set -euo pipefail
cd "$(dirname "$0")/.."
SANITIZE=0
for arg in "$@"; do
  case "$arg" in
    --sanitize) SANITIZE=1 ;;
    *) echo "usage: scripts/test.sh [--sanitize]" >&2; exit 2 ;;
  esac
done
bash scripts/setup.sh
if [ "$SANITIZE" = 1 ]; then
  export BUILD_DIR=${BUILD_DIR:-build-asan}
  # Leak checking is off: a daemon's process-lifetime singletons (gRPC, protobuf) are not leaks.
  # Everything else stops the process with a report, which fails the test that ran it.
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1:detect_stack_use_after_return=0}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
  bash scripts/build.sh -DSHOAL_SANITIZE=ON -DSHOAL_BUILD_BENCH=OFF
else
  bash scripts/build.sh
fi
cd "${BUILD_DIR:-build}"
ctest --output-on-failure -j "${JOBS:-$(nproc)}" --timeout 1800
