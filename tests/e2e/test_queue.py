"""The torrent queue: at most --active-downloads torrents download and --active-seeds seed at
once; the others wait in state "queued", in the order they were added."""
import time

from test_torrent import assert_same_files, make_files, status
from test_torrent_swarm import torrent_wait, write_torrent
from test_seed_limits import wait_state
from test_web_seed import RangeServer, make_torrent

KiB = 1024


def test_a_second_download_waits_for_the_first(make_node, tmp_dir):
    node = make_node(extra_args=["--active-downloads", "1"])
    # The first torrent's only source is a web seed nobody serves: it stays downloading.
    stuck_src = tmp_dir / "stuck"
    make_files(stuck_src, [200_000, 3], seed=51)
    gone = RangeServer(stuck_src)
    gone_url = gone.url
    gone.close()
    stuck_data, _, stuck = make_torrent(stuck_src, "v1", gone_url)
    node.cli("torrent", "add", str(write_torrent(tmp_dir, stuck_data, "stuck.torrent")),
             "--save-path", str(tmp_dir / "stuck-dl"))
    wait_state(node, stuck, "downloading")
    # The second has a working web seed, but waits for the slot.
    src = tmp_dir / "src"
    files = make_files(src, [300_000, 50_001], seed=52)
    server = RangeServer(src)
    try:
        data, _, tid = make_torrent(src, "hybrid", server.url)
        out = tmp_dir / "dl"
        node.cli("torrent", "add", str(write_torrent(tmp_dir, data)), "--save-path", str(out))
        time.sleep(1.5)
        assert status(node, tid)["state"] == "queued"
        assert server.requests == 0
        text = node.cli("torrent", "ls").stdout.decode()
        assert "queued" in text
        # Pausing the first frees its slot for the second.
        node.cli("torrent", "pause", stuck)
        torrent_wait(node, tid)
        assert_same_files(files, out)
        # Resumed, the first takes the download slot again (the second now seeds).
        node.cli("torrent", "resume", stuck)
        wait_state(node, stuck, "downloading")
        assert status(node, tid)["state"] == "seeding"
    finally:
        server.close()


def test_seeds_over_the_limit_wait_and_take_a_freed_slot(make_node, tmp_dir):
    node = make_node(extra_args=["--active-seeds", "1"])
    ids = []
    for i in range(2):
        src = tmp_dir / f"src{i}"
        make_files(src, [100_000 + i, 7], seed=60 + i)
        data, _, tid = make_torrent(src, "v2", None)
        node.cli("torrent", "add", str(write_torrent(tmp_dir, data, f"{i}.torrent")),
                 "--save-path", str(src))
        ids.append(tid)
    wait_state(node, ids[0], "seeding")
    wait_state(node, ids[1], "queued")
    node.cli("torrent", "rm", ids[0])
    wait_state(node, ids[1], "seeding")
    # A restart keeps the limit's outcome: still one seed running.
    node.stop()
    node.start()
    wait_state(node, ids[1], "seeding")
