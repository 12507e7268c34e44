"""End-to-end: CDN content moves between nodes over the BitTorrent peer wire protocol, and
libtorrent 2.0.8 fetches it from Shoal (and serves it to Shoal) as a v2 torrent."""
import hashlib
import json
import os
import time

import pytest


def add_bytes(node, tmp_dir, data, name="f"):
    p = tmp_dir / name
    p.write_bytes(data)
    return node.cli("add", str(p)).stdout.decode().strip()


def stat(node, cid):
    return json.loads(node.cli("stat", cid, "--json").stdout)


# Two nodes move content by ID given a peer address, byte for byte; the fetcher keeps it and
# serves it to a third node.
def test_fetch_by_id_from_peer(make_node, tmp_dir):
    a, b, c = make_node("a"), make_node("b"), make_node("c")
    data = os.urandom(5 * 1024 * 1024 + 12345)
    cid = add_bytes(a, tmp_dir, data)
    got = b.cli("cat", cid, "--peer", a.listen, timeout=120).stdout
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    st = stat(b, cid)
    assert st["pieces_local"] == st["num_pieces"] and st["length"] == len(data)
    out = tmp_dir / "from-b"
    c.cli("get", cid, "-o", str(out), "--peer", b.listen, timeout=120)
    assert out.read_bytes() == data


# `stat` of a content being fetched shows the download rate and an ETA (absent until the rate
# is known), and neither once it is complete.
def test_stat_while_fetching_shows_rate_and_eta(make_node, tmp_dir):
    import subprocess
    from conftest import SHOAL
    a, b = make_node("a"), make_node("b")
    data = os.urandom(6 * 1024 * 1024)
    cid = add_bytes(a, tmp_dir, data)
    b.cli("torrent", "limit", "--down", "1000000")  # the node's limit: about 6 s
    out = tmp_dir / "got"
    fetch = subprocess.Popen([SHOAL, "--api", b.api, "get", cid,
                              "-o", str(out), "--peer", a.listen],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        st, deadline = {}, time.monotonic() + 20
        while time.monotonic() < deadline and st.get("eta_seconds") is None:
            time.sleep(0.3)
            res = b.cli("stat", cid, "--json", check=False)
            st = json.loads(res.stdout) if res.returncode == 0 else {}
        assert st.get("fetching") and st["download_rate"] > 0, st
        assert 0 < st["eta_seconds"] < 60, st
        assert "fetching" in b.cli("stat", cid).stdout.decode()
        assert fetch.wait(timeout=60) == 0, fetch.stderr.read()
    finally:
        fetch.kill()
    assert out.read_bytes() == data
    assert "fetching" not in stat(b, cid)


# Small content (one piece) and a ranged read while fetching.
def test_fetch_small_and_ranged(make_node, tmp_dir):
    a, b = make_node("a"), make_node("b")
    small = b"hello, swarm"
    cid = add_bytes(a, tmp_dir, small, "small")
    assert b.cli("cat", cid, "--peer", a.listen).stdout == small
    data = os.urandom(3 * 1024 * 1024)
    cid = add_bytes(a, tmp_dir, data, "big")
    got = b.cli("cat", cid, "--peer", a.listen, "--offset", "1000000", "--length", "70000").stdout
    assert got == data[1000000:1070000]


# Nobody has the ID: NOT_FOUND within the fetch timeout, and the node keeps serving.
def test_fetch_unknown_id(make_node, tmp_dir):
    a = make_node("a")
    b = make_node("b", extra_args=["--fetch-timeout", "2"])
    t0 = time.monotonic()
    res = b.cli("cat", "ab" * 32, "--peer", a.listen, check=False)
    assert res.returncode != 0 and time.monotonic() - t0 < 20
    assert "no peer provided" in res.stderr.decode()
    cid = add_bytes(a, tmp_dir, b"after")
    assert b.cli("cat", cid, "--peer", a.listen).stdout == b"after"


def lt_session():
    import libtorrent as lt
    return lt.session({
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
        "enable_incoming_utp": False, "enable_outgoing_utp": False,
        "allow_multiple_connections_per_ip": True,
        "alert_mask": 0,
    })


def wait_seeding(handle, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = handle.status()
        if st.is_seeding:
            return st
        if st.errc.value() != 0:
            raise AssertionError(f"libtorrent error: {st.errc.message()}")
        time.sleep(0.1)
    raise AssertionError(f"libtorrent did not finish: progress {handle.status().progress}")


# libtorrent downloads CDN content from a Shoal node with a v2 magnet link and x.pe.
def test_libtorrent_fetches_from_shoal(node, tmp_dir):
    import libtorrent as lt
    data = os.urandom(4 * 1024 * 1024 + 777)
    cid = add_bytes(node, tmp_dir, data)
    st = stat(node, cid)
    ses = lt_session()
    params = lt.parse_magnet_uri(f"magnet:?xt=urn:btmh:1220{cid}&x.pe={node.listen}")
    params.save_path = str(tmp_dir / "lt")
    h = ses.add_torrent(params)
    wait_seeding(h)
    got = (tmp_dir / "lt" / st["pieces_root"]).read_bytes()
    assert got == data
    assert h.status().info_hashes.v2.to_bytes().hex() == cid


# Shoal fetches CDN content from a libtorrent seed of the canonical torrent.
def test_shoal_fetches_from_libtorrent(node, tmp_dir):
    import libtorrent as lt
    data = os.urandom(3 * 1024 * 1024 + 5)
    # Shoal computes the ID; libtorrent seeds the same canonical torrent.
    cid_dir = tmp_dir / "ref"
    cid_dir.mkdir()
    from test_content import lt_content_id
    cid, root, pl = lt_content_id(data, tmp_dir)
    seed_dir = tmp_dir / "seed"
    seed_dir.mkdir()
    (seed_dir / root).write_bytes(data)
    fs = lt.file_storage()
    lt.add_files(fs, str(seed_dir / root))
    ct = lt.create_torrent(fs, pl, flags=lt.create_torrent.v2_only)
    lt.set_piece_hashes(ct, str(seed_dir))
    ti = lt.torrent_info(ct.generate())
    assert ti.info_hashes().v2.to_bytes().hex() == cid
    ses = lt_session()
    h = ses.add_torrent({"ti": ti, "save_path": str(seed_dir)})
    wait_seeding(h)
    port = ses.listen_port()
    got = node.cli("cat", cid, "--peer", f"127.0.0.1:{port}", timeout=120).stdout
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()


# A peer that sends corrupt data is banned, and the download completes from the honest peer.
def test_corrupt_peer_banned(make_node, tmp_dir):
    from fake_peer import CorruptSeeder
    a, b = make_node("a"), make_node("b")
    data = os.urandom(2 * 1024 * 1024)
    cid = add_bytes(a, tmp_dir, data)
    bad = CorruptSeeder(cid)
    try:
        got = b.cli("cat", cid, "--peer", a.listen, "--peer", bad.address, timeout=120).stdout
    finally:
        bad.close()
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    assert bad.connections >= 1 and bad.blocks_sent > 0, (bad.connections, bad.blocks_sent)
    assert "banning 127.0.0.2" in b.stderr()


# kill -9 mid-download loses no verified piece, and a restarted node finishes the fetch.
def test_kill9_mid_fetch_keeps_verified_pieces(make_node, tmp_dir):
    import subprocess
    from conftest import SHOAL
    a, b = make_node("a"), make_node("b")
    data = os.urandom(256 * 1024 * 1024)
    cid = add_bytes(a, tmp_dir, data)
    proc = subprocess.Popen([SHOAL, "--api", b.api, "cat", cid, "--peer", a.listen],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    held = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        res = b.cli("stat", cid, "--json", check=False)
        if res.returncode == 0:
            held = json.loads(res.stdout)["pieces_local"]
            if held >= 20:
                break
        time.sleep(0.02)
    b.kill9()
    proc.wait(timeout=30)
    assert held >= 20, "the fetch never got going"
    b.start()
    st = stat(b, cid)
    assert st["pieces_local"] >= held
    got = b.cli("cat", cid, "--peer", a.listen, timeout=300).stdout
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()


# Several seeds at once; one dies mid-transfer and the others finish the job.
def test_seed_dies_mid_fetch(make_node, tmp_dir):
    import subprocess
    from conftest import SHOAL
    a, c, b = make_node("a"), make_node("c"), make_node("b")
    data = os.urandom(192 * 1024 * 1024)
    p = tmp_dir / "f"
    p.write_bytes(data)
    cid = a.cli("add", str(p)).stdout.decode().strip()
    assert c.cli("add", str(p)).stdout.decode().strip() == cid
    out = tmp_dir / "out"
    proc = subprocess.Popen([SHOAL, "--api", b.api, "get", cid, "-o", str(out), "--peer",
                             a.listen, "--peer", c.listen],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        res = b.cli("stat", cid, "--json", check=False)
        if res.returncode == 0 and json.loads(res.stdout)["pieces_local"] >= 10:
            break
        time.sleep(0.02)
    a.kill9()
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()
    assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(data).digest()
