"""Seeding: limits (a seeding torrent stops at a share ratio or after a seeding time, its own
limits or the node's: --share-ratio-limit, --seed-time-limit; kept across a restart) and BEP 16
super-seeding."""
import json
import time

from test_fetch import lt_session
from test_torrent import make_files, status
from test_torrent_swarm import torrent_wait, write_torrent
from test_web_seed import make_torrent

KiB = 1024


def seeding_torrent(node, tmp_dir, seed=41):
    src = tmp_dir / "src"
    files = make_files(src, [500_000, 123_457], seed=seed)
    data, ti, tid = make_torrent(src, "hybrid", None)
    tfile = write_torrent(tmp_dir, data)
    node.cli("torrent", "add", str(tfile), "--save-path", str(src))
    torrent_wait(node, tid)
    return tid, ti, files


def wait_state(node, tid, state, timeout=20):
    deadline = time.monotonic() + timeout
    st = status(node, tid)
    while time.monotonic() < deadline and st["state"] != state:
        time.sleep(0.2)
        st = status(node, tid)
    assert st["state"] == state, st
    return st


def limits(node, *args):
    return json.loads(node.cli("torrent", "limit", *args, "--json").stdout)


def test_seed_time_limit_of_a_torrent_stops_it_and_survives_a_restart(make_node, tmp_dir):
    node = make_node()
    tid, _, _ = seeding_torrent(node, tmp_dir)
    got = limits(node, tid, "--seed-time", "2")
    assert got["seed_time_limit"] == 2 and got["share_ratio_limit"] == 0
    st = wait_state(node, tid, "paused")
    assert "seeded" in st["stopped_by"] and st["seeding_seconds"] >= 2, st
    text = node.cli("torrent", "status", tid).stdout.decode()
    assert "stopped: seeded" in text
    # Resumed by hand, it seeds on: the limit it reached does not stop it again.
    node.cli("torrent", "resume", tid)
    # A rate limit change leaves the seeding limits (and that one was reached) alone.
    node.cli("torrent", "limit", tid, "--up", "0")
    time.sleep(2.5)
    assert status(node, tid)["state"] == "seeding"
    node.stop()
    node.start()
    assert limits(node, tid)["seed_time_limit"] == 2
    assert status(node, tid)["seeding_seconds"] >= 4


def test_node_wide_seed_time_limit(make_node, tmp_dir):
    node = make_node(extra_args=["--seed-time-limit", "1"])
    tid, _, _ = seeding_torrent(node, tmp_dir)
    assert limits(node)["seed_time_limit"] == 1
    wait_state(node, tid, "paused")
    # A torrent's own limit replaces the node's.
    node.cli("torrent", "limit", tid, "--seed-time", "0")
    node.cli("torrent", "resume", tid)
    time.sleep(2.5)
    st = status(node, tid)
    assert st["state"] == "seeding" and st["stopped_by"] == "", st


def test_share_ratio_limit_stops_a_seed_once_it_uploaded_enough(make_node, tmp_dir):
    node = make_node()
    tid, ti, files = seeding_torrent(node, tmp_dir, seed=42)
    node.cli("torrent", "limit", tid, "--ratio", "0.5")
    assert status(node, tid)["state"] == "seeding"
    ses = lt_session()
    out = tmp_dir / "lt"
    out.mkdir()
    h = ses.add_torrent({"ti": ti, "save_path": str(out)})
    host, port = node.listen.rsplit(":", 1)
    h.connect_peer(("127.0.0.1", int(port)))
    st = wait_state(node, tid, "paused", timeout=60)
    assert st["share_ratio"] >= 0.5 and "share ratio" in st["stopped_by"], st


def test_bad_limits_are_refused(make_node, tmp_dir):
    node = make_node()
    tid, _, _ = seeding_torrent(node, tmp_dir, seed=43)
    for args in (["--ratio", "-1"], ["--ratio", "nan"], ["--seed-time", "-5"]):
        res = node.cli("torrent", "limit", tid, *args, check=False)
        assert res.returncode != 0, args
        assert len(res.stderr.decode().strip().splitlines()) == 1, res.stderr
    res = node.cli("torrent", "limit", "0" * 40, "--ratio", "1", check=False)
    assert res.returncode != 0


def test_super_seeding_shows_one_piece_at_a_time(make_node, tmp_dir):
    """BEP 16: a Shoal seed with super-seeding on shows a lone libtorrent leecher one piece at a
    time (the next once another peer has the last, or after 10 s); with a second leecher that
    trades with the first, both complete and the seed sends about one copy."""
    node = make_node()
    src = tmp_dir / "src"
    files = make_files(src, [700_000, 300_001], seed=44)
    data, ti, tid = make_torrent(src, "v1", None)
    node.cli("torrent", "add", str(write_torrent(tmp_dir, data)), "--save-path", str(src))
    torrent_wait(node, tid)
    node.cli("torrent", "super-seed", tid, "on")
    assert status(node, tid)["super_seeding"] is True
    host, port = node.listen.rsplit(":", 1)
    sessions, handles = [], []
    for i in range(2):
        ses = lt_session()
        out = tmp_dir / f"lt{i}"
        out.mkdir()
        handles.append(ses.add_torrent({"ti": ti, "save_path": str(out)}))
        sessions.append(ses)
    handles[0].connect_peer(("127.0.0.1", int(port)))
    time.sleep(3)
    lone = handles[0].status()
    assert 1 <= lone.num_pieces <= 2 and not lone.is_seeding, lone.num_pieces
    handles[1].connect_peer(("127.0.0.1", int(port)))
    handles[1].connect_peer(("127.0.0.1", sessions[0].listen_port()))
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not all(h.status().is_seeding for h in handles):
        time.sleep(0.2)
    assert all(h.status().is_seeding for h in handles), [h.status().progress for h in handles]
    size = sum(len(d) for d in files.values())
    sent = status(node, tid)["uploaded"]
    assert sent <= 1.5 * size, (sent, size)
    node.cli("torrent", "super-seed", tid, "off")
    assert status(node, tid)["super_seeding"] is False
