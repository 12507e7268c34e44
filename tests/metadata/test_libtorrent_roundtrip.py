"""Round trips between Shoal's torrent metadata code and libtorrent 2.0.8.

Run with /usr/bin/python3 -m pytest (Debian's python3-libtorrent lives there).
SHOAL_TORRENT_TOOL names an executable that accepts `torrent create ...` and
`torrent inspect ...` (shoal_torrent_tool or shoal itself).

1. Torrents Shoal creates (v1, v2, hybrid; one file; nested directories with an
   empty file and non-ASCII names) load in libtorrent with the same
   info-hashes, and libtorrent's own full check of the data finds every piece.
2. Torrents libtorrent creates inspect identically in Shoal.
"""

import json
import os
import subprocess
import time

import libtorrent as lt
import pytest

TOOL = os.environ.get("SHOAL_TORRENT_TOOL")
pytestmark = pytest.mark.skipif(
    not TOOL, reason="SHOAL_TORRENT_TOOL is not set")

CHECK_TIMEOUT_S = 60


def shoal(*args):
    return subprocess.run([TOOL, "torrent", *args], check=True,
                          capture_output=True, text=True).stdout


def inspect(path):
    return json.loads(shoal("inspect", str(path), "--json"))


def write(path, size, seed):
    path.parent.mkdir(parents=True, exist_ok=True)
    # Deterministic, incompressible-looking bytes.
    data = bytearray()
    x = seed * 2654435761 % 2**32 or 1
    while len(data) < size:
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        data += x.to_bytes(4, "little")
    path.write_bytes(bytes(data[:size]))


def make_tree(root):
    """Nested directories, an empty file, non-ASCII names, odd sizes."""
    write(root / "a.bin", 100_000, 1)
    write(root / "empty.txt", 0, 2)
    write(root / "sub" / "ünïcødé файл.dat", 50_001, 3)
    write(root / "sub" / "deeper" / "日本語.txt", 300, 4)
    write(root / "sub" / "deeper" / "exactly-one-piece", 32_768, 5)
    write(root / "z" / "big.bin", 1_000_000, 6)
    return root


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    base = tmp_path_factory.mktemp("data")
    make_tree(base / "tree")
    write(base / "single.bin", 777_777, 7)
    return base


def session():
    return lt.session({
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "alert_mask": lt.alert.category_t.status_notification
                      | lt.alert.category_t.error_notification,
    })


def libtorrent_check(torrent_path, save_path):
    """Adds the torrent to a session and waits for libtorrent's full check of
    the data (torrent_checked_alert), at most CHECK_TIMEOUT_S seconds."""
    ses = session()
    ti = lt.torrent_info(str(torrent_path))
    h = ses.add_torrent({"ti": ti, "save_path": str(save_path)})
    deadline = time.monotonic() + CHECK_TIMEOUT_S
    checked = False
    while not checked:
        if time.monotonic() > deadline:
            pytest.fail(f"libtorrent check did not finish in "
                        f"{CHECK_TIMEOUT_S}s (state {h.status().state})")
        ses.wait_for_alert(100)
        for a in ses.pop_alerts():
            if isinstance(a, lt.torrent_checked_alert):
                checked = True
            elif isinstance(a, (lt.torrent_error_alert,
                                lt.file_error_alert)):
                pytest.fail(f"libtorrent: {a.message()}")
    s = h.status()
    # Let the removal finish before the session is destroyed: tearing a
    # session down while its disk threads still hold the torrent has crashed
    # the interpreter (SIGSEGV) on a loaded machine.
    ses.remove_torrent(h)
    deadline = time.monotonic() + 10
    removed = False
    while not removed and time.monotonic() < deadline:
        ses.wait_for_alert(100)
        removed = any(isinstance(a, lt.torrent_removed_alert)
                      for a in ses.pop_alerts())
    ses.pause()
    return ti, s


@pytest.mark.parametrize("version", ["v1", "v2", "hybrid"])
@pytest.mark.parametrize("source", ["tree", "single.bin"])
@pytest.mark.parametrize("piece_size", [None, 16384, 65536])
def test_shoal_created_loads_and_checks_in_libtorrent(
        data, tmp_path, version, source, piece_size):
    out = tmp_path / f"{version}.torrent"
    args = ["create", str(data / source), "-o", str(out), f"--{version}",
            "--tracker", "http://127.0.0.1:1/announce",
            "--web-seed", "http://127.0.0.1:1/seed/", "--comment", "round trip"]
    if piece_size:
        args += ["--piece-size", str(piece_size)]
    printed_id = shoal(*args).strip()
    mine = inspect(out)

    ti, status = libtorrent_check(out, data)
    hashes = ti.info_hashes()
    lt_v1 = str(hashes.v1) if hashes.has_v1() else None
    lt_v2 = str(hashes.v2) if hashes.has_v2() else None
    assert mine["info_hash_v1"] == lt_v1
    assert mine["info_hash_v2"] == lt_v2
    assert (version != "v2") == (lt_v1 is not None)
    assert (version != "v1") == (lt_v2 is not None)
    assert printed_id == (lt_v2 or lt_v1)
    assert mine["total_size"] == ti.total_size()
    assert mine["num_files"] == ti.num_files()
    assert mine["piece_length"] == ti.piece_length()
    assert mine["num_pieces"] == ti.num_pieces()
    assert mine["name"] == ti.name()
    # libtorrent re-hashed every piece from disk and found them all good.
    assert status.num_pieces == ti.num_pieces()
    assert status.is_seeding
    assert status.progress == pytest.approx(1.0)


def test_private_flag_and_trackers_reach_libtorrent(data, tmp_path):
    out = tmp_path / "p.torrent"
    shoal("create", str(data / "single.bin"), "-o", str(out), "--private",
          "--tracker", "http://a/announce", "--tracker", "udp://b:80")
    ti = lt.torrent_info(str(out))
    assert ti.priv()
    assert [(t.url, t.tier) for t in ti.trackers()] == [
        ("http://a/announce", 0), ("udp://b:80", 1)]
    mine = inspect(out)
    assert mine["private"] is True
    assert [t["url"] for t in mine["trackers"]] == [
        "http://a/announce", "udp://b:80"]


def libtorrent_create(source, out, flags, piece_size=0):
    fs = lt.file_storage()
    lt.add_files(fs, str(source))
    ct = lt.create_torrent(fs, piece_size, flags=flags)
    ct.add_tracker("http://127.0.0.1:1/announce")
    ct.add_url_seed("http://127.0.0.1:1/seed/")
    ct.set_comment("made by libtorrent")
    lt.set_piece_hashes(ct, str(source.parent))
    out.write_bytes(lt.bencode(ct.generate()))


LT_FLAGS = {
    "v1": lt.create_torrent.v1_only,
    "v2": lt.create_torrent.v2_only,
    "hybrid": 0,
}


@pytest.mark.parametrize("version", ["v1", "v2", "hybrid"])
@pytest.mark.parametrize("source", ["tree", "single.bin"])
def test_libtorrent_created_inspects_identically(data, tmp_path, version,
                                                 source):
    out = tmp_path / f"lt-{version}.torrent"
    libtorrent_create(data / source, out, LT_FLAGS[version])
    ti = lt.torrent_info(str(out))
    mine = inspect(out)
    hashes = ti.info_hashes()
    assert mine["info_hash_v1"] == (str(hashes.v1) if hashes.has_v1() else None)
    assert mine["info_hash_v2"] == (str(hashes.v2) if hashes.has_v2() else None)
    assert mine["name"] == ti.name()
    assert mine["total_size"] == ti.total_size()
    assert mine["num_files"] == ti.num_files()
    assert mine["piece_length"] == ti.piece_length()
    assert mine["num_pieces"] == ti.num_pieces()
    assert mine["comment"] == ti.comment()
    assert [t["url"] for t in mine["trackers"]] == [
        t.url for t in ti.trackers()]
    fs = ti.files()
    got = [(f["path"], f["length"], f["offset"], bool(f.get("pad")))
           for f in mine["files"]]
    want = [(fs.file_path(i), fs.file_size(i), fs.file_offset(i),
             bool(fs.file_flags(i) & lt.file_storage.flag_pad_file))
            for i in range(fs.num_files())]
    # Pad file names are an implementation detail; compare the rest.
    assert [(p if not pad else None, n, o, pad) for p, n, o, pad in got] == \
           [(p if not pad else None, n, o, pad) for p, n, o, pad in want]


def test_inspect_magnet(tmp_path, data):
    out = tmp_path / "m.torrent"
    shoal("create", str(data / "single.bin"), "-o", str(out), "--hybrid",
          "--tracker", "http://a/announce")
    mine = inspect(out)
    magnet = mine["magnet"]
    parsed = lt.parse_magnet_uri(magnet)
    assert str(parsed.info_hashes.v1) == mine["info_hash_v1"]
    assert str(parsed.info_hashes.v2) == mine["info_hash_v2"]
    assert parsed.name == mine["name"]
    again = inspect(magnet)
    assert again["info_hash_v1"] == mine["info_hash_v1"]
    assert again["info_hash_v2"] == mine["info_hash_v2"]
    assert again["name"] == mine["name"]
    assert again["total_size"] is None


def test_inspect_rejects_garbage_with_one_line(tmp_path):
    bad = tmp_path / "bad.torrent"
    bad.write_bytes(b"d4:infod4:name1:ae")
    r = subprocess.run([TOOL, "torrent", "inspect", str(bad), "--json"],
                       capture_output=True, text=True)
    assert r.returncode != 0
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("shoal: ")
