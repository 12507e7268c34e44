#!/usr/bin/python3
"""Slow clients for tools/bench/gateway_bench.sh: can a real request still get through?

  gateway_bench_slow.py hold  HOST PORT PATH [--idle N] [--slow N] [--probes N] [--budget S]
                              [--expect-len BYTES]
  gateway_bench_slow.py probe HOST PORT PATH [--probes N] [--budget S] [--expect-len BYTES]

`hold` opens IDLE connections that send nothing and SLOW connections that send
"GET PATH HTTP/1.1\\r\\n..." one byte every 2 s (never finishing the header), staggered so that
the bytes are spread evenly over each 2 s. Once every connection is open (or has failed, or the
open phase ran out of time), it waits 0.5 s, counts the connections the server has closed, and
runs `probe` in a child process (so that this process's event loop does not skew the timings;
real requests 0.2 s apart) while it keeps the slow clients trickling. Before opening any, it
runs the same real requests once with no slow clients, for reference. Then it closes everything
and prints one JSON object.

`probe` makes real requests, one after another, each on a fresh connection (a full GET of PATH,
timed from connect to the last body byte), and prints one JSON object: latencies of the answered
ones, and the errors of the others.

Everything is bounded: at most --budget seconds (default 30) for the whole of `hold`, at most
IDLE + SLOW sockets. Talks only to the given HOST (the benchmark passes 127.0.0.1).
"""
import argparse
import ctypes
import errno
import heapq
import json
import os
import resource
import selectors
import signal
import socket
import statistics
import subprocess
import sys
import time

SLOW_INTERVAL_S = 2.0
SETTLE_S = 0.5
BASELINE_GAP_S = 0.05  # between real requests with no slow clients around
PROBE_GAP_S = 0.2  # between real requests while the slow clients are held: ~4 s in all, so
                   # that a server that times out slow headers after a few seconds still holds
                   # them while it is probed (held_at_end says how many it still held)


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def die_with_parent():
    """Asks the kernel to SIGTERM this process when its parent dies (Linux prctl)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def on_signal(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


# --- probe -----------------------------------------------------------------------------------

def one_request(host, port, path, expect_len, timeout):
    """One GET on a fresh connection. Returns (seconds, None) or (seconds, error string)."""
    t0 = time.perf_counter()
    deadline = t0 + timeout
    s = None
    try:
        s = socket.create_connection((host, port), timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n"
                  .encode())
        buf = bytearray()
        head_end = -1
        length = None
        status = None
        while True:
            left = deadline - time.perf_counter()
            if left <= 0:
                raise socket.timeout("timed out")
            s.settimeout(left)
            chunk = s.recv(1 << 18)
            if not chunk:
                break
            buf += chunk
            if head_end < 0:
                head_end = buf.find(b"\r\n\r\n")
                if head_end >= 0:
                    lines = bytes(buf[:head_end]).decode("latin-1").split("\r\n")
                    parts = lines[0].split(" ", 2)
                    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
                    for line in lines[1:]:
                        name, _, value = line.partition(":")
                        if name.strip().lower() == "content-length":
                            length = int(value.strip())
            if head_end >= 0 and length is not None and len(buf) - head_end - 4 >= length:
                break
        elapsed = time.perf_counter() - t0
        if head_end < 0:
            return elapsed, "closed before a response" if not buf else "incomplete header"
        body = len(buf) - head_end - 4
        if status != 200:
            return elapsed, f"HTTP {status}"
        if length is None or body < length:
            return elapsed, f"short body ({body} of {length} bytes)"
        if expect_len is not None and length != expect_len:
            return elapsed, f"unexpected length {length}"
        return elapsed, None
    except socket.timeout:
        return time.perf_counter() - t0, "timeout"
    except OSError as e:
        return time.perf_counter() - t0, errno.errorcode.get(e.errno, str(e)) if e.errno else str(e)
    finally:
        if s is not None:
            s.close()


def probe(host, port, path, count, budget, expect_len, gap):
    deadline = time.monotonic() + budget
    lat_ms, errors = [], []
    for i in range(count):
        left = deadline - time.monotonic()
        if left <= 0.05:
            errors.append("not run (time budget)")
            continue
        if i:
            time.sleep(min(gap, left / 2))
        left = deadline - time.monotonic()
        elapsed, err = one_request(host, port, path, expect_len, min(5.0, left))
        if err is None:
            lat_ms.append(elapsed * 1000)
        else:
            errors.append(f"{err} after {elapsed * 1000:.1f} ms")
    return summarize(count, lat_ms, errors)


def summarize(count, lat_ms, errors):
    return {
        "requests": count,
        "answered": len(lat_ms),
        "latency_ms": [round(x, 3) for x in lat_ms],
        "max_ms": round(max(lat_ms), 3) if lat_ms else None,
        "median_ms": round(statistics.median(lat_ms), 3) if lat_ms else None,
        "errors": errors,
    }


# --- hold ------------------------------------------------------------------------------------

class Conn:
    __slots__ = ("idx", "sock", "slow", "state", "sent", "opened", "got_data")

    def __init__(self, idx, sock, slow):
        self.idx = idx
        self.sock = sock
        self.opened = None  # when the connect completed (monotonic)
        self.slow = slow
        self.state = "connecting"  # connecting, open, closed (by the server), failed
        self.sent = 0
        self.got_data = False


def hold(args):
    t_start = time.monotonic()
    deadline = t_start + args.budget
    nofile = raise_nofile()
    total = args.idle + args.slow
    if total + 64 > nofile:
        sys.exit(f"gateway_bench_slow: open-file limit {nofile} too low for {total} connections")

    # The bytes a slow client trickles: a request line and then headers, never the blank line.
    trickle = (f"GET {args.path} HTTP/1.1\r\nHost: {args.host}:{args.port}\r\n".encode() +
               b"X-Slow: 1\r\n" * 64)

    # The same requests with no slow clients around, for reference.
    baseline = probe(args.host, args.port, args.path, args.probes, min(5.0, args.budget / 6),
                     args.expect_len, BASELINE_GAP_S)
    open_deadline = time.monotonic() + min(10.0, args.budget / 3)

    sel = selectors.EpollSelector()
    conns = []
    sends = []  # heap of (time, index) for slow clients
    slow_started = [0]
    lifetimes = []  # seconds from connect to the server's close, for closed connections
    counts = {"connect_failed": 0, "connect_timeout": 0, "closed_by_server": 0,
              "send_errors": 0, "server_sent_data": 0}

    def mark_closed(c, how):
        if c.state in ("closed", "failed"):
            return
        try:
            sel.unregister(c.sock)
        except (KeyError, ValueError):
            pass
        c.sock.close()
        if c.state == "connecting":
            counts["connect_failed"] += 1
            c.state = "failed"
        else:
            counts[how] += 1
            lifetimes.append(time.monotonic() - c.opened)
            c.state = "closed"

    def on_event(c, mask):
        if c.state == "connecting":
            err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                mark_closed(c, "connect_failed")
                return
            c.state = "open"
            c.opened = time.monotonic()
            sel.modify(c.sock, selectors.EVENT_READ, c)
            if c.slow:
                # Spread the first bytes over one interval so that sends do not come in bursts.
                slow_started[0] += 1
                heapq.heappush(sends, (time.monotonic() + (slow_started[0] % args.slow) *
                                       SLOW_INTERVAL_S / args.slow, c.idx))
            return
        if mask & selectors.EVENT_READ:
            try:
                data = c.sock.recv(65536)
            except BlockingIOError:
                return
            except OSError:
                mark_closed(c, "closed_by_server")
                return
            if not data:
                mark_closed(c, "closed_by_server")
            elif not c.got_data:  # e.g. a 408 or 400; keep reading until EOF
                c.got_data = True
                counts["server_sent_data"] += 1

    def do_sends(now):
        while sends and sends[0][0] <= now:
            _, idx = heapq.heappop(sends)
            c = conns[idx]
            if c.state != "open":
                continue
            try:
                c.sock.send(trickle[c.sent % len(trickle):c.sent % len(trickle) + 1])
                c.sent += 1
            except BlockingIOError:
                pass
            except OSError:
                counts["send_errors"] += 1
                mark_closed(c, "closed_by_server")
                continue
            heapq.heappush(sends, (now + SLOW_INTERVAL_S, idx))

    def pump(until):
        """Runs the event loop once, and on until `until` (monotonic) or the deadline."""
        while True:
            now = time.monotonic()
            wait = max(0.0, min(until, deadline) - now)
            if sends:
                wait = min(wait, max(0.0, sends[0][0] - now))
            for key, mask in sel.select(timeout=min(wait, 0.05)):
                on_event(key.data, mask)
            do_sends(time.monotonic())
            if time.monotonic() >= min(until, deadline):
                return

    probe_result = None
    child = None
    try:
        # Open phase: every connect is non-blocking; they complete as the server's backlog allows.
        t_open0 = time.monotonic()
        for i in range(total):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            # Idle and slow clients alternate while both kinds remain.
            c = Conn(i, s, slow=(i % 2 == 1) if i < 2 * min(args.idle, args.slow)
                     else (args.slow > args.idle))
            conns.append(c)
            try:
                s.connect((args.host, args.port))
            except BlockingIOError:
                pass
            except OSError:
                mark_closed(c, "connect_failed")
                continue
            sel.register(s, selectors.EVENT_WRITE, c)
            if i % 100 == 99:
                pump(time.monotonic())  # handle completions as we go
        while time.monotonic() < open_deadline and any(c.state == "connecting" for c in conns):
            pump(min(open_deadline, time.monotonic() + 0.1))
        for c in conns:
            if c.state == "connecting":
                sel.unregister(c.sock)
                c.sock.close()
                c.state = "failed"
                counts["connect_timeout"] += 1
        t_opened = time.monotonic()
        connected = sum(1 for c in conns if c.state in ("open", "closed"))

        pump(t_opened + SETTLE_S)
        open_at_probe = sum(1 for c in conns if c.state == "open")
        open_idle_at_probe = sum(1 for c in conns if c.state == "open" and not c.slow)
        open_slow_at_probe = open_at_probe - open_idle_at_probe

        # Probe phase, in a child process; keep trickling meanwhile.
        probe_budget = max(0.5, deadline - time.monotonic() - 1.0)
        child = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "probe", args.host, str(args.port),
             args.path, "--probes", str(args.probes), "--budget", f"{probe_budget:.3f}",
             *(["--expect-len", str(args.expect_len)] if args.expect_len is not None else [])],
            stdout=subprocess.PIPE)
        os.set_blocking(child.stdout.fileno(), False)
        out = bytearray()
        while time.monotonic() < deadline:
            pump(time.monotonic() + 0.05)
            try:
                chunk = os.read(child.stdout.fileno(), 65536)
                if chunk:
                    out += chunk
            except BlockingIOError:
                pass
            if child.poll() is not None:
                out += child.stdout.read() or b""
                break
        if child.poll() is None:
            child.kill()
            child.wait()
            probe_result = summarize(args.probes, [], ["probe did not finish in the time budget"])
        else:
            probe_result = json.loads(out.decode() or "null") or summarize(
                args.probes, [], [f"probe exited with status {child.returncode}"])
        child = None
        open_at_end = sum(1 for c in conns if c.state == "open")
        t_end = time.monotonic()
    finally:
        if child is not None and child.poll() is None:
            child.kill()
            child.wait()
        for c in conns:
            if c.state in ("open", "connecting"):
                c.sock.close()
        sel.close()

    return {
        "target": f"{args.host}:{args.port}{args.path}",
        "idle": args.idle,
        "slow": args.slow,
        "attempted": total,
        "connected": connected,
        "connect_failed": counts["connect_failed"],
        "connect_timeout": counts["connect_timeout"],
        "open_seconds": round(t_opened - t_open0, 3),
        "held_at_probe": open_at_probe,
        "held_idle_at_probe": open_idle_at_probe,
        "held_slow_at_probe": open_slow_at_probe,
        "held_at_end": open_at_end,
        "closed_by_server": counts["closed_by_server"],
        "closed_after_s": None if not lifetimes else {
            "min": round(min(lifetimes), 3), "median": round(statistics.median(lifetimes), 3),
            "max": round(max(lifetimes), 3)},
        "server_sent_data": counts["server_sent_data"],
        "slow_bytes_sent": sum(c.sent for c in conns),
        "seconds": round(t_end - t_start, 3),
        "baseline": baseline,
        "probe": probe_result,
    }


def main():
    signal.signal(signal.SIGTERM, on_signal)
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=["hold", "probe"])
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("path")
    ap.add_argument("--idle", type=int, default=2000)
    ap.add_argument("--slow", type=int, default=2000)
    ap.add_argument("--probes", type=int, default=20)
    ap.add_argument("--budget", type=float, default=30.0)
    ap.add_argument("--expect-len", type=int, default=None)
    ap.add_argument("--gap", type=float, default=PROBE_GAP_S, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.idle < 0 or args.slow < 0 or args.idle + args.slow > 20000 or args.probes > 1000:
        sys.exit("gateway_bench_slow: counts out of range")
    args.budget = max(1.0, min(args.budget, 120.0))
    try:
        if args.mode == "probe":
            die_with_parent()
            result = probe(args.host, args.port, args.path, args.probes, args.budget,
                           args.expect_len, args.gap)
        else:
            result = hold(args)
    except KeyboardInterrupt:  # SIGTERM from the benchmark's cleanup, or Ctrl-C
        sys.exit(130)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
