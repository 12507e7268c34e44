#!/usr/bin/env bash
# The README's second command: installs what is needed, builds, and runs the whole test suite
# (unit tests, end-to-end tests with real shoald processes, interop tests with libtorrent).
# Benchmarks and fuzzers are not part of it (see README, "Developing").
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
cd "${BUILD_DIR:-build}"
ctest --output-on-failure -j "${JOBS:-$(nproc)}" --timeout 900
