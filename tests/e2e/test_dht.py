"""The DHTs: libtorrent's DHT against Shoal's public DHT (magnets with no tracker and no x.pe),
and fetching CDN content by ID across a cluster of shoald processes."""
import hashlib
import json
import os
import time

import pytest

from test_fetch import wait_seeding
from test_torrent import assert_same_files, create_torrent, make_files


def lt_dht_session(bootstrap):
    """A libtorrent session whose only DHT contact is `bootstrap` ("ip:port").

    It is added as a DHT node (add_dht_node), not a router: libtorrent keeps routers out of its
    routing table, and in a two-node network the Shoal node must be in it."""
    import libtorrent as lt
    ses = lt.session({
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": True, "dht_bootstrap_nodes": "",
        "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
        "enable_incoming_utp": False, "enable_outgoing_utp": False,
        "allow_multiple_connections_per_ip": True,
        # Loopback is a private network: let libtorrent's DHT use it.
        "dht_restrict_routing_ips": False, "dht_restrict_search_ips": False,
        "dht_ignore_dark_internet": False, "dht_enforce_node_id": False,
        "dht_prefer_verified_node_ids": False,
        "alert_mask": 0,
    })
    host, port = bootstrap.rsplit(":", 1)
    ses.add_dht_node((host, int(port)))
    return ses


def magnet_for(v1, v2):
    parts = []
    if v1:
        parts.append(f"xt=urn:btih:{v1}")
    if v2:
        parts.append(f"xt=urn:btmh:1220{v2}")
    return "magnet:?" + "&".join(parts)


def wait_dht_nodes(ses, n=1, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ses.status().dht_nodes >= n:
            return
        time.sleep(0.1)
    raise AssertionError("libtorrent's DHT found no node")


@pytest.mark.parametrize("kind", ["v1", "hybrid"])
def test_shoal_downloads_magnet_seeded_by_libtorrent_via_dht(kind, node, tmp_dir):
    import libtorrent as lt
    seed_root = tmp_dir / "seed"
    files = make_files(seed_root, [400_000, 150_000], seed=5)
    # Trackers on a port nothing listens on: peers can come only from the DHT.
    data, ti, v1, v2 = create_torrent(seed_root, kind, "http://127.0.0.1:9/announce")
    ses = lt_dht_session(node.listen)
    wait_dht_nodes(ses)
    h = ses.add_torrent({"ti": ti, "save_path": str(seed_root)})
    wait_seeding(h)
    h.force_dht_announce()
    out = tmp_dir / "dl"
    tid = node.cli("torrent", "add", magnet_for(v1, v2), "--save-path",
                   str(out)).stdout.decode().strip()
    node.cli("torrent", "wait", tid, "--timeout", "90")
    assert_same_files(files, out)


def test_libtorrent_downloads_magnet_seeded_by_shoal_via_dht(node, tmp_dir):
    import libtorrent as lt
    seed_root = tmp_dir / "seed"
    files = make_files(seed_root, [300_000, 100_000], seed=6)
    data, ti, v1, v2 = create_torrent(seed_root, "v1", "http://127.0.0.1:9/announce")
    tfile = tmp_dir / "t.torrent"
    tfile.write_bytes(data)
    tid = node.cli("torrent", "add", str(tfile), "--save-path",
                   str(seed_root)).stdout.decode().strip()
    node.cli("torrent", "wait", tid, "--timeout", "30")
    ses = lt_dht_session(node.listen)
    wait_dht_nodes(ses)
    out = tmp_dir / "dl"
    params = lt.parse_magnet_uri(magnet_for(v1, None))
    params.save_path = str(out)
    h = ses.add_torrent(params)
    deadline = time.monotonic() + 90
    while not h.status().is_seeding and time.monotonic() < deadline:
        if int(time.monotonic()) % 5 == 0:
            h.force_dht_announce()
        time.sleep(0.2)
    assert h.status().is_seeding, h.status().state
    assert_same_files(files, out)


def test_cluster_of_five_fetches_by_id(make_node, tmp_dir):
    first = make_node("n1")
    nodes = [first] + [make_node(f"n{i}", ["--bootstrap", first.listen]) for i in range(2, 6)]
    data = os.urandom(2 * 1024 * 1024 + 99)
    path = tmp_dir / "data"
    path.write_bytes(data)
    cid = first.cli("add", str(path)).stdout.decode().strip()
    # Node 5 finds the provider through the cluster DHT: no --peer.
    got = nodes[4].cli("cat", cid, timeout=60).stdout
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    providers = json.loads(nodes[2].cli("providers", cid, "--json").stdout)["providers"]
    assert first.listen in providers and nodes[4].listen in providers
    # Node 2 fetches it too; with node 1 killed, node 3 still gets it.
    assert nodes[1].cli("cat", cid, timeout=60).stdout == data
    first.kill9()
    assert nodes[2].cli("cat", cid, timeout=60).stdout == data


def test_fetch_by_id_nobody_provides_is_not_found(make_node, tmp_dir):
    a = make_node("a")
    b = make_node("b", ["--bootstrap", a.listen, "--fetch-timeout", "3"])
    t0 = time.monotonic()
    res = b.cli("cat", "ab" * 32, check=False)
    assert res.returncode != 0 and time.monotonic() - t0 < 15
    assert "no provider" in res.stderr.decode()


def _ipv6_loopback():
    import socket
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


# BEP 32 in the cluster DHT: nodes listening on IPv6 only find each other and fetch by ID.
def test_cluster_over_ipv6_fetches_by_id(make_node, tmp_dir):
    if not _ipv6_loopback():
        pytest.skip("this machine has no IPv6 loopback (::1)")
    v6 = ["--listen", "[::1]:0"]  # the last --listen wins
    a = make_node("a", v6)
    b = make_node("b", v6 + ["--bootstrap", a.listen])
    c = make_node("c", v6 + ["--bootstrap", a.listen])
    assert a.listen.startswith("[::1]:"), a.listen
    data = os.urandom(3 * 1024 * 1024 + 7)
    path = tmp_dir / "data"
    path.write_bytes(data)
    cid = a.cli("add", str(path)).stdout.decode().strip()
    assert b.cli("cat", cid, timeout=60).stdout == data
    providers = json.loads(c.cli("providers", cid, "--json").stdout)["providers"]
    assert a.listen in providers and b.listen in providers, providers
