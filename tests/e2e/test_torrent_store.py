"""Torrents kept in the chunk store instead of files (`shoal torrent add --in-store`): Shoal
downloads one from libtorrent, serves its files back with `shoal torrent cat`, seeds it to
libtorrent, keeps it across a restart, and drops its pieces on `rm --delete-data`."""
import json

import pytest

from test_fetch import lt_session, wait_seeding
from test_torrent import create_torrent, make_files, status
from test_torrent_swarm import lt_seed, torrent_wait, write_torrent

SIZES = [700_000 + 3, 5, 0, 1_200_000]


def add_in_store(node, tfile, *extra):
    return node.cli("torrent", "add", str(tfile), "--in-store",
                    *extra).stdout.decode().strip()


def files_of(node, tid):
    return json.loads(node.cli("torrent", "files", tid, "--json").stdout)["files"]


def cat(node, tid, file, *extra):
    return node.cli("torrent", "cat", tid, str(file), *extra).stdout


@pytest.mark.parametrize("kind", ["v1", "v2", "hybrid"])
def test_in_store_download_cat_seed_restart_remove(kind, make_node, tmp_dir):
    node = make_node("n")
    src = tmp_dir / "src"
    files = make_files(src, SIZES, seed=61)
    data, ti, v1, v2 = create_torrent(src, kind, "http://127.0.0.1:9/announce",
                                      piece_length=32 * 1024)
    ses, h, seed_addr = lt_seed(tmp_dir, files, ti, "seed")
    tfile = write_torrent(tmp_dir, data)
    tid = add_in_store(node, tfile, "--peer", seed_addr)
    torrent_wait(node, tid, timeout=60)
    st = status(node, tid)
    assert st["in_store"] is True and st["save_path"] == "", st
    assert st["state"] == "seeding" and st["pieces"] == "1" * ti.num_pieces()
    # Nothing went to files: the default downloads directory stays empty.
    downloads = node.data_dir / "downloads"
    assert not downloads.exists() or not any(downloads.rglob("*.bin"))

    # Every file reads back whole, by path and by index; a range reads back too.
    listed = {f["path"]: f["index"] for f in files_of(node, tid)}
    for rel, want in files.items():
        assert cat(node, tid, rel) == want, rel
    big = max(files, key=lambda r: len(files[r]))
    assert cat(node, tid, listed[big], "--offset", "40000", "--length", "70000") == \
        files[big][40000:110000]
    out = tmp_dir / "out.bin"
    node.cli("torrent", "cat", tid, big, "-o", str(out))
    assert out.read_bytes() == files[big]

    # A libtorrent leecher downloads it from the store.
    del ses, h
    import libtorrent as lt
    lt_ses = lt_session()
    lh = lt_ses.add_torrent({"ti": lt.torrent_info(data), "save_path": str(tmp_dir / "lt")})
    lh.connect_peer(("127.0.0.1", int(node.listen.rsplit(":", 1)[1])))
    wait_seeding(lh, timeout=60)
    for rel, want in files.items():
        assert (tmp_dir / "lt" / rel).read_bytes() == want, rel
    del lt_ses, lh

    # A restart keeps it, without downloading or hashing anything again.
    node.stop()
    node.start()
    st = status(node, tid)
    assert st["in_store"] is True
    assert st["state"] == "seeding" and st["pieces"] == "1" * ti.num_pieces(), st
    assert cat(node, tid, big) == files[big]

    # rm keeps the pieces (adding it again finds them); rm --delete-data drops them.
    node.cli("torrent", "rm", tid)
    tid = add_in_store(node, tfile, "--paused")
    node.cli("torrent", "resume", tid)
    torrent_wait(node, tid, timeout=30)
    assert status(node, tid)["downloaded"] == 0
    node.cli("torrent", "rm", tid, "--delete-data")
    tid = add_in_store(node, tfile)
    st = status(node, tid)
    assert "1" not in st["pieces"], st
    res = node.cli("torrent", "cat", tid, big, "--timeout", "0", check=False)
    assert res.returncode != 0
    err = res.stderr.decode().strip()
    assert "not downloaded yet" in err and len(err.splitlines()) == 1, err
    # Waiting (the default) for a piece nobody sends ends once nothing arrived for the timeout.
    res = node.cli("torrent", "cat", tid, big, "--timeout", "1", check=False)
    assert res.returncode != 0
    err = res.stderr.decode().strip()
    assert "did not arrive" in err and len(err.splitlines()) == 1, err


def test_in_store_errors(make_node, tmp_dir):
    node = make_node("n")
    src = tmp_dir / "src"
    files = make_files(src, [100_000, 3], seed=62)
    data, ti, v1, v2 = create_torrent(src, "v1", "http://127.0.0.1:9/announce",
                                      piece_length=16 * 1024)
    tfile = write_torrent(tmp_dir, data)
    res = node.cli("torrent", "add", str(tfile), "--in-store", "--save-path", str(tmp_dir),
                   check=False)
    assert res.returncode != 0 and len(res.stderr.decode().strip().splitlines()) == 1
    tid = add_in_store(node, tfile, "--paused")
    for args, needle in [((tid, "0"), "paused"),
                         ((tid, "nosuchfile"), "no file"),
                         (("0" * 40, "0"), "")]:
        res = node.cli("torrent", "cat", *args, check=False)
        err = res.stderr.decode().strip()
        assert res.returncode != 0 and len(err.splitlines()) == 1, err
        assert needle in err, err
    node.cli("torrent", "resume", tid)
    for args, needle in [((tid, "7"), "no file"),
                         ((tid, "0", "--offset", "100001"), "past the end")]:
        res = node.cli("torrent", "cat", *args, check=False)
        err = res.stderr.decode().strip()
        assert res.returncode != 0 and len(err.splitlines()) == 1, err
        assert needle in err, err
