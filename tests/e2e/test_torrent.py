"""Public torrents: Shoal against libtorrent 2.0.8 and opentracker, on loopback.

Every torrent's tracker is an opentracker on 127.0.0.1 started by the test (Debian's
opentracker serves only whitelisted info-hashes and chroots into its -d directory).
"""
import hashlib
import json
import os
import pathlib
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

from test_fetch import lt_session, wait_seeding

OPENTRACKER = "/usr/bin/opentracker"


def free_port():
    for _ in range(20):
        t = socket.socket()
        t.bind(("127.0.0.1", 0))
        port = t.getsockname()[1]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            t.close()
            u.close()
    raise RuntimeError("no free port")


class Tracker:
    """opentracker on 127.0.0.1; whitelist() before start()."""

    def __init__(self):
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="shoal-ot-"))
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.hashes = []
        self.proc = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/announce"

    def whitelist(self, *hex_hashes):
        self.hashes += [h[:40] for h in hex_hashes if h]

    def start(self):
        wl = self.dir / "whitelist"
        wl.write_text("".join(h + "\n" for h in self.hashes))
        os.chmod(wl, 0o644)
        self.proc = subprocess.Popen(
            [OPENTRACKER, "-i", "127.0.0.1", "-p", str(self.port), "-P", str(self.port),
             "-d", str(self.dir), "-w", "whitelist"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("opentracker did not start")

    def scrape(self, hex_hash):
        """(complete, incomplete, downloaded) that the tracker reports for a 20-byte hash."""
        import urllib.parse
        import urllib.request
        import libtorrent as lt
        q = urllib.parse.quote_from_bytes(bytes.fromhex(hex_hash[:40]))
        url = f"http://127.0.0.1:{self.port}/scrape?info_hash={q}"
        with urllib.request.urlopen(url, timeout=5) as r:
            d = lt.bdecode(r.read())
        f = d.get(b"files", {}).get(bytes.fromhex(hex_hash[:40]), {})
        return f.get(b"complete", 0), f.get(b"incomplete", 0), f.get(b"downloaded", 0)

    def stop(self):
        if self.proc:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def tracker():
    if not os.access(OPENTRACKER, os.X_OK):
        pytest.skip("opentracker is not installed")
    t = Tracker()
    yield t
    t.stop()


def make_files(root, sizes, seed=1):
    """Files under root/<name>/ with pseudo-random contents; returns {relpath: bytes}."""
    import random
    rnd = random.Random(seed)
    out = {}
    for i, size in enumerate(sizes):
        rel = f"content/{'sub/' if i % 2 else ''}file{i}.bin"
        data = rnd.randbytes(size)
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        out[rel] = data
    return out


FLAGS = {"v1": "v1_only", "v2": "v2_only", "hybrid": None}


def create_torrent(src_root, kind, tracker_url, piece_length=64 * 1024, web_seed=None,
                   name="content", private=False):
    """A torrent of src_root/name with `tracker_url` (if any) and `web_seed` (if any) as its
    url-list, private (BEP 27) if asked; returns (bytes, torrent_info, v1 hex, v2 hex)."""
    import libtorrent as lt
    fs = lt.file_storage()
    lt.add_files(fs, str(src_root / name))
    flags = 0 if FLAGS[kind] is None else getattr(lt.create_torrent, FLAGS[kind])
    ct = lt.create_torrent(fs, piece_length, flags=flags)
    if tracker_url:
        ct.add_tracker(tracker_url)
    if web_seed:
        ct.add_url_seed(web_seed)
    if private:
        ct.set_priv(True)
    lt.set_piece_hashes(ct, str(src_root))
    data = lt.bencode(ct.generate())
    ti = lt.torrent_info(data)
    ih = ti.info_hashes()
    v1 = ih.v1.to_bytes().hex() if ih.has_v1() else None
    v2 = ih.v2.to_bytes().hex() if ih.has_v2() else None
    return data, ti, v1, v2


def lt_seeds(tmp_dir, ses, sizes, seed, kind="v1"):
    """Files of `sizes` under TMP/seed and a `kind` torrent of them (its tracker: nowhere) that
    the libtorrent session `ses` seeds, written to TMP/t.torrent. Returns (files, torrent
    bytes, .torrent path) once libtorrent seeds."""
    seed_root = tmp_dir / "seed"
    files = make_files(seed_root, sizes, seed=seed)
    data, ti, _, _ = create_torrent(seed_root, kind, "http://127.0.0.1:9/announce")
    wait_seeding(ses.add_torrent({"ti": ti, "save_path": str(seed_root)}))
    tfile = tmp_dir / "t.torrent"
    tfile.write_bytes(data)
    return files, data, tfile


def torrent_id(v1, v2):
    return v2 if v2 else v1


def assert_same_files(expected, root):
    for rel, data in expected.items():
        got = (root / rel).read_bytes()
        assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest(), rel


def status(node, tid):
    return json.loads(node.cli("torrent", "status", tid, "--json").stdout)


SIZES = [300_000, 1_000_000 + 17, 5, 0, 200_000]


@pytest.mark.parametrize("kind", ["v1", "v2", "hybrid"])
def test_shoal_downloads_from_libtorrent_via_tracker(kind, make_node, tmp_dir, tracker):
    node = make_node(extra_args=["--log-level", "debug"])
    import libtorrent as lt
    seed_root = tmp_dir / "seed"
    files = make_files(seed_root, SIZES)
    data, ti, v1, v2 = create_torrent(seed_root, kind, tracker.url)
    tracker.whitelist(v1, v2)
    tracker.start()
    ses = lt_session()
    h = ses.add_torrent({"ti": ti, "save_path": str(seed_root)})
    wait_seeding(h)
    h.force_reannounce()
    tfile = tmp_dir / "t.torrent"
    tfile.write_bytes(data)
    time.sleep(0.5)
    out = tmp_dir / "shoal-dl"
    tid = node.cli("torrent", "add", str(tfile), "--save-path", str(out)).stdout.decode().strip()
    assert tid == torrent_id(v1, v2)
    try:
        node.cli("torrent", "wait", tid, "--timeout", "60")
    except AssertionError:
        print(node.stderr()[-5000:])
        print(node.cli("torrent", "peers", tid).stdout.decode())
        raise
    assert_same_files(files, out)
    st = status(node, tid)
    assert st["state"] == "seeding" and st["progress"] == 1.0
    assert st["downloaded"] >= sum(SIZES)


def shoal_seeds(node, tmp_dir, tracker, kind, seed):
    """Files and a torrent of them behind `tracker`, added to `node` with the files in place:
    it checks them and seeds. Returns (files, torrent bytes, v1 hex, v2 hex, torrent ID)."""
    seed_root = tmp_dir / "seed"
    files = make_files(seed_root, SIZES, seed=seed)
    data, ti, v1, v2 = create_torrent(seed_root, kind, tracker.url)
    tracker.whitelist(v1, v2)
    tracker.start()
    tfile = tmp_dir / "t.torrent"
    tfile.write_bytes(data)
    tid = node.cli("torrent", "add", str(tfile), "--save-path", str(seed_root)).stdout.decode().strip()
    node.cli("torrent", "wait", tid, "--timeout", "60")
    return files, data, v1, v2, tid


@pytest.mark.parametrize("kind", ["v1", "v2", "hybrid"])
def test_libtorrent_downloads_from_shoal_via_tracker(kind, node, tmp_dir, tracker):
    import libtorrent as lt
    files, data, v1, v2, tid = shoal_seeds(node, tmp_dir, tracker, kind, seed=2)
    assert status(node, tid)["state"] == "seeding"
    ses = lt_session()
    out = tmp_dir / "lt-dl"
    h = ses.add_torrent({"ti": lt.torrent_info(data), "save_path": str(out)})
    wait_seeding(h, timeout=60)
    assert_same_files(files, out)
    deadline = time.monotonic() + 10
    while status(node, tid)["uploaded"] < sum(SIZES) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert status(node, tid)["uploaded"] >= sum(SIZES)
    # libtorrent announced "completed": after a reannounce the node scrapes again and counts
    # two seeders and one download.
    node.cli("torrent", "reannounce", tid)
    assert wait_tracker_counts(node, tid, (2, 0, 1)) == (2, 0, 1)


@pytest.mark.parametrize("kind", ["v1", "v2", "hybrid"])
def test_seed_announces_as_seed_after_check(kind, node, tmp_dir, tracker):
    """A torrent added with complete data announces once its check is done, with left=0: the
    tracker counts it as a seed at once (not as a leecher until the next interval), and it
    never sends "completed", since it downloaded nothing."""
    _, _, v1, v2, tid = shoal_seeds(node, tmp_dir, tracker, kind, seed=4)
    hashes = [h for h in (v1, v2) if h]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        counts = [tracker.scrape(h) for h in hashes]
        if all(c[0] == 1 for c in counts):
            break
        time.sleep(0.1)
    for h, (complete, incomplete, downloaded) in zip(hashes, counts):
        assert (complete, incomplete, downloaded) == (1, 0, 0), (h, counts)
    # The node scrapes the tracker once it has answered, and says what it heard (a hybrid's
    # two hashes are one swarm: not two seeders).
    assert wait_tracker_counts(node, tid, (1, 0, 0)) == (1, 0, 0)
    text = node.cli("torrent", "status", tid).stdout.decode()
    assert "tracker says  1 seeders, 0 leechers, 0 completed" in text, text


def wait_tracker_counts(node, tid, want, timeout=10):
    """(tracker_seeders, tracker_leechers, tracker_completed) from `torrent status --json` once
    they equal `want`, or as they are after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        s = status(node, tid)
        got = (s["tracker_seeders"], s["tracker_leechers"], s["tracker_completed"])
        if got == want or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


def test_rate_limits(node, tmp_dir, tracker):
    """A torrent's download limit and the node's upload limit hold (about), and persist."""
    import libtorrent as lt
    seed_root = tmp_dir / "seed"
    files = make_files(seed_root, [1_500_000, 1_500_000], seed=3)
    data, ti, v1, v2 = create_torrent(seed_root, "v1", tracker.url)
    tracker.whitelist(v1, v2)
    tracker.start()
    ses = lt_session()
    h = ses.add_torrent({"ti": ti, "save_path": str(seed_root)})
    wait_seeding(h)
    tfile = tmp_dir / "t.torrent"
    tfile.write_bytes(data)
    out = tmp_dir / "dl"
    tid = node.cli("torrent", "add", str(tfile), "--save-path", str(out), "--paused",
                   "--peer", f"127.0.0.1:{ses.listen_port()}").stdout.decode().strip()
    node.cli("torrent", "limit", tid, "--down", "1000000")
    limits = json.loads(node.cli("torrent", "limit", tid, "--json").stdout)
    assert limits["download_bytes_per_second"] == 1_000_000
    t0 = time.monotonic()
    node.cli("torrent", "resume", tid)
    node.cli("torrent", "wait", tid, "--timeout", "60")
    took = time.monotonic() - t0
    assert_same_files(files, out)
    # 3 MB at 1 MB/s, less the first burst: at least ~2.5 s; not absurdly slow either.
    assert 2.3 < took < 20, took
    # The node's limit, unset by default, is kept across a restart.
    node.cli("torrent", "limit", "--up", "123456")
    node.stop()
    node.start()
    limits = json.loads(node.cli("torrent", "limit", "--json").stdout)
    assert limits["upload_bytes_per_second"] == 123456
    assert json.loads(node.cli("torrent", "limit", tid, "--json").stdout)[
        "download_bytes_per_second"] == 1_000_000


def test_pex_tells_peers_of_peers(make_node, tmp_dir):
    """C knows only B; B's PEX (BEP 11) tells it of A, and C dials A."""
    ses = lt_session()
    lt_seeds(tmp_dir, ses, [3_000_000], seed=7)
    ses.get_torrents()[0].set_upload_limit(150_000)  # keeps the swarm busy for the test
    a = f"127.0.0.1:{ses.listen_port()}"
    tfile = tmp_dir / "t.torrent"
    b = make_node("b")
    c = make_node("c", ["--log-level", "debug"])
    tid = b.cli("torrent", "add", str(tfile), "--save-path", str(tmp_dir / "b"),
                "--peer", a).stdout.decode().strip()
    c.cli("torrent", "add", str(tfile), "--save-path", str(tmp_dir / "c"), "--peer", b.listen)
    # C's only source of A's address is B's PEX message. Whether libtorrent keeps the
    # connection is its own business: C connecting is what PEX is for.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        peers = [p["address"] for p in
                 json.loads(c.cli("torrent", "peers", tid, "--json").stdout)["peers"]]
        if a in peers or f"peer {a} connected" in c.stderr():
            return
        time.sleep(0.3)
    raise AssertionError(f"C never connected to A ({a})")


def test_wait_draws_progress_on_a_terminal_only(node, tmp_dir):
    """`torrent wait` draws a progress bar (rate, ETA, state, peers) on a terminal's stderr,
    and prints nothing when stderr is a pipe."""
    import pty
    from conftest import SHOAL
    ses = lt_session()
    files, _, tfile = lt_seeds(tmp_dir, ses, [1_000_000, 1_000_000], seed=31)
    node.cli("torrent", "limit", "--down", "400000")  # about 5 s
    tid = node.cli("torrent", "add", str(tfile), "--save-path", str(tmp_dir / "dl"), "--peer",
                   f"127.0.0.1:{ses.listen_port()}").stdout.decode().strip()
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen([SHOAL, "--api", node.api, "torrent", "wait", tid,
                                 "--timeout", "60"], stderr=slave, stdout=subprocess.DEVNULL)
        os.close(slave)
        drawn = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the pty closed with the process
                break
            if not chunk:
                break
            drawn += chunk
        assert proc.wait(timeout=60) == 0
    finally:
        os.close(master)
    text = drawn.decode(errors="replace")
    assert "\r[" in text and "%" in text and "peers" in text, text[-500:]
    assert "/s" in text and "ETA" in text, text[-500:]
    assert "100.0%" in text and "seeding" in text, text[-300:]
    assert_same_files(files, tmp_dir / "dl")
    res = node.cli("torrent", "wait", tid)
    assert res.stderr == b"" and res.stdout == b""
