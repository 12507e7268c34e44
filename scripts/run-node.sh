#!/usr/bin/env bash
# The README's first command: installs what is needed, builds, and starts a node with its
# embedded defaults (API on 127.0.0.1:7080, peers on 0.0.0.0:6881, data in ~/.local/share/shoal).
# Extra arguments go to shoald.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
exec "${BUILD_DIR:-build}/tools/shoald/shoald" "$@"
