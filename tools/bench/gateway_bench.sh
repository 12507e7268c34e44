#!/usr/bin/env bash
# Benchmarks shoald's HTTP gateway against nginx in the same run, on loopback, and prints a
# comparison table (or, with --json, one JSON object with every figure).
#
#   bash tools/bench/gateway_bench.sh [BUILD_DIR=build] [--duration S (10)] [--json]
#
# Both servers serve the same random bytes: shoald (temp --data-dir, the objects added with
# `shoal add`) as /content/<id>, nginx (nginx-light, its own config, started and stopped here)
# from a temp root as /obj64k and /obj10m. Scenarios, each against both servers, one after
# the other:
#   - wrk (2 threads, --latency, 2 s timeout): 64 KiB at 50 and at 2,000 connections, 10 MiB at
#     10 connections, S seconds each;
#   - slow clients (tools/bench/gateway_bench_slow.py, at most 30 s): 4,000 connections held
#     open, half sending nothing, half sending a request header one byte every 2 s; meanwhile
#     20 real requests for the 64 KiB object, each on a fresh connection.
# Targets (checked against the gateway; nginx is the reference): >= 0.8x nginx's requests/s
# at 50 and at 2,000 connections, >= 0.9x its bytes/s on 10 MiB, no socket errors and no
# failed (HTTP >= 400) responses in any wrk run, and all 20 real requests answered with
# the slowest under 100 ms while the slow clients are held.
#
# Installs wrk and nginx-light with apt-get when they are missing. Raises the open-file limit
# to its hard limit. Talks only to 127.0.0.1; everything it starts is stopped, and its temp
# dir removed, on exit (Ctrl-C included). Exit status 0 when the benchmark ran (whatever the
# targets gave: see the table, or .pass in the JSON), 1 when it could not run.
set -euo pipefail

usage() { sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//'; }

HERE="$(cd "$(dirname "$0")" && pwd)"
BUILD=build
DURATION=10
JSON=0
build_set=0
while [ $# -gt 0 ]; do
  case "$1" in
    --json) JSON=1 ;;
    --duration) [ $# -ge 2 ] || { usage >&2; exit 1; }; DURATION=$2; shift ;;
    --duration=*) DURATION=${1#--duration=} ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "gateway_bench: unknown option $1" >&2; usage >&2; exit 1 ;;
    *) [ $build_set = 0 ] || { usage >&2; exit 1; }; BUILD=$1; build_set=1 ;;
  esac
  shift
done
[[ "$DURATION" =~ ^[1-9][0-9]*$ ]] || { echo "gateway_bench: --duration wants whole seconds" >&2; exit 1; }

PY=/usr/bin/python3
SHOALD=$BUILD/tools/shoald/shoald
SHOAL=$BUILD/tools/shoal/shoal
CONNS_SMALL=50
CONNS_LARGE=2000
CONNS_BIG_OBJ=10
WRK_THREADS=2
SLOW_IDLE=2000
SLOW_SLOW=2000
SLOW_PROBES=20
SLOW_BUDGET=30

log() { echo "gateway_bench: $*" >&2; }
fail() { log "$*"; exit 1; }

[ -x "$SHOALD" ] && [ -x "$SHOAL" ] || fail "build first (missing $SHOALD or $SHOAL)"
[ -x "$PY" ] || fail "needs $PY"

# --- packages -------------------------------------------------------------------------------
missing=()
command -v wrk > /dev/null || missing+=(wrk)
command -v nginx > /dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >&2; then
    $SUDO apt-get update -q >&2
    $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
  fi
fi
WRK=$(command -v wrk)
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
WRK_VERSION=$("$WRK" -v 2>&1 | awk 'NR == 1 {print $2}' || true)
NGINX_VERSION=$("$NGINX" -v 2>&1 | sed -n 's/.*nginx\///p' || true)

# --- open files: 2,000 wrk connections, 4,000 slow clients, and the servers' side of them ----
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt 16384 ]; then
  ulimit -Hn 65536 2> /dev/null || true
  hard=$(ulimit -Hn)
fi
ulimit -n "$hard" 2> /dev/null || true
NOFILE=$(ulimit -n)
[ "$NOFILE" = unlimited ] || [ "$NOFILE" -ge 8192 ] ||
  log "warning: open-file limit is $NOFILE; 2,000 and 4,000 connections may fail on the client side"

LOAD_START=$(cut -d' ' -f1 /proc/loadavg)  # other work on the machine makes the figures noisy

# --- temp dir and cleanup -----------------------------------------------------------------------
WORK=$(mktemp -d /tmp/shoal-gateway-bench.XXXXXX)
chmod 755 "$WORK"  # nginx's workers (user nobody when started as root) read the root below
NODE_PID=
NGINX_PID=
CHILD_PID=
stop_pid() {  # PID SECONDS: SIGTERM, then SIGKILL after SECONDS
  local pid=$1 i
  kill -TERM "$pid" 2> /dev/null || return 0
  for ((i = 0; i < $2 * 10; i++)); do kill -0 "$pid" 2> /dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2> /dev/null || true
  wait "$pid" 2> /dev/null || true
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ -z "$CHILD_PID" ] || stop_pid "$CHILD_PID" 2
  if [ -n "$NGINX_PID" ]; then
    local workers
    workers=$(pgrep -P "$NGINX_PID" 2> /dev/null || true)
    stop_pid "$NGINX_PID" 5
    for w in $workers; do kill -KILL "$w" 2> /dev/null || true; done
  fi
  [ -z "$NODE_PID" ] || stop_pid "$NODE_PID" 10
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'log interrupted; exit 130' INT
trap 'log terminated; exit 143' TERM

# Runs a command in the background and waits for it, so that a trapped signal interrupts the
# wait at once and cleanup can stop the command.
run() {
  "$@" &
  CHILD_PID=$!
  local rc=0
  wait "$CHILD_PID" || rc=$?
  CHILD_PID=
  return "$rc"
}

# --- the objects --------------------------------------------------------------------------------
ROOT=$WORK/root
mkdir -p "$ROOT"
head -c $((64 * 1024)) /dev/urandom > "$ROOT/obj64k"
head -c $((10 * 1024 * 1024)) /dev/urandom > "$ROOT/obj10m"
chmod 755 "$ROOT"
chmod 644 "$ROOT/obj64k" "$ROOT/obj10m"

# --- shoald ---------------------------------------------------------------------------------------
log "starting shoald ($SHOALD)"
"$SHOALD" --data-dir "$WORK/node" --api 127.0.0.1:0 --listen 127.0.0.1:0 \
  --gateway 127.0.0.1:0 --dht-routers '' --log-level warn > "$WORK/shoald.out" 2> "$WORK/shoald.err" &
NODE_PID=$!
for _ in $(seq 1 400); do
  grep -q "^shoald ready" "$WORK/shoald.out" 2> /dev/null && break
  kill -0 "$NODE_PID" 2> /dev/null || break
  sleep 0.05
done
API=$(sed -n 's/^shoald ready.* api=\([^ ]*\).*/\1/p' "$WORK/shoald.out")
[ -n "$API" ] || { cat "$WORK/shoald.err" >&2; fail "shoald did not start"; }
GATEWAY=$(sed -n 's/^shoald ready.* gateway=\([^ ]*\).*/\1/p' "$WORK/shoald.out")
if [ -z "$GATEWAY" ]; then  # older binaries print no gateway= on the ready line
  GATEWAY=$("$SHOAL" --api "$API" node info --json |
    "$PY" -c 'import json, sys; print(json.load(sys.stdin).get("gateway_address", ""))')
fi
[ -n "$GATEWAY" ] || fail "shoald reports no gateway address"
case "$GATEWAY" in 127.0.0.1:*) ;; *) fail "gateway is not on 127.0.0.1: $GATEWAY" ;; esac
GW_PORT=${GATEWAY##*:}
ID64=$("$SHOAL" --api "$API" add "$ROOT/obj64k")
ID10=$("$SHOAL" --api "$API" add "$ROOT/obj10m")
GW_64=http://$GATEWAY/content/$ID64
GW_10=http://$GATEWAY/content/$ID10

# --- nginx ------------------------------------------------------------------------------------------
NGX=$WORK/nginx
mkdir -p "$NGX/tmp"
free_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
start_nginx() {
  NGX_PORT=$(free_port)
  # worker_connections is above any connection count here (4,000 slow clients + probes, per
  # worker); the backlog matches the gateway's (SOMAXCONN); keepalive_requests is raised so
  # that, like the gateway, nginx does not close wrk's keep-alive connections every 1,000
  # requests (its default).
  cat > "$NGX/nginx.conf" << EOF
daemon off;
worker_processes $(nproc);
worker_rlimit_nofile $NOFILE_NGINX;
pid $NGX/nginx.pid;
error_log $NGX/error.log warn;
events {
  worker_connections 10240;
}
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_timeout 60s;
  keepalive_requests 1000000;
  default_type application/octet-stream;
  client_body_temp_path $NGX/tmp/body;
  proxy_temp_path $NGX/tmp/proxy;
  fastcgi_temp_path $NGX/tmp/fastcgi;
  uwsgi_temp_path $NGX/tmp/uwsgi;
  scgi_temp_path $NGX/tmp/scgi;
  server {
    listen 127.0.0.1:$NGX_PORT backlog=4096;
    root $ROOT;
    location / { }
  }
}
EOF
  "$NGINX" -p "$NGX/" -c "$NGX/nginx.conf" -e "$NGX/error.log" 2>> "$NGX/error.log" &
  NGINX_PID=$!
  local i
  for ((i = 0; i < 100; i++)); do
    kill -0 "$NGINX_PID" 2> /dev/null || break
    (exec 3<> "/dev/tcp/127.0.0.1/$NGX_PORT") 2> /dev/null && return 0
    sleep 0.05
  done
  stop_pid "$NGINX_PID" 2
  NGINX_PID=
  return 1
}
NOFILE_NGINX=$NOFILE
[ "$NOFILE_NGINX" != unlimited ] || NOFILE_NGINX=65536
log "starting nginx $NGINX_VERSION"
started=0
for _ in 1 2 3; do start_nginx && { started=1; break; }; done  # a free port may be taken meanwhile
[ $started = 1 ] || { cat "$NGX/error.log" >&2; fail "nginx did not start"; }
NG_64=http://127.0.0.1:$NGX_PORT/obj64k
NG_10=http://127.0.0.1:$NGX_PORT/obj10m

# --- both serve the same bytes (this also warms both up) ------------------------------------
node_alive() {  # running, not a zombie waiting to be reaped
  kill -0 "$NODE_PID" 2> /dev/null && ! grep -q '^State:[[:space:]]*Z' "/proc/$NODE_PID/status" 2> /dev/null
}
node_died() {  # WHEN: says how shoald ended and shows the end of its log
  local rc=0
  wait "$NODE_PID" 2> /dev/null || rc=$?
  NODE_PID=
  if [ "$rc" -gt 128 ]; then
    log "shoald died $1 (signal $((rc - 128)))"
  else
    log "shoald exited $1 (status $rc)"
  fi
  tail -5 "$WORK/shoald.err" >&2 || true
}
if ! "$PY" - "$GW_64" "$ROOT/obj64k" "$GW_10" "$ROOT/obj10m" "$NG_64" "$ROOT/obj64k" \
    "$NG_10" "$ROOT/obj10m" << 'PY'; then
import sys, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, no proxy
args = sys.argv[1:]
for url, path in zip(args[::2], args[1::2]):
    want = open(path, "rb").read()
    for _ in range(3):
        try:
            with opener.open(url, timeout=30) as r:
                status, got = r.status, r.read()
        except Exception as e:  # HTTP errors, resets, short bodies
            sys.exit(f"gateway_bench: GET {url}: {type(e).__name__}: {str(e)[:200]}")
        if status != 200 or got != want:
            sys.exit(f"gateway_bench: GET {url}: HTTP {status}, {len(got)} bytes, "
                     f"expected 200 and the {len(want)} bytes of {path}")
PY
  node_alive || node_died "while serving the first requests"
  fail "a server does not serve the expected bytes; not benchmarking"
fi

# --- wrk ------------------------------------------------------------------------------------------
# done() only: wrk keeps its fast path (no per-response Lua) and prints the exact figures.
cat > "$WORK/done.lua" << 'EOF'
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%.0f,"bytes":%.0f,"duration_us":%.0f,"connect":%.0f,"read":%.0f,' ..
    '"write":%.0f,"timeout":%.0f,"status":%.0f,"lat_mean_us":%.1f,"lat_max_us":%.0f,' ..
    '"lat_p50_us":%.0f,"lat_p90_us":%.0f,"lat_p99_us":%.0f}\n',
    summary.requests, summary.bytes, summary.duration, e.connect, e.read, e.write, e.timeout,
    e.status, latency.mean, latency.max, latency:percentile(50), latency:percentile(90),
    latency:percentile(99)))
end
EOF

wrk_run() {  # NAME TARGET CONNECTIONS URL
  local out=$WORK/wrk_$1_$2.txt
  log "wrk: $1 against $2 ($3 connections, ${DURATION} s)"
  run "$WRK" -t"$WRK_THREADS" -c"$3" -d"${DURATION}s" --timeout 2s --latency \
    -s "$WORK/done.lua" "$4" > "$out" 2>&1 || log "wrk exited with status $? (see the figures)"
  [ "$2" != gateway ] || [ -z "$NODE_PID" ] || node_alive || node_died "during wrk $1"
  sleep 1  # let the closed connections drain before the next run
}
for spec in "64k_50 $CONNS_SMALL $GW_64 $NG_64" "64k_2000 $CONNS_LARGE $GW_64 $NG_64" \
            "10m_10 $CONNS_BIG_OBJ $GW_10 $NG_10"; do
  read -r name conns gw ng <<< "$spec"
  wrk_run "$name" gateway "$conns" "$gw"
  wrk_run "$name" nginx "$conns" "$ng"
done

# --- slow clients -----------------------------------------------------------------------------------
slow_run() {  # TARGET PORT PATH
  log "slow clients against $1: $SLOW_IDLE idle + $SLOW_SLOW slow, $SLOW_PROBES real requests (<= ${SLOW_BUDGET} s)"
  run "$PY" "$HERE/gateway_bench_slow.py" hold 127.0.0.1 "$2" "$3" --idle "$SLOW_IDLE" \
    --slow "$SLOW_SLOW" --probes "$SLOW_PROBES" --budget "$SLOW_BUDGET" --expect-len 65536 \
    > "$WORK/slow_$1.json" || log "slow-client helper exited with status $?"
  sleep 1
}
slow_run gateway "$GW_PORT" "/content/$ID64"
[ -z "$NODE_PID" ] || node_alive || node_died "during the slow-client run"
slow_run nginx "$NGX_PORT" /obj64k

# --- report -------------------------------------------------------------------------------------------
ALIVE=false
[ -n "$NODE_PID" ] && node_alive && ALIVE=true
report_args=(--work "$WORK" --duration "$DURATION" --threads "$WRK_THREADS"
  --meta "shoald=$SHOALD" --meta "gateway=$GATEWAY" --meta "nginx=127.0.0.1:$NGX_PORT"
  --meta "id_64k=$ID64" --meta "id_10m=$ID10"
  --meta "wrk_version=$WRK_VERSION" --meta "nginx_version=$NGINX_VERSION"
  --meta "open_files=$NOFILE" --meta "shoald_alive_at_end=$ALIVE"
  --meta "shoald_mtime=$(stat -c %y "$SHOALD" | cut -c1-19)"
  --meta "loadavg_start=$LOAD_START" --meta "loadavg_end=$(cut -d' ' -f1 /proc/loadavg)")
[ $JSON = 1 ] && report_args+=(--json)
"$PY" "$HERE/gateway_bench_report.py" "${report_args[@]}"
