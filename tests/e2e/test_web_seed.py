"""BEP 19 web seeds: torrents downloaded over HTTP Range requests from a server on loopback.

The server is a small HTTP/1.1 server in this process (keep-alive, Range, 206) over a directory;
a lying one flips a byte of every response.
"""
import http.server
import json
import threading

import pytest

from test_fetch import wait_seeding
from test_torrent import assert_same_files, create_torrent, make_files, torrent_id
from test_torrent_swarm import copy_files, lt_session, torrent_wait, write_torrent

KiB = 1024


class RangeServer:
    """Serves files under `root` on 127.0.0.1 with Range support (`ignore_range`: whole files,
    as a server without it); `lie` flips a byte of each response body. Counts requests."""

    def __init__(self, root, lie=False, ignore_range=False):
        outer = self
        self.requests = 0
        self.ranged = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                outer.requests += 1
                import urllib.parse
                path = root / urllib.parse.unquote(self.path.lstrip("/").split("?")[0])
                if not path.is_file():
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = path.read_bytes()
                rng = self.headers.get("Range")
                status = 200
                start, end = 0, len(data) - 1
                if rng and rng.startswith("bytes=") and not ignore_range:
                    a, b = rng[len("bytes="):].split("-")
                    start, end = int(a), min(int(b), len(data) - 1)
                    status = 206
                    outer.ranged += 1
                body = bytearray(data[start:end + 1])
                if lie and body:
                    body[len(body) // 2] ^= 0x5A
                self.send_response(status)
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(bytes(body))

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def make_torrent(src_root, kind, web_seed, single=False, piece_length=32 * KiB):
    """A torrent of src_root/content (or of src_root/content.bin when single) with no tracker
    and `web_seed` as its url-list; returns (bytes, torrent_info, id)."""
    data, ti, v1, v2 = create_torrent(src_root, kind, None, piece_length, web_seed,
                                      "content.bin" if single else "content")
    return data, ti, torrent_id(v1, v2)


def web_seeds(node, tid):
    return json.loads(node.cli("torrent", "status", tid, "--json").stdout)["web_seeds"]


@pytest.mark.parametrize("kind", ["v1", "v2", "hybrid"])
def test_multi_file_torrent_from_its_web_seed_alone(kind, make_node, tmp_dir):
    src = tmp_dir / "src"
    files = make_files(src, [300_000, 1_000_000 + 17, 5, 0, 200_000, 70_001], seed=3)
    server = RangeServer(src)
    try:
        data, ti, tid = make_torrent(src, kind, server.url)
        node = make_node()
        out = tmp_dir / "dl"
        got = node.cli("torrent", "add", str(write_torrent(tmp_dir, data)), "--save-path",
                       str(out)).stdout.decode().strip()
        assert got == tid
        torrent_wait(node, tid)
        assert_same_files(files, out)
        [ws] = web_seeds(node, tid)
        assert ws["url"] == server.url
        assert ws["downloaded"] >= sum(len(d) for d in files.values())
        assert ws["error"] == ""
        assert server.ranged > 0
        # Runs of blocks, not a request per 16 KiB block.
        assert server.requests < sum(len(d) for d in files.values()) // (16 * KiB)
    finally:
        server.close()


def test_single_file_torrent_from_its_web_seed_alone(make_node, tmp_dir):
    import random
    src = tmp_dir / "src"
    src.mkdir()
    payload = random.Random(5).randbytes(777_777)
    (src / "content.bin").write_bytes(payload)
    server = RangeServer(src)
    try:
        # The URL names the directory: the torrent's name is appended (BEP 19).
        data, ti, tid = make_torrent(src, "hybrid", server.url, single=True)
        node = make_node()
        out = tmp_dir / "dl"
        # --json: the new torrent's status, as `torrent status --json` prints it.
        added = json.loads(node.cli("torrent", "add", str(write_torrent(tmp_dir, data)),
                                    "--save-path", str(out), "--json").stdout)
        assert added["id"] == tid and added["name"] == "content.bin", added
        assert added["web_seeds"] == [] or added["web_seeds"][0]["url"] == server.url
        torrent_wait(node, tid)
        assert (out / "content.bin").read_bytes() == payload
    finally:
        server.close()


def test_web_seed_that_ignores_range_serves_small_files(make_node, tmp_dir):
    src = tmp_dir / "src"
    files = make_files(src, [120_000, 33_333], seed=6)
    server = RangeServer(src, ignore_range=True)
    try:
        data, ti, tid = make_torrent(src, "v1", server.url)
        node = make_node()
        out = tmp_dir / "dl"
        node.cli("torrent", "add", str(write_torrent(tmp_dir, data)), "--save-path", str(out))
        torrent_wait(node, tid)
        assert_same_files(files, out)
        assert server.ranged == 0
    finally:
        server.close()


def test_lying_web_seed_is_dropped_while_a_peer_finishes(make_node, tmp_dir):
    src = tmp_dir / "src"
    files = make_files(src, [600_000, 900_001, 250_000], seed=9)
    server = RangeServer(src, lie=True)
    try:
        data, ti, tid = make_torrent(src, "v1", server.url)
        # A libtorrent seed, capped so that the web seed gets to send (and be caught).
        root = tmp_dir / "lt"
        copy_files(files, root)
        ses = lt_session()
        h = ses.add_torrent({"ti": ti, "save_path": str(root)})
        wait_seeding(h, timeout=60)
        h.set_upload_limit(400 * KiB)
        node = make_node()
        out = tmp_dir / "dl"
        node.cli("torrent", "add", str(write_torrent(tmp_dir, data)), "--save-path", str(out),
                 "--peer", f"127.0.0.1:{ses.listen_port()}")
        torrent_wait(node, tid, timeout=90)
        assert_same_files(files, out)
        [ws] = web_seeds(node, tid)
        assert ws["state"] == "dropped", ws
        assert "banned" in ws["error"], ws
    finally:
        server.close()


def test_unreachable_web_seed_backs_off(make_node, tmp_dir):
    src = tmp_dir / "src"
    make_files(src, [100_000], seed=4)
    server = RangeServer(src)
    url = server.url
    server.close()  # nothing listens there now
    data, ti, tid = make_torrent(src, "v1", url)
    node = make_node()
    node.cli("torrent", "add", str(write_torrent(tmp_dir, data)), "--save-path",
             str(tmp_dir / "dl"))
    import time
    deadline = time.monotonic() + 20
    ws = None
    while time.monotonic() < deadline:
        listed = web_seeds(node, tid)  # listed from the first tick on
        ws = listed[0] if listed else None
        if ws and ws["state"] == "waiting":
            break
        time.sleep(0.2)
    assert ws["state"] == "waiting", ws
    assert "connect" in ws["error"], ws
    text = node.cli("torrent", "status", tid).stdout.decode()
    assert f"web seed      {url}: waiting" in text


def test_eta_while_downloading_and_none_after(make_node, tmp_dir):
    """ETA (torrent status and progress events): from the smoothed rate while downloading,
    absent (not zero) before a rate is known and once complete."""
    import time
    src = tmp_dir / "src"
    files = make_files(src, [1_500_000, 100_000], seed=7)
    server = RangeServer(src)
    try:
        data, ti, tid = make_torrent(src, "v1", server.url)
        node = make_node()
        node.cli("torrent", "limit", "--down", "300000")  # the node: about 6 s
        out = tmp_dir / "dl"
        node.cli("torrent", "add", str(write_torrent(tmp_dir, data)), "--save-path", str(out))
        st = json.loads(node.cli("torrent", "status", tid, "--json").stdout)
        assert st["eta_seconds"] is None, st  # no rate yet
        deadline = time.monotonic() + 15
        eta = None
        while time.monotonic() < deadline and eta is None:
            time.sleep(0.3)
            st = json.loads(node.cli("torrent", "status", tid, "--json").stdout)
            eta = st["eta_seconds"]
        assert eta is not None and 0 < eta < 60, st
        assert "eta " in node.cli("torrent", "status", tid).stdout.decode()
        events = node.cli("watch", "--json", "--count", "2", timeout=30).stdout.decode()
        progress = [json.loads(line) for line in events.splitlines()
                    if json.loads(line)["kind"] == "progress"]
        assert any(e["eta_seconds"] for e in progress), events[-2000:]
        torrent_wait(node, tid)
        assert_same_files(files, out)
        assert json.loads(node.cli("torrent", "status", tid, "--json").stdout)[
            "eta_seconds"] is None
    finally:
        server.close()
