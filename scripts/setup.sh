#!/usr/bin/env bash
# Installs every Debian 12 package that building, running and testing Shoal needs.
# Idempotent: packages already present are left as they are.
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config git clang-format
  clang-14 libclang-rt-14-dev  # libFuzzer + sanitizers (tests/fuzz)
  # libraries
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  libabsl-dev librocksdb-dev libboost-dev libssl-dev libsodium-dev
  libjemalloc-dev  # shoald's allocator
  libspdlog-dev libfmt-dev libcli11-dev libtomlplusplus-dev nlohmann-json3-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  libisal-dev prometheus-cpp-dev
  python3-libtorrent python3-grpcio python3-protobuf python3-pytest opentracker openssl procps bc
  prometheus  # promtool checks the metrics exposition
  python3-yaml iproute2  # deploy file checks; network namespaces (tests/cluster)
  # benchmarks
  wrk nginx-light  # tools/bench/gateway_bench.sh
  eatmydata  # tools/bench/cdn_transfer_bench.py: the fetch with syncs off, an experiment
  chromium  # a real browser against the gateway (tests/e2e/test_browser.py)
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
