"""End-to-end: µTP (BEP 29) between Shoal and libtorrent 2.0.8 with TCP turned off, both ways,
for v1, v2 and hybrid torrents, plain and with encryption forced; and between two Shoal nodes
whose TCP is off for torrents."""
import json
import time

import pytest

from test_fetch import wait_seeding
from test_torrent import SIZES, assert_same_files, lt_seeds, shoal_seeds, status
from test_torrent import tracker  # noqa: F401 (a fixture the tests below use)


def lt_utp_session(encrypted=False):
    """A libtorrent session on loopback that speaks µTP only (no TCP either way)."""
    import libtorrent as lt
    settings = {
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
        "enable_incoming_tcp": False, "enable_outgoing_tcp": False,
        "enable_incoming_utp": True, "enable_outgoing_utp": True,
        "allow_multiple_connections_per_ip": True,
        "alert_mask": int(lt.alert.category_t.peer_notification | lt.alert.category_t.error_notification | lt.alert.category_t.connect_notification),
    }
    if encrypted:
        settings.update({
            "out_enc_policy": int(lt.enc_policy.forced),
            "in_enc_policy": int(lt.enc_policy.forced),
            "allowed_enc_level": int(lt.enc_level.rc4),
            "prefer_rc4": True,
        })
    return lt.session(settings)


def peers(node, tid):
    return json.loads(node.cli("torrent", "peers", tid, "--json").stdout)["peers"]


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


# libtorrent seeds over µTP only; Shoal, given it as a peer, downloads.
@pytest.mark.parametrize("kind,encrypted", [("v1", False), ("v2", False), ("hybrid", False),
                                            ("hybrid", True)])
def test_shoal_downloads_from_utp_only_libtorrent(kind, encrypted, make_node, tmp_dir):
    node = make_node(extra_args=["--log-level", "debug"])
    ses = lt_utp_session(encrypted)
    files, _, tfile = lt_seeds(tmp_dir, ses, SIZES, seed=21, kind=kind)
    out = tmp_dir / "shoal-dl"
    # Slow enough (about 4 s) to see the connection while it downloads.
    node.cli("torrent", "limit", "--down", "400000")
    tid = node.cli("torrent", "add", str(tfile), "--save-path", str(out), "--peer",
                   f"127.0.0.1:{ses.listen_port()}").stdout.decode().strip()
    wait_for(lambda: peers(node, tid), 10, "a peer")
    [p] = peers(node, tid)
    assert p["transport"] == "utp" and p["encrypted"] == encrypted, p
    try:
        node.cli("torrent", "wait", tid, "--timeout", "60")
    except Exception:
        print(node.stderr()[-6000:])
        raise
    assert_same_files(files, out)
    assert status(node, tid)["state"] == "seeding"


# Shoal seeds; libtorrent, µTP only, is told of it and downloads.
@pytest.mark.parametrize("kind,encrypted", [("v1", False), ("v2", False), ("hybrid", False),
                                            ("v1", True)])
def test_utp_only_libtorrent_downloads_from_shoal(kind, encrypted, make_node, tmp_dir,
                                                  tracker):  # noqa: F811
    import libtorrent as lt
    node = make_node(extra_args=["--log-level", "debug"])
    files, data, _, _, tid = shoal_seeds(node, tmp_dir, tracker, kind, seed=22)
    ses = lt_utp_session(encrypted)
    out = tmp_dir / "lt-dl"
    h = ses.add_torrent({"ti": lt.torrent_info(data), "save_path": str(out)})
    host, port = node.listen.rsplit(":", 1)
    h.connect_peer((host, int(port)))
    try:
        wait_seeding(h, timeout=20)
    except AssertionError:
        print("\n".join(line for line in node.stderr().splitlines() if "utp" in line)[-3000:])
        for a in ses.pop_alerts():
            print("LT", a.what(), a.message())
        raise
    assert_same_files(files, out)
    assert status(node, tid)["uploaded"] >= sum(SIZES)


# Rate limits hold over µTP as over TCP: a torrent's download limit, and the node's upload
# limit, each about 1 MB/s for 3 MB.
def test_rate_limits_hold_over_utp(make_node, tmp_dir):
    import libtorrent as lt
    node = make_node()
    ses = lt_utp_session()
    files, data, tfile = lt_seeds(tmp_dir, ses, [1_500_000, 1_500_000], seed=23)
    out = tmp_dir / "dl"
    tid = node.cli("torrent", "add", str(tfile), "--save-path", str(out), "--paused",
                   "--peer", f"127.0.0.1:{ses.listen_port()}").stdout.decode().strip()
    node.cli("torrent", "limit", tid, "--down", "1000000")
    t0 = time.monotonic()
    node.cli("torrent", "resume", tid)
    node.cli("torrent", "wait", tid, "--timeout", "60")
    took = time.monotonic() - t0
    assert_same_files(files, out)  # from a peer that speaks µTP only
    # 3 MB at 1 MB/s, less the first burst: at least ~2.5 s; not absurdly slow either.
    assert 2.3 < took < 20, took
    # Now Shoal seeds them to a second µTP-only libtorrent under a node upload limit.
    node.cli("torrent", "limit", "--up", "1000000")
    ses2 = lt_utp_session()
    h2 = ses2.add_torrent({"ti": lt.torrent_info(data), "save_path": str(tmp_dir / "lt2")})
    host, port = node.listen.rsplit(":", 1)
    t0 = time.monotonic()
    h2.connect_peer((host, int(port)))
    wait_seeding(h2, timeout=60)
    took = time.monotonic() - t0
    assert_same_files(files, tmp_dir / "lt2")
    assert 2.3 < took < 30, took
