"""Local Service Discovery (BEP 14): peers of a torrent find each other by multicast on a LAN of
network namespaces that the test creates (tests/cluster/netns.py: a bridge, one namespace per
host, 10.A.B.0/24), with no tracker, no DHT router and no --peer. Skipped, saying why, where
namespaces cannot be created.
"""
import pathlib
import subprocess
import sys
import time

import pytest

from test_torrent import assert_same_files, create_torrent, make_files, status, torrent_id
from test_torrent_swarm import copy_files, torrent_wait, write_torrent

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "cluster"))
import netns  # noqa: E402

KiB = 1024


@pytest.fixture
def lan():
    try:
        net = netns.Lan(prefix="shoallsd").create()
    except netns.NetnsUnavailable as e:
        pytest.skip(f"no network namespaces here: {e}")
    try:
        hosts = []
        for i in (1, 2):
            h = net.add_host(i)
            # Multicast leaves by the LAN's interface (the hosts have no default route).
            netns._ip_ok("-n", h.ns, "route", "add", "224.0.0.0/4", "dev", "eth0")
            hosts.append(h)
        yield net, hosts
    finally:
        net.destroy()


def ns_node(make_node, net, host, name):
    return make_node(name, prefix=net.exec_args(host, []), listen=f"{host.address}:0",
                     lsd="on")


LT_SCRIPT = r"""
import sys, time
import libtorrent as lt
addr, tfile, save, mode = sys.argv[1:5]
ses = lt.session({"listen_interfaces": addr + ":0", "enable_dht": False, "enable_lsd": True,
                  "enable_upnp": False, "enable_natpmp": False,
                  "enable_incoming_utp": False, "enable_outgoing_utp": False,
                  "allow_multiple_connections_per_ip": True, "alert_mask": 0})
h = ses.add_torrent({"ti": lt.torrent_info(tfile), "save_path": save})
print("started", flush=True)
deadline = time.monotonic() + 100
while time.monotonic() < deadline:
    st = h.status()
    if mode == "leech" and st.is_seeding:
        print("complete", flush=True)
        sys.exit(0)
    time.sleep(0.1)
sys.exit(3)
"""


def lt_in(net, host, tfile, save, mode):
    return subprocess.Popen(
        net.exec_args(host, ["/usr/bin/python3", "-c", LT_SCRIPT, host.address, str(tfile),
                             str(save), mode]),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_line(proc, want, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline().decode().strip()
        if line == want:
            return
        if proc.poll() is not None:
            break
    raise AssertionError(f"libtorrent did not print {want!r}: {proc.stderr.read().decode()}")


def torrent_of(tmp_dir, kind, seed, private=False):
    src = tmp_dir / "src"
    files = make_files(src, [400_000, 300_001, 9], seed=seed)
    data, ti, v1, v2 = create_torrent(src, kind, None, 32 * KiB, private=private)
    return src, files, write_torrent(tmp_dir, data), torrent_id(v1, v2)


def test_two_shoal_nodes_find_each_other(lan, make_node, tmp_dir):
    net, (h1, h2) = lan
    src, files, tfile, tid = torrent_of(tmp_dir, "hybrid", 31)
    seed = ns_node(make_node, net, h1, "seed")
    seed.cli("torrent", "add", str(tfile), "--save-path", str(src))
    torrent_wait(seed, tid)
    # The fetcher's announce on adding the torrent brings the seed to it.
    fetcher = ns_node(make_node, net, h2, "fetcher")
    out = tmp_dir / "dl"
    fetcher.cli("torrent", "add", str(tfile), "--save-path", str(out))
    torrent_wait(fetcher, tid, timeout=60)
    assert_same_files(files, out)


def test_private_torrents_are_not_announced(lan, make_node, tmp_dir):
    """BEP 27: a private torrent's peers come from its tracker only: LSD neither announces
    it nor dials peers announced for it."""
    net, (h1, h2) = lan
    src, files, tfile, tid = torrent_of(tmp_dir, "v1", 34, private=True)
    seed = ns_node(make_node, net, h1, "seed")
    seed.cli("torrent", "add", str(tfile), "--save-path", str(src))
    torrent_wait(seed, tid)
    fetcher = ns_node(make_node, net, h2, "fetcher")
    fetcher.cli("torrent", "add", str(tfile), "--save-path", str(tmp_dir / "dl"))
    time.sleep(4)
    st = status(fetcher, tid)
    assert st["bytes_done"] == 0 and st["num_peers"] == 0, st
    assert status(seed, tid)["num_peers"] == 0


def test_shoal_hears_libtorrent(lan, make_node, tmp_dir):
    """Shoal fetches first and hears nobody; libtorrent's announce (when it starts seeding) tells
    Shoal where to dial."""
    net, (h1, h2) = lan
    src, files, tfile, tid = torrent_of(tmp_dir, "v1", 32)
    fetcher = ns_node(make_node, net, h1, "fetcher")
    out = tmp_dir / "dl"
    fetcher.cli("torrent", "add", str(tfile), "--save-path", str(out))
    time.sleep(0.5)
    lt_root = tmp_dir / "lt"
    copy_files(files, lt_root)
    proc = lt_in(net, h2, tfile, lt_root, "seed")
    try:
        wait_line(proc, "started")
        torrent_wait(fetcher, tid, timeout=60)
        assert_same_files(files, out)
    finally:
        proc.kill()
        proc.wait()


def test_libtorrent_hears_shoal(lan, make_node, tmp_dir):
    """libtorrent fetches first and hears nobody; Shoal's announce (when it adds the torrent)
    tells libtorrent where to dial."""
    net, (h1, h2) = lan
    src, files, tfile, tid = torrent_of(tmp_dir, "v2", 33)
    lt_out = tmp_dir / "lt-dl"
    lt_out.mkdir()
    proc = lt_in(net, h2, tfile, lt_out, "leech")
    try:
        wait_line(proc, "started")
        time.sleep(0.5)
        seed = ns_node(make_node, net, h1, "seed")
        seed.cli("torrent", "add", str(tfile), "--save-path", str(src))
        wait_line(proc, "complete", timeout=90)
        assert_same_files(files, lt_out)
    finally:
        proc.kill()
        proc.wait()
