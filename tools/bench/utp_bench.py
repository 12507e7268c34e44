#!/usr/bin/python3
"""µTP over loopback: a libtorrent seeder that speaks µTP only, and two leechers of the same
v1 torrent, interleaved: Shoal (`shoal torrent add --peer`, so over µTP) and libtorrent (µTP
only). Prints time, MB/s, the leecher's peak RSS and CPU, and Shoal's time over libtorrent's
(goal: at most 0.8).

  /usr/bin/python3 tools/bench/utp_bench.py [SIZE_MIB] [BUILD_DIR] [--runs=N] [--json]
                                            (64, ./build, 3 runs)

libtorrent's µTP on loopback moves a few MB/s (docs/ARCHITECTURE.md), hence the small default.
Talks only to 127.0.0.1; every process started here is stopped at the end.
"""
import json
import os
import shutil
import sys
import tempfile

from benchlib import lt_leech, lt_seed, make_v1_torrent, report, shoal_leech

ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
SIZE_MIB = int(ARGS[0]) if ARGS else 64
RUNS = next((int(a.split("=", 1)[1]) for a in sys.argv if a.startswith("--runs=")), 3)
BUILD = ARGS[1] if len(ARGS) > 1 else "build"
JSON = "--json" in sys.argv
SHOALD = os.path.join(BUILD, "tools/shoald/shoald")
SHOAL = os.path.join(BUILD, "tools/shoal/shoal")


def main():
    work = tempfile.mkdtemp(prefix="shoal-utp-bench-")
    procs = []
    try:
        torrent, src, ti = make_v1_torrent(work, SIZE_MIB)
        size = ti.total_size()
        if not JSON:
            print(f"== v1 torrent over loopback µTP: {SIZE_MIB} MiB, {ti.num_pieces()} pieces "
                  f"of {ti.piece_length() // 1024} KiB, {os.cpu_count()} cores", flush=True)
        seeder, seed_addr = lt_seed(torrent, src, "utp")
        procs.append(seeder)
        shoal_runs, lt_runs = [], []
        for i in range(RUNS):
            def shoal_run():
                return shoal_leech(SHOALD, SHOAL, work, f"shoal-leech{i}", torrent, src,
                                   seed_addr, procs)

            def lt_run():
                return lt_leech(torrent, os.path.join(work, "out-lt"), seed_addr, "utp")
            first, second = (shoal_run, lt_run) if i % 2 == 0 else (lt_run, shoal_run)
            for run in (first, second):
                (shoal_runs if run is shoal_run else lt_runs).append(run())
        seeder.stdin.close()
        seeder.wait(timeout=30)
        if JSON:
            def median(runs):
                s, cpu, rss = sorted(runs)[len(runs) // 2]
                return {"seconds": s, "mb_per_s": size / s / 1e6, "cpu": cpu, "rss_mb": rss,
                        "runs": sorted(r[0] for r in runs)}
            shoal, lt = median(shoal_runs), median(lt_runs)
            print(json.dumps({"size_mib": SIZE_MIB, "libtorrent_to_shoal": shoal,
                              "libtorrent_to_libtorrent": lt,
                              "ratio": shoal["seconds"] / lt["seconds"], "goal": 0.8}))
            return
        shoal_secs, _, _ = report("libtorrent -> Shoal (µTP)", shoal_runs, size)
        lt_secs, _, _ = report("libtorrent -> libtorrent (µTP)", lt_runs, size)
        print(f"   Shoal/libtorrent time ratio: {shoal_secs / lt_secs:.2f} (goal at most 0.8)",
              flush=True)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
