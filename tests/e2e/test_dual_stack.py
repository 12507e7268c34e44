"""End-to-end: a dual-stack node (`--listen 127.0.0.1:0,[::1]:0`): both addresses in the ready
line and node info, the cluster DHT and fetches over either family (BEP 32: a table per family),
µTP over IPv6 with libtorrent, both addresses sent to trackers (BEP 7), and IPv6 peers passed on
by PEX (`added6`). Loopback only: 127.0.0.1 and ::1."""
import http.server
import json
import subprocess
import threading
import time
import urllib.parse

import pytest

from conftest import SHOALD
from test_torrent import SIZES, assert_same_files, create_torrent, lt_seeds, make_files
from test_utp import lt_utp_session, peers, wait_for

DUAL = "127.0.0.1:0,[::1]:0"


def lt_v6_session(port=0):
    """A libtorrent session (TCP only) on [::1]."""
    import libtorrent as lt
    return lt.session({
        "listen_interfaces": f"[::1]:{port}",
        "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
        "enable_incoming_utp": False, "enable_outgoing_utp": False,
        "allow_multiple_connections_per_ip": True,
        "alert_mask": 0,
    })


def test_both_addresses_are_reported(make_node):
    node = make_node(listen=DUAL)
    assert node.listen.startswith("127.0.0.1:")
    assert node.listen6 and node.listen6.startswith("[::1]:")
    info = json.loads(node.cli("node", "info", "--json").stdout)
    assert info["listen_address"] == node.listen
    assert info["listen_addresses"] == [node.listen, node.listen6]
    # Port 0 for the second address takes the first's port when it is free.
    assert node.listen6.rsplit(":", 1)[1] == node.listen.rsplit(":", 1)[1]
    text = node.cli("node", "info").stdout.decode()
    assert f"listen        {node.listen} {node.listen6}" in text
    # A single-stack node says listen= only.
    single = make_node("single")
    assert single.listen6 is None
    assert json.loads(single.cli("node", "info", "--json").stdout)["listen_addresses"] == [
        single.listen]


def test_bad_listen_lists_are_refused(tmp_dir):
    for listen, words in [("127.0.0.1:0,127.0.0.2:0", "one address family"),
                          ("127.0.0.1:0,[::1]:0,[::2]:0", "at most two"),
                          ("127.0.0.1:0,nonsense", "")]:
        res = subprocess.run([SHOALD, "--data-dir", str(tmp_dir / "d"), "--api", "127.0.0.1:0",
                              "--listen", listen, "--dht-routers", ""],
                             capture_output=True, timeout=20)
        assert res.returncode != 0, listen
        err = res.stderr.decode().strip()
        assert len(err.splitlines()) == 1 and words in err, (listen, err)


def test_repeated_listen_keeps_the_last(make_node):
    node = make_node(listen="[::1]:0", extra_args=["--listen", DUAL])
    assert node.listen.startswith("127.0.0.1:") and node.listen6.startswith("[::1]:")


def test_cluster_fetch_over_each_family(make_node, tmp_dir):
    """A dual-stack origin; one fetcher reaches it over IPv6 only, one over IPv4 only. Each
    finds it as a provider in its family's cluster DHT table and fetches by ID."""
    origin = make_node("origin", listen=DUAL)
    v6 = make_node("v6", listen="[::1]:0", extra_args=["--bootstrap", origin.listen6])
    v4 = make_node("v4", listen="127.0.0.1:0", extra_args=["--bootstrap", origin.listen])
    data = bytes(range(256)) * 12_000 + b"tail"
    src = tmp_dir / "src.bin"
    src.write_bytes(data)
    cid = origin.cli("add", str(src)).stdout.decode().split()[-1]
    for node in (v6, v4):
        out = tmp_dir / f"{node.data_dir.name}.bin"
        node.cli("get", cid, "-o", str(out), timeout=60)
        assert out.read_bytes() == data
    info = json.loads(origin.cli("node", "info", "--json").stdout)
    # One table per family: the IPv6 fetcher is in one, the IPv4 one in the other.
    assert info["dht_nodes_cluster"] == 2, info
    # The IPv6 table names the origin by its IPv6 address.
    assert origin.listen6 in v6.cli("providers", cid).stdout.decode()


@pytest.mark.parametrize("kind", ["v1", "hybrid"])
def test_utp_over_ipv6_with_libtorrent(kind, make_node, tmp_dir):
    """libtorrent on [::1] speaks µTP only: Shoal reaches it through its IPv6 UDP socket."""
    node = make_node(listen=DUAL)
    import libtorrent as lt
    ses = lt_utp_session()
    ses.apply_settings({"listen_interfaces": "[::1]:0"})
    deadline = time.monotonic() + 5
    while ses.listen_port() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    files, _, tfile = lt_seeds(tmp_dir, ses, SIZES, seed=31, kind=kind)
    out = tmp_dir / "dl"
    # Slow enough (about 4 s) to see the connection while it downloads.
    node.cli("torrent", "limit", "--down", "400000")
    lt_peer = f"[::1]:{ses.listen_port()}"
    tid = node.cli("torrent", "add", str(tfile), "--save-path", str(out), "--peer",
                   lt_peer).stdout.decode().strip()
    wait_for(lambda: peers(node, tid), 10, "a peer")
    [p] = peers(node, tid)
    assert p["transport"] == "utp" and p["address"] == lt_peer, p
    node.cli("torrent", "wait", tid, "--timeout", "60")
    assert_same_files(files, out)
    assert lt.version.startswith("2.0")


class RecordingTracker:
    """An HTTP tracker on 127.0.0.1 that records each announce's query and answers with no
    peers."""

    def __init__(self):
        queries = self.queries = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                queries.append(urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query))
                body = b"d8:completei0e10:incompletei0e8:intervali1800e5:peers0:e"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/announce"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_tracker_learns_both_addresses(make_node, tmp_dir):
    tracker = RecordingTracker()
    try:
        node = make_node(listen=DUAL)
        root = tmp_dir / "seed"
        make_files(root, SIZES, seed=32)
        data, _, _, _ = create_torrent(root, "v1", tracker.url)
        tfile = tmp_dir / "t.torrent"
        tfile.write_bytes(data)
        node.cli("torrent", "add", str(tfile), "--save-path", str(root))
        wait_for(lambda: tracker.queries, 20, "an announce")
        q = tracker.queries[0]
        port = node.listen.rsplit(":", 1)[1]
        assert q["port"] == [port], q
        # BEP 7: the IPv6 address (its port is the announced one); the IPv4 one is the
        # connection's own.
        assert q["ipv6"] == ["::1"], q
        assert q["ipv4"] == ["127.0.0.1"], q
        # A single-stack node sends neither.
        single = make_node("single")
        tracker.queries.clear()
        single.cli("torrent", "add", str(tfile), "--save-path", str(tmp_dir / "single"))
        wait_for(lambda: tracker.queries, 20, "an announce")
        assert "ipv6" not in tracker.queries[0] and "ipv4" not in tracker.queries[0]
    finally:
        tracker.close()


def test_pex_passes_ipv6_peers(make_node, tmp_dir):
    """libtorrent seeds on [::1] only. Shoal A (dual-stack) is told of it; Shoal B is told of
    A's IPv4 address only. A's PEX names libtorrent in `added6`, and B dials it over IPv6."""
    ses = lt_v6_session()
    files, _, tfile = lt_seeds(tmp_dir, ses, [3_000_000], seed=33, kind="v1")
    lt_peer = f"[::1]:{ses.listen_port()}"
    a = make_node("a", listen=DUAL)
    b = make_node("b", listen=DUAL)
    for n in (a, b):  # slow, so that both still download when PEX flows
        n.cli("torrent", "limit", "--down", "150000")
    tid = a.cli("torrent", "add", str(tfile), "--save-path", str(tmp_dir / "a"), "--peer",
                lt_peer).stdout.decode().strip()
    wait_for(lambda: any(p["address"] == lt_peer for p in peers(a, tid)), 15, "A's IPv6 peer")
    b.cli("torrent", "add", str(tfile), "--save-path", str(tmp_dir / "b"), "--peer", a.listen)
    try:
        wait_for(lambda: any(p["address"] == lt_peer for p in peers(b, tid)), 30,
                 "B to dial the IPv6 peer A's PEX named")
    except AssertionError:
        print(b.stderr()[-4000:])
        raise
    for n in (a, b):
        n.cli("torrent", "limit", "--down", "0")
    b.cli("torrent", "wait", tid, "--timeout", "60")
    assert_same_files(files, tmp_dir / "b")
