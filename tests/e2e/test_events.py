"""End-to-end: the events stream (`shoal watch --json`, NodeService.Events) for every kind of
work, a slow consumer's cost, and `shoal top` (one frame with --once; the live dashboard under a
pseudo-terminal)."""
import fcntl
import json
import os
import pty
import select
import struct
import subprocess
import termios
import threading
import time

import pytest

from conftest import SHOAL
from test_fetch import lt_session
from test_torrent import SIZES, lt_seeds
from test_utp import wait_for


class Watch:
    """`shoal watch --json` in the background, its events collected as dicts."""

    def __init__(self, node, *args):
        self.proc = subprocess.Popen([SHOAL, "--api", node.api, "watch", "--json", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.events = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            self.events.append(json.loads(line))

    def kinds(self):
        return [e["kind"] for e in self.events]

    def wait_kind(self, kind, timeout=30):
        wait_for(lambda: kind in self.kinds(), timeout, f"a {kind} event")
        return [e for e in self.events if e["kind"] == kind]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.thread.join(timeout=10)


def test_watch_shows_a_fetch_between_nodes(make_node, tmp_dir):
    origin = make_node("origin")
    fetcher = make_node("fetcher", extra_args=["--bootstrap", origin.listen])
    data = os.urandom(24 << 20)
    (tmp_dir / "f").write_bytes(data)
    cid = origin.cli("add", str(tmp_dir / "f")).stdout.decode().split()[-1]
    watch = Watch(fetcher)
    origin_watch = Watch(origin, "--replay")
    try:
        time.sleep(0.5)  # the stream is open
        # Slow enough (about 4 s) for progress events with an ETA.
        fetcher.cli("torrent", "limit", "--down", str(6 << 20))
        fetcher.cli("get", cid, "-o", str(tmp_dir / "out"))
        assert (tmp_dir / "out").read_bytes() == data
        [started] = watch.wait_kind("fetch_started")
        assert started["id"] == cid and started["providers"] >= 1, started
        [done] = watch.wait_kind("fetch_completed")
        assert done["id"] == cid and done["bytes"] == len(data), done
        assert done["seconds"] > 0 and done["average_rate"] > 0, done
        assert sum(done["bytes_per_provider"].values()) >= len(data), done
        assert origin.listen in done["bytes_per_provider"], done
        progress = [e for e in watch.events if e["kind"] == "fetch_progress"]
        assert progress, watch.events
        assert any(e["eta_seconds"] is not None and e["eta_seconds"] > 0 for e in progress), \
            progress
        assert all(e["id"] == cid and e["total_bytes"] == len(data) for e in progress)
        # In order: started, progress, completed; at most a few progress events a second.
        kinds = watch.kinds()
        assert kinds.index("fetch_started") < kinds.index("fetch_progress") < kinds.index(
            "fetch_completed"), kinds
        assert len(progress) <= 4 * (done["seconds"] + 1), progress
        # The origin's own stream: its content was added, and its cluster DHT came up.
        origin_watch.wait_kind("content_added")
        added = [e for e in origin_watch.events if e["kind"] == "content_added"]
        assert added[0]["id"] == cid and added[0]["length"] == len(data)
        states = [e for e in origin_watch.events if e["kind"] == "dht_state"]
        assert any(e["network"] == "cluster" for e in states), origin_watch.events
        # Pin, unpin and remove show too.
        fetcher.cli("pin", cid)
        fetcher.cli("unpin", cid)
        fetcher.cli("rm", cid)
        watch.wait_kind("content_removed")
        tail = [e["kind"] for e in watch.events if e.get("id") == cid][-3:]
        assert tail == ["content_pinned", "content_unpinned", "content_removed"], tail
    finally:
        watch.stop()
        origin_watch.stop()


def test_watch_shows_an_eviction_and_a_failed_fetch(make_node, tmp_dir):
    node = make_node(extra_args=["--capacity", "3MiB", "--fetch-timeout", "2"])
    watch = Watch(node)
    try:
        time.sleep(0.5)
        (tmp_dir / "a").write_bytes(os.urandom(2 << 20))
        (tmp_dir / "b").write_bytes(os.urandom(2 << 20))
        a = node.cli("add", str(tmp_dir / "a")).stdout.decode().split()[-1]
        node.cli("add", str(tmp_dir / "b"))
        [evicted] = watch.wait_kind("content_evicted")
        assert evicted["id"] == a and evicted["length"] == 2 << 20, evicted
        assert "capacity" in evicted["reason"], evicted
        # Nobody to ask: the fetch fails at once, and says why.
        node.cli("cat", "cd" * 32, check=False)
        [failed] = watch.wait_kind("fetch_failed")
        assert failed["id"] == "cd" * 32 and failed["reason"], failed
        # The text form: one line per event, kind and ID.
        text = node.cli("watch", "--replay", "--count", "3", timeout=20).stdout.decode()
        assert "content_evicted" in text or "content_added" in text, text
    finally:
        watch.stop()


def peak_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM")


def fetch_peak_rss(make_node, tmp_dir, origin, cid, name, slow_watcher):
    """A new node fetches `cid` from `origin` (to /dev/null); returns its peak RSS in KiB."""
    import grpc
    from shoal.v1 import shoal_pb2, shoal_pb2_grpc
    node = make_node(name, extra_args=["--bootstrap", origin.listen])
    stop = threading.Event()
    read = []
    channel = grpc.insecure_channel(node.api)
    stream = shoal_pb2_grpc.NodeServiceStub(channel).Events(
        shoal_pb2.EventsRequest(replay=True))

    def consume():
        try:
            for event in stream:
                read.append(event.kind)
                if stop.wait(1.0):  # one event a second
                    break
        except grpc.RpcError:
            pass  # cancelled below

    consumer = threading.Thread(target=consume, daemon=True) if slow_watcher else None
    if consumer:
        consumer.start()
        time.sleep(0.5)
    node.cli("cat", cid, timeout=300)  # (output discarded by capture)
    rss = peak_rss_kib(node.proc.pid)
    stop.set()
    stream.cancel()
    channel.close()
    if consumer:
        consumer.join(timeout=10)
        assert read, "the slow consumer read nothing"
    node.stop()
    return rss


def test_slow_event_consumer_costs_no_memory(make_node, tmp_dir):
    """A client reading one event a second during a 1 GiB fetch: the fetching node's peak RSS
    grows by at most 5 MB over the same fetch with no watcher (the best of three runs each: a
    fetch's peak varies by a few MB from run to run, with the timing of memtable flushes)."""
    origin = make_node("origin")
    src = tmp_dir / "big"
    with open(src, "wb") as f:
        block = os.urandom(1 << 20)
        for i in range(1024):
            f.write(block[i:] + block[:i])
    cid = origin.cli("add", "--by-path", str(src), timeout=300).stdout.decode().split()[-1]
    src.unlink()
    plain, watched = [], []
    for run in range(3):
        plain.append(fetch_peak_rss(make_node, tmp_dir, origin, cid, f"plain{run}", False))
        watched.append(fetch_peak_rss(make_node, tmp_dir, origin, cid, f"watched{run}", True))
    print(f"peak RSS KiB: no watcher {plain}, slow watcher {watched}")
    assert min(watched) <= min(plain) + 5 * 1024, (plain, watched)


def slow_download(node, tmp_dir, seed, rate):
    """`node` downloads a torrent from a libtorrent seed at `rate` bytes/s; returns (the
    libtorrent session, which must outlive the download, and the torrent's ID)."""
    ses = lt_session()
    _, _, tfile = lt_seeds(tmp_dir, ses, SIZES, seed=seed, kind="v1")
    node.cli("torrent", "limit", "--down", str(rate))
    tid = node.cli("torrent", "add", str(tfile), "--save-path", str(tmp_dir / "dl"), "--peer",
                   f"127.0.0.1:{ses.listen_port()}").stdout.decode().strip()
    return ses, tid


def test_top_once_shows_a_transfer(make_node, tmp_dir):
    """A torrent downloading slowly from libtorrent: one frame of top shows its name, its rate
    and an ETA."""
    node = make_node()
    ses, tid = slow_download(node, tmp_dir, seed=41, rate=150000)

    def frame():
        return node.cli("top", "--once").stdout.decode()

    def shows_transfer():
        rows = [line for line in frame().splitlines() if line.startswith(" content")]
        return rows and rows[0].split()[-1] not in ("-", "") and "/s" in rows[0]

    wait_for(shows_transfer, 20, "top to show the torrent with an ETA")
    text = frame()
    print(text)
    lines = text.splitlines()
    assert lines[0].startswith("shoal top  node " + node.node_id[:12]), text
    assert all(len(line) <= 80 for line in lines), text
    assert "\x1b" not in text  # plain text
    [row] = [line for line in lines if line.startswith(" content")]
    assert " down " in row and ("K/s" in row or "M/s" in row), row
    assert tid  # (the torrent is named "content": its folder)


def read_pty(fd, seconds, until=None):
    """What the program on pty `fd` writes for `seconds`, or until `until()` is true."""
    out = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not (until and until()):
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try:
                out += os.read(fd, 65536)
            except OSError:
                time.sleep(0.1)  # the other side closed; the child is exiting
    return out


def run_top_in_pty(node, keys, wait=3.0):
    """Runs `shoal top` on a pseudo-terminal for `wait` seconds, then types `keys` (bytes, or a
    list of them typed 1.5 s apart: the last should make it exit). Returns
    (exit code, everything it wrote, terminal attributes before, while running, after)."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(SHOAL, [SHOAL, "--api", node.api, "top"])
    before = termios.tcgetattr(fd)
    out = read_pty(fd, wait / 2)
    # A resize (the pty starts at 0x0, which top takes as 80x24): it redraws at 100x30.
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    resized = read_pty(fd, wait / 2)
    out += resized
    mid = termios.tcgetattr(fd)
    # Keys before the last one each get a moment to act.
    keys = keys if isinstance(keys, list) else [keys]
    for k in keys[:-1]:
        os.write(fd, k)
        out += read_pty(fd, 1.5)
    os.write(fd, keys[-1])
    status = []

    def exited():
        done, st, usage = os.wait4(pid, os.WNOHANG)
        if done:
            status.append(st)
            status.append(usage.ru_utime + usage.ru_stime)
        return bool(done)

    out += read_pty(fd, 10, until=exited)
    if not status:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        raise AssertionError(f"top did not exit: {out[-2000:]!r}")
    out += read_pty(fd, 0.2)
    try:
        after = termios.tcgetattr(fd)
    except termios.error:
        after = None
    os.close(fd)
    print(f"top used {status[1]:.3f} s of CPU in {wait:.0f} s")
    assert b"\x1b[24;1H" in out and b"\x1b[30;1H" in resized, resized[-1000:]
    return os.waitstatus_to_exitcode(status[0]), out, before, mid, after, status[1]


@pytest.mark.parametrize("key", [b"q", b"\x03"])
def test_top_runs_on_a_terminal_and_restores_it(make_node, key):
    node = make_node()
    rc, out, before, mid, after, cpu = run_top_in_pty(node, key, wait=4.0)
    text = out.decode(errors="replace")
    assert rc == 0, text[-2000:]
    # It drew the dashboard on the alternate screen, in non-canonical mode ...
    assert "\x1b[?1049h" in text and "shoal top  node " + node.node_id[:12] in text, text[:2000]
    assert not (mid[3] & termios.ICANON) and not (mid[3] & termios.ECHO)
    # ... and gave the terminal back: the main screen, the cursor, the modes.
    assert text.rstrip().endswith("\x1b[?25h\x1b[?1049l"), repr(text[-200:])
    if after is not None:
        assert after[3] == before[3], (before[3], after[3])
    # Under 5% of a core (start-up, the gRPC channel and a poll a second included).
    assert cpu < 0.05 * 4.0, cpu


def test_top_keys_act_on_the_selected_torrent(make_node, tmp_dir):
    """`p` pauses the selected torrent; `r` asks first, and `n` keeps it."""
    node = make_node()
    ses, tid = slow_download(node, tmp_dir, seed=42, rate=100000)
    rc, out, *_ = run_top_in_pty(node, [b"p", b"r", b"n", b"q"], wait=2.0)
    assert rc == 0
    assert b"(its files stay)? y/n" in out
    st = json.loads(node.cli("torrent", "status", tid, "--json").stdout)
    assert st["state"] == "paused", st


def test_top_without_a_terminal_says_so(node):
    res = node.cli("top", check=False)
    assert res.returncode != 0
    assert "terminal" in res.stderr.decode() and len(res.stderr.decode().splitlines()) == 1
