#!/usr/bin/env bash
# Adds a file to a fresh shoald and reads it back, printing MB/s beside its references measured
# in the same run (`openssl dgst -sha256` of the same file; `dd conv=fdatasync` of as many bytes:
# an add is durable, so the disk may be its floor), then the idle node's RSS and the median
# latency of `shoal node info`, each with its goal (docs/ARCHITECTURE.md, "The data path").
#
#   tools/bench/content_bench.sh [SIZE_MIB] [BUILD_DIR] [--json]   (defaults: 1024, ./build)
#
# --json: one JSON object with every figure as the last line.
# Talks only to 127.0.0.1; the nodes (one per add) are started with --dht-routers '' and stopped.
set -euo pipefail
JSON=0
ARGS=()
for a in "$@"; do [ "$a" = --json ] && JSON=1 || ARGS+=("$a"); done
SIZE_MIB=${ARGS[0]:-1024}
BUILD=${ARGS[1]:-build}
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
# Each timed write starts with the disk idle: the previous step's gigabyte still being written
# back (the data file itself before dd, the streamed add's removal before add --by-path) would
# slow whoever runs next.
settle() { sync; sleep 1; }
mbps() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%8.1f MB/s (%6.3f s)", b / s / 1e6, s }'; }

echo "== Shoal content benchmark: ${SIZE_MIB} MiB, $(nproc) cores"
head -c $((SIZE_MIB * 1024 * 1024)) /dev/urandom > "$WORK/data"
BYTES=$(stat -c %s "$WORK/data")
cat "$WORK/data" > /dev/null  # warm the page cache for every contender alike

t0=$(now); openssl dgst -sha256 "$WORK/data" > /dev/null; t1=$(now)
OPENSSL_S=$(echo "$t1 - $t0" | bc)
settle
t0=$(now); dd if=/dev/zero of="$WORK/dd" bs=1M count="$SIZE_MIB" conv=fdatasync status=none; t1=$(now)
DD_S=$(echo "$t1 - $t0" | bc)
rm -f "$WORK/dd"

# Starts a fresh node in $WORK/$1; sets NODE_PID and API.
start_node() {
  "$SHOALD" --data-dir "$WORK/$1" --api 127.0.0.1:0 --listen 127.0.0.1:0 --dht-routers '' \
    --log-level warn > "$WORK/$1.ready" 2> "$WORK/$1.stderr" &
  NODE_PID=$!
  for _ in $(seq 1 200); do grep -q "shoald ready" "$WORK/$1.ready" 2>/dev/null && break; sleep 0.05; done
  API=$(sed -n 's/.*api=\([^ ]*\).*/\1/p' "$WORK/$1.ready")
  [ -n "$API" ] || { echo "bench: shoald did not start" >&2; cat "$WORK/$1.stderr" >&2; exit 1; }
}

# Each add goes into a fresh node: the second add into the first's node followed the removal of
# a gigabyte (files deleted, tombstones compacted) and measured that too.
start_node node1
sleep 2  # idle: started, nothing asked of it yet
IDLE_KB=$(awk '/^VmRSS/ { print $2 }' "/proc/$NODE_PID/status")
settle
t0=$(now); ID=$("$SHOAL" --api "$API" add "$WORK/data"); t1=$(now)
ADD_S=$(echo "$t1 - $t0" | bc)
kill "$NODE_PID"; wait "$NODE_PID" 2>/dev/null || true
rm -rf "$WORK/node1"
start_node node2
settle
t0=$(now); ID2=$("$SHOAL" --api "$API" add --by-path "$WORK/data"); t1=$(now)
ADDP_S=$(echo "$t1 - $t0" | bc)
[ "$ID" = "$ID2" ] || { echo "bench: IDs differ: $ID $ID2" >&2; exit 1; }

t0=$(now); "$SHOAL" --api "$API" cat "$ID" > /dev/null; t1=$(now)
CAT_S=$(echo "$t1 - $t0" | bc)
t0=$(now); "$SHOAL" --api "$API" get "$ID" -o "$WORK/out"; t1=$(now)
GET_S=$(echo "$t1 - $t0" | bc)
cmp -s "$WORK/data" "$WORK/out" || { echo "bench: read-back differs" >&2; exit 1; }

# The goals of the data-path issue: add --by-path at least min(1.0x openssl, 0.9x dd), streamed
# add at least 0.8x that, cat at least 1.0x openssl.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b / a }'; }
ADD_FLOOR_S=$(awk -v o="$OPENSSL_S" -v d="$DD_S" 'BEGIN { d = d / 0.9; print (o > d ? o : d) }')
printf 'openssl dgst -sha256 (1 core)   %s\n' "$(mbps "$BYTES" "$OPENSSL_S")"
printf 'dd conv=fdatasync               %s\n' "$(mbps "$BYTES" "$DD_S")"
printf 'shoal add (streamed over gRPC)  %s  %sx of the add floor (goal >= 0.8)\n' \
  "$(mbps "$BYTES" "$ADD_S")" "$(ratio "$ADD_S" "$ADD_FLOOR_S")"
printf 'shoal add --by-path             %s  %sx of min(openssl, 0.9 dd) (goal >= 1.0)\n' \
  "$(mbps "$BYTES" "$ADDP_S")" "$(ratio "$ADDP_S" "$ADD_FLOOR_S")"
printf 'shoal cat > /dev/null           %s  %sx openssl (goal >= 1.0)\n' \
  "$(mbps "$BYTES" "$CAT_S")" "$(ratio "$CAT_S" "$OPENSSL_S")"
printf 'shoal get -o FILE               %s\n' "$(mbps "$BYTES" "$GET_S")"
printf 'idle shoald RSS                 %8.1f MB (goal <= 24)\n' "$(echo "$IDLE_KB / 1024" | bc -l)"

# Latency of a whole `shoal node info` (process start, connect, RPC), timed from Python so that
# the timer's own forks are not counted; after the `get` above has been written back.
rm -f "$WORK/out"
settle
/usr/bin/python3 - "$SHOAL" "$API" "$JSON" "$SIZE_MIB" "$BYTES" "$OPENSSL_S" "$DD_S" "$ADD_S" \
  "$ADDP_S" "$CAT_S" "$GET_S" "$IDLE_KB" <<'PY'
import json, statistics, subprocess, sys, time
shoal, api, as_json = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
size_mib, size = int(sys.argv[4]), int(sys.argv[5])
secs = dict(zip(["openssl", "dd_fdatasync", "add_streamed", "add_by_path", "cat", "get"],
                map(float, sys.argv[6:12])))
idle_mb = int(sys.argv[12]) / 1024
runs = []
for _ in range(51):
    t0 = time.perf_counter()
    subprocess.run([shoal, "--api", api, "node", "info"], stdout=subprocess.DEVNULL, check=True)
    runs.append(time.perf_counter() - t0)
med = statistics.median(runs) * 1000
print("shoal node info median          %8.2f ms (51 runs, min %.2f ms; goal <= 10)"
      % (med, min(runs) * 1000))
if as_json:
    print(json.dumps({"bench": "content", "size_mib": size_mib,
                      "mb_per_s": {k: round(size / v / 1e6, 1) for k, v in secs.items()},
                      "idle_rss_mb": round(idle_mb, 1), "node_info_median_ms": round(med, 2),
                      "goals": {"add_by_path_x_floor": 1.0, "add_streamed_x_floor": 0.8,
                                "cat_x_openssl": 1.0, "idle_rss_mb": 24,
                                "node_info_median_ms": 10}}))
PY
