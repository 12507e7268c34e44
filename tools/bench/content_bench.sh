#!/usr/bin/env bash
# Adds a file to a fresh shoald and reads it back, printing MB/s beside `openssl dgst -sha256`
# of the same file measured in the same run; then the median latency of `shoal node info`.
#
#   tools/bench/content_bench.sh [SIZE_MIB] [BUILD_DIR]     (defaults: 1024, ./build)
#
# Talks only to 127.0.0.1; the node is started with --dht-routers '' and stopped at the end.
set -euo pipefail
SIZE_MIB=${1:-1024}
BUILD=${2:-build}
SHOALD=$BUILD/tools/shoald/shoald
SHOAL=$BUILD/tools/shoal/shoal
[ -x "$SHOALD" ] && [ -x "$SHOAL" ] || { echo "bench: build first (missing $SHOALD)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/shoal-bench.XXXXXX)
NODE_PID=
cleanup() {
  [ -n "$NODE_PID" ] && kill "$NODE_PID" 2>/dev/null && wait "$NODE_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

now() { date +%s.%N; }
mbps() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%8.1f MB/s (%6.3f s)", b / s / 1e6, s }'; }

echo "== Shoal content benchmark: ${SIZE_MIB} MiB, $(nproc) cores"
head -c $((SIZE_MIB * 1024 * 1024)) /dev/urandom > "$WORK/data"
BYTES=$(stat -c %s "$WORK/data")
cat "$WORK/data" > /dev/null  # warm the page cache for every contender alike

t0=$(now); openssl dgst -sha256 "$WORK/data" > /dev/null; t1=$(now)
OPENSSL_S=$(echo "$t1 - $t0" | bc)

"$SHOALD" --data-dir "$WORK/node" --api 127.0.0.1:0 --listen 127.0.0.1:0 --dht-routers '' \
  --log-level warn > "$WORK/ready" 2> "$WORK/stderr" &
NODE_PID=$!
for _ in $(seq 1 200); do grep -q "shoald ready" "$WORK/ready" 2>/dev/null && break; sleep 0.05; done
API=$(sed -n 's/.*api=\([^ ]*\).*/\1/p' "$WORK/ready")
[ -n "$API" ] || { echo "bench: shoald did not start" >&2; cat "$WORK/stderr" >&2; exit 1; }

t0=$(now); ID=$("$SHOAL" --api "$API" add "$WORK/data"); t1=$(now)
ADD_S=$(echo "$t1 - $t0" | bc)
"$SHOAL" --api "$API" rm "$ID"
t0=$(now); ID2=$("$SHOAL" --api "$API" add --by-path "$WORK/data"); t1=$(now)
ADDP_S=$(echo "$t1 - $t0" | bc)
[ "$ID" = "$ID2" ] || { echo "bench: IDs differ: $ID $ID2" >&2; exit 1; }

t0=$(now); "$SHOAL" --api "$API" cat "$ID" > /dev/null; t1=$(now)
CAT_S=$(echo "$t1 - $t0" | bc)
t0=$(now); "$SHOAL" --api "$API" get "$ID" -o "$WORK/out"; t1=$(now)
GET_S=$(echo "$t1 - $t0" | bc)
cmp -s "$WORK/data" "$WORK/out" || { echo "bench: read-back differs" >&2; exit 1; }

printf 'openssl dgst -sha256 (1 core)   %s\n' "$(mbps "$BYTES" "$OPENSSL_S")"
printf 'shoal add (streamed over gRPC)  %s\n' "$(mbps "$BYTES" "$ADD_S")"
printf 'shoal add --by-path             %s\n' "$(mbps "$BYTES" "$ADDP_S")"
printf 'shoal cat > /dev/null           %s\n' "$(mbps "$BYTES" "$CAT_S")"
printf 'shoal get -o FILE               %s\n' "$(mbps "$BYTES" "$GET_S")"

# Latency of a whole `shoal node info` (process start, connect, RPC), timed from Python so that
# the timer's own forks are not counted.
/usr/bin/python3 - "$SHOAL" "$API" <<'PY'
import statistics, subprocess, sys, time
shoal, api = sys.argv[1], sys.argv[2]
runs = []
for _ in range(51):
    t0 = time.perf_counter()
    subprocess.run([shoal, "--api", api, "node", "info"], stdout=subprocess.DEVNULL, check=True)
    runs.append(time.perf_counter() - t0)
print("shoal node info median          %8.2f ms (51 runs, min %.2f ms)"
      % (statistics.median(runs) * 1000, min(runs) * 1000))
PY
