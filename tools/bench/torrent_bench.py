#!/usr/bin/python3
"""Moves a v1 torrent over loopback and prints time, MB/s, the leecher's peak RSS and CPU.

  /usr/bin/python3 tools/bench/torrent_bench.py [SIZE_MIB] [BUILD_DIR] [--no-cdn] [--runs=N]
                                                (1024, ./build, 3 runs)

Contenders, in the same run, for the same torrent (two files, v1, libtorrent's piece size):
  - libtorrent seeder -> Shoal (`shoal torrent add --peer`; leecher = that shoald)
  - libtorrent seeder -> libtorrent (a second libtorrent session in its own process)
  - Shoal seeder -> libtorrent
  - and, unless --no-cdn, tools/bench/cdn_transfer_bench.py for Shoal -> Shoal CDN content.
Each download runs N times (the machine is noisy), the two leechers of the same seed interleaved;
the median run is printed, with the range.
Each libtorrent runs in its own process, so its RSS and CPU are its own (plus Python's, about
20 MB). Talks only to 127.0.0.1; every process started here is stopped at the end.
"""
import os
import subprocess
import sys
import tempfile
import shutil

from benchlib import lt_leech, lt_seed, make_v1_torrent, report, shoal_leech, start_node

ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
SIZE_MIB = int(ARGS[0]) if ARGS else 1024
RUNS = next((int(a.split("=", 1)[1]) for a in sys.argv if a.startswith("--runs=")), 3)
BUILD = ARGS[1] if len(ARGS) > 1 else "build"
SHOALD = os.path.join(BUILD, "tools/shoald/shoald")
SHOAL = os.path.join(BUILD, "tools/shoal/shoal")
HERE = os.path.dirname(os.path.abspath(__file__))



def main():
    work = tempfile.mkdtemp(prefix="shoal-torrent-bench-")
    procs = []
    try:
        torrent, src, ti = make_v1_torrent(work, SIZE_MIB)
        size = ti.total_size()
        print(f"== v1 torrent over loopback: {SIZE_MIB} MiB in {ti.num_files()} files, "
              f"{ti.num_pieces()} pieces of {ti.piece_length() // 1024} KiB, "
              f"{os.cpu_count()} cores", flush=True)

        seeder, seed_addr = lt_seed(torrent, src)
        procs.append(seeder)

        # libtorrent -> Shoal and libtorrent -> libtorrent, interleaved (ABBA): this VM's
        # page cache costs more while memory is fresh (the first writes after the source files
        # were made), so running all of one contender first would tilt the comparison.
        def shoal_run(i):
            # TCP, as the libtorrents here (tools/bench/utp_bench.py compares µTP).
            return shoal_leech(SHOALD, SHOAL, work, f"shoal-leech{i}", torrent, src, seed_addr,
                               procs, ["--utp", "off"])

        def lt_run(i):
            return lt_leech(torrent, os.path.join(work, "out-lt"), seed_addr)

        shoal_runs, lt_runs = [], []
        for i in range(RUNS):
            if i % 2 == 0:
                shoal_runs.append(shoal_run(i))
                lt_runs.append(lt_run(i))
            else:
                lt_runs.append(lt_run(i))
                shoal_runs.append(shoal_run(i))
        shoal_secs, _, _ = report("libtorrent -> Shoal", shoal_runs, size)
        lt_secs, _, _ = report("libtorrent -> libtorrent", lt_runs, size)
        print(f"   Shoal/libtorrent time ratio: {shoal_secs / lt_secs:.2f} "
              f"(goal 0.6, at most 1.0)", flush=True)
        seeder.stdin.close()
        seeder.wait(timeout=30)

        # Shoal -> libtorrent
        node, api, listen = start_node(SHOALD, os.path.join(work, "shoal-seed"))
        procs.append(node)
        tid = subprocess.check_output([SHOAL, "--api", api, "torrent", "add", torrent,
                                       "--save-path", src]).decode().strip()
        subprocess.check_call([SHOAL, "--api", api, "torrent", "wait", tid, "--timeout", "900"])
        runs = [lt_leech(torrent, os.path.join(work, "out-lt2"), listen) for _ in range(RUNS)]
        report("Shoal -> libtorrent", runs, size)
        node.terminate()
        node.wait()
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(work, ignore_errors=True)
    if "--no-cdn" not in sys.argv:
        subprocess.call(["/usr/bin/python3", os.path.join(HERE, "cdn_transfer_bench.py"),
                         str(SIZE_MIB), BUILD])


if __name__ == "__main__":
    main()
