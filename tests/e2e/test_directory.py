"""End-to-end: directory content (a tree under one ID), through the CLI, the gateway, a
cluster and libtorrent."""
import hashlib
import json
import os
import time

import pytest

from test_content import lt_content_id
from test_fetch import lt_session, wait_seeding
from test_gateway import request

SITE = {
    "index.html": b'<html><link rel="stylesheet" href="css/site.css"><body>home</body></html>',
    "css/site.css": b"body { color: #123456 }\n",
    "js/app.js": os.urandom(300_000),
    "data/big.bin": os.urandom(5 * 1024 * 1024 + 77),
    "sub dir/caf\u00e9 menu.txt".encode().decode(): "caf\u00e9 \u2615\n".encode(),
    "sub dir/deeper/x.json": b'{"ok": true}',
    "empty.txt": b"",
}


def make_site(root, files=SITE):
    for path, data in files.items():
        p = root / path
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    (root / "no files here").mkdir()  # empty folders are left out
    return root


def bencode(v):
    if isinstance(v, int):
        return b"i%de" % v
    if isinstance(v, (bytes, str)):
        b = v.encode() if isinstance(v, str) else v
        return b"%d:%s" % (len(b), b)
    if isinstance(v, dict):
        items = sorted((k.encode() if isinstance(k, str) else k, val) for k, val in v.items())
        return b"d" + b"".join(bencode(k) + bencode(val) for k, val in items) + b"e"
    raise TypeError(v)


def expected_id(files, tmp_dir):
    """The directory ID computed here: pieces roots from libtorrent, dict by the spec."""
    tree = {}
    total = 0
    for path, data in files.items():
        node = tree
        parts = path.split("/")
        for seg in parts[:-1]:
            node = node.setdefault(seg.encode(), {})
        attrs = {"length": len(data)}
        if data:
            attrs["pieces root"] = bytes.fromhex(lt_content_id(data, tmp_dir)[1])
        node[parts[-1].encode()] = {b"": attrs}
        total += len(data)
    tree_bytes = bencode(tree)
    pl = 1
    while pl < (total + 1023) // 1024:
        pl *= 2
    pl = max(64 * 1024, min(4 * 1024 * 1024, pl))
    info = (b"d9:file tree" + tree_bytes + b"12:meta versioni2e4:name64:" +
            hashlib.sha256(tree_bytes).hexdigest().encode() + b"12:piece lengthi%dee" % pl)
    return hashlib.sha256(info).hexdigest()


def tree_of(root):
    out = {}
    for dirpath, _, names in os.walk(root):
        for n in names:
            p = os.path.join(dirpath, n)
            out[os.path.relpath(p, root)] = open(p, "rb").read()
    return out


# A tree gets one ID, the same streamed or read by the daemon, and the one the spec defines;
# its files are listed, read one by one, and written back whole.
def test_add_list_read_get(node, tmp_dir):
    site = make_site(tmp_dir / "site")
    did = node.cli("add", str(site)).stdout.decode().strip()
    assert did == node.cli("add", "--by-path", str(site) + "/").stdout.decode().strip()
    assert did == expected_id(SITE, tmp_dir)
    st = json.loads(node.cli("stat", did, "--json").stdout)
    assert st["kind"] == "directory" and st["complete"] and st["name"] == "site"
    assert st["num_files"] == len(SITE) and st["length"] == sum(map(len, SITE.values()))
    tree = json.loads(node.cli("ls-tree", did, "--json").stdout)["files"]
    assert sorted(f["path"] for f in tree) == sorted(SITE)
    for f in tree:
        assert f["length"] == len(SITE[f["path"]]) and f["local"]
        # Each file is content of its own too.
        assert node.cli("cat", f["id"]).stdout == SITE[f["path"]]
        fst = json.loads(node.cli("stat", f["id"], "--json").stdout)
        assert fst["kind"] == "file" and fst["directory_file"]
    assert node.cli("cat", f"{did}/sub dir/caf\u00e9 menu.txt").stdout == SITE[
        "sub dir/caf\u00e9 menu.txt"]
    assert node.cli("cat", f"{did}/data/big.bin", "--offset", "1000000", "--length",
                    "10").stdout == SITE["data/big.bin"][1000000:1000010]
    out = tmp_dir / "out"
    node.cli("get", did, "-o", str(out))
    assert tree_of(out) == SITE
    # Errors: one line, non-zero.
    for target, msg in [(did, b"is a directory"), (f"{did}/nope", b"has no file 'nope'"),
                        (f"{did}/css", b"(it is a folder)"),
                        (f"{tree[0]['id']}/x", b"not a directory")]:
        r = node.cli("cat", target, check=False)
        assert r.returncode != 0 and msg in r.stderr, r.stderr
        assert r.stderr.count(b"\n") == 1


def test_bad_trees(node, tmp_dir):
    empty = tmp_dir / "empty"
    (empty / "a" / "b").mkdir(parents=True)
    link = make_site(tmp_dir / "link", {"a.txt": b"x"})
    os.symlink("/etc/hostname", link / "l")
    fifo = make_site(tmp_dir / "fifo", {"a.txt": b"x"})
    os.mkfifo(fifo / "pipe")
    for d, msg in [(empty, b"holds no file"), (link, b"'l' is a symbolic link"),
                   (fifo, b"'pipe' is not a regular file")]:
        for extra in ([], ["--by-path"]):
            r = node.cli("add", *extra, str(d), check=False)
            assert r.returncode != 0 and msg in r.stderr, (extra, r.stderr)
    # Nothing of the failed adds was kept.
    assert json.loads(node.cli("ls", "--json").stdout)["contents"] == []


# rm and eviction of a directory take the files nothing else holds; a file added on its own or
# held by another directory stays.
def test_remove_keeps_what_else_holds(node, tmp_dir):
    a = make_site(tmp_dir / "a", {"x.txt": b"only in a", "shared.js": b"shared" * 1000})
    b = make_site(tmp_dir / "b", {"lib/shared.js": b"shared" * 1000})
    alone = tmp_dir / "alone.txt"
    alone.write_bytes(b"only in a")
    alone_id = node.cli("add", str(alone)).stdout.decode().strip()
    ida = node.cli("add", str(a)).stdout.decode().strip()
    idb = node.cli("add", str(b)).stdout.decode().strip()
    files = {f["path"]: f["id"] for f in json.loads(node.cli("ls-tree", ida, "--json").stdout)["files"]}
    assert files["x.txt"] == alone_id
    node.cli("pin", ida)
    assert json.loads(node.cli("stat", ida, "--json").stdout)["pinned"]
    r = node.cli("rm", files["shared.js"], check=False)
    assert r.returncode != 0 and b"remove the directory" in r.stderr
    node.cli("rm", ida)
    ids = {c["id"] for c in json.loads(node.cli("ls", "--json").stdout)["contents"]}
    assert ids == {alone_id, idb, files["shared.js"]}
    node.cli("rm", idb)
    ids = {c["id"] for c in json.loads(node.cli("ls", "--json").stdout)["contents"]}
    assert ids == {alone_id}


@pytest.fixture
def cluster(make_node):
    seed = make_node("seed")
    other = make_node("other", ["--bootstrap", seed.listen])
    edge = make_node("edge", ["--bootstrap", seed.listen, "--gateway", "127.0.0.1:0"])
    return seed, other, edge


# An edge that never held a site serves it over HTTP, fetching what each request needs.
def test_gateway_serves_a_site_fetched_on_miss(cluster, tmp_dir):
    seed, other, edge = cluster
    site = make_site(tmp_dir / "site")
    did = seed.cli("add", str(site)).stdout.decode().strip()
    res, body = request(edge, "GET", f"/content/{did}")
    assert res.status == 301 and res.getheader("Location") == f"/content/{did}/"
    res, body = request(edge, "GET", f"/content/{did}/")
    assert res.status == 200 and body == SITE["index.html"]
    assert res.getheader("Content-Type") == "text/html; charset=utf-8"
    res, body = request(edge, "GET", f"/content/{did}/sub%20dir/caf%C3%A9%20menu.txt")
    assert res.status == 200 and body == SITE["sub dir/caf\u00e9 menu.txt"]
    assert res.getheader("Content-Type").startswith("text/plain")
    res, body = request(edge, "GET", f"/content/{did}/css/site.css")
    assert res.getheader("Content-Type").startswith("text/css")
    # A range into the middle of a file the edge does not hold.
    big = SITE["data/big.bin"]
    lo, hi = 3_000_000, 4_500_000
    res, body = request(edge, "GET", f"/content/{did}/data/big.bin", {"Range": f"bytes={lo}-{hi}"})
    assert res.status == 206 and body == big[lo:hi + 1]
    # Folders: a redirect to the folder, then a listing (no index.html there).
    res, _ = request(edge, "GET", f"/content/{did}/sub%20dir")
    assert res.status == 301 and res.getheader("Location") == f"/content/{did}/sub%20dir/"
    res, body = request(edge, "GET", f"/content/{did}/sub%20dir/")
    assert res.status == 200 and b'href="caf%C3%A9%20menu.txt"' in body
    assert b'href="deeper/"' in body
    # Traversal and malformed paths never reach the store.
    for bad in ["../x", "a/../../x", "a//b", "a%2F..%2F..%2Fx", "..%2Fx", "a%5Cb", "%2e%2e/x",
                "a/%00"]:
        res, _ = request(edge, "GET", f"/content/{did}/{bad}")
        assert res.status == 400, bad
    res, _ = request(edge, "GET", f"/content/{did}/nope.html")
    assert res.status == 404
    # The edge holds what it served, and provides the site once it has all of it.
    st = json.loads(edge.cli("stat", did, "--json").stdout)
    assert st["kind"] == "directory" and 0 < st["files_local"] < st["num_files"]
    edge.cli("get", did, "-o", str(tmp_dir / "edge-copy"))
    assert tree_of(tmp_dir / "edge-copy") == SITE
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        provs = json.loads(other.cli("providers", did, "--json").stdout)["providers"]
        if edge.listen in provs:
            break
        time.sleep(0.5)
    assert edge.listen in provs and seed.listen in provs


# A tree whose root holds one file is still a directory (BitTorrent clients read it as a
# single-file torrent named after the file); nodes fetch it like any other.
def test_single_file_tree(cluster, tmp_dir):
    seed, other, edge = cluster
    site = make_site(tmp_dir / "one", {"only.html": b"<p>one</p>"})
    did = seed.cli("add", str(site)).stdout.decode().strip()
    assert json.loads(seed.cli("stat", did, "--json").stdout)["kind"] == "directory"
    res, body = request(edge, "GET", f"/content/{did}/only.html")
    assert res.status == 200 and body == b"<p>one</p>"
    assert other.cli("cat", f"{did}/only.html").stdout == b"<p>one</p>"


# libtorrent fetches a directory by its v2 magnet: the same tree, byte for byte.
def test_libtorrent_downloads_a_directory(node, tmp_dir):
    import libtorrent as lt
    site = make_site(tmp_dir / "site")
    did = node.cli("add", str(site)).stdout.decode().strip()
    ses = lt_session()
    params = lt.parse_magnet_uri(f"magnet:?xt=urn:btmh:1220{did}&x.pe={node.listen}")
    params.save_path = str(tmp_dir / "lt")
    h = ses.add_torrent(params)
    wait_seeding(h)
    name = h.torrent_file().name()
    got = tree_of(tmp_dir / "lt" / name)
    # libtorrent writes the empty file too.
    assert got == SITE
    assert h.status().info_hashes.v2.to_bytes().hex() == did


# Preheat: the nodes closest to an ID that lack it fetch it now (a cluster-DHT query,
# authenticated with the cluster key), for a file and for a whole directory.
def test_preheat(make_node, tmp_dir):
    import subprocess
    key = tmp_dir / "cluster.key"
    subprocess.run([os.environ["SHOAL"], "keygen", "-o", str(key)], check=True)
    k = ["--cluster-key-file", str(key)]
    origin = make_node("origin", k)
    others = [make_node(f"n{i}", k + ["--bootstrap", origin.listen]) for i in range(3)]
    # Let every node hear of the others (they bootstrap through the origin).
    for n in others:
        n.cli("providers", "00" * 32, "--timeout", "3")
    data = os.urandom(3 * 1024 * 1024 + 5)
    (tmp_dir / "f.bin").write_bytes(data)
    fid = origin.cli("add", str(tmp_dir / "f.bin")).stdout.decode().strip()
    out = origin.cli("preheat", fid, "--nodes", "2", "--json", "--timeout", "60").stdout
    states = [json.loads(line) for line in out.decode().splitlines()]
    done = {s["node"] for s in states if s["state"] == "complete"}
    assert len(done) == 2, out
    holders = [n for n in others if n.listen in done]
    assert len(holders) == 2
    for n in holders:
        st = json.loads(n.cli("stat", fid, "--json").stdout)
        assert st["complete"]
    assert sum(1 for n in others if n.cli("stat", fid, check=False).returncode == 0) == 2
    # A directory: every file arrives.
    site = make_site(tmp_dir / "site")
    did = origin.cli("add", str(site)).stdout.decode().strip()
    out = origin.cli("preheat", did, "--nodes", "3", "--json", "--timeout", "60").stdout
    states = [json.loads(line) for line in out.decode().splitlines()]
    assert {s["node"] for s in states if s["state"] == "complete"} == {n.listen for n in others}
    for n in others:
        st = json.loads(n.cli("stat", did, "--json").stdout)
        assert st["kind"] == "directory" and st["complete"], st
    # Nobody to ask, and bad input: one line, non-zero.
    lonely = make_node("lonely")
    r = lonely.cli("preheat", fid, check=False)
    assert r.returncode != 0 and b"knows no node" in r.stderr
    r = origin.cli("preheat", "xyz", check=False)
    assert r.returncode != 0 and r.stderr.count(b"\n") == 1
