#!/usr/bin/python3
"""Peak memory of a node fetching many contents at once.

  /usr/bin/python3 tools/bench/fetch_memory_bench.py [COUNT] [SIZE_MIB] [BUILD_DIR] [--json]
                                                     (50, 4, ./build)

One Shoal node adds COUNT random contents of SIZE_MIB each; a fresh node fetches them all at
once (COUNT `shoal cat ID --peer SEED` at the same time, each checked against its content's
SHA-256) and prints its peak RSS (shared libraries included) beside its RSS when idle, with the
goal of the data-path issue (at most 128 MB for 50 contents of 4 MiB). Talks only to 127.0.0.1;
every process started here is stopped at the end.
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from benchlib import PeakSplit, proc_hwm_mb, proc_rss_mb, start_node

ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
COUNT = int(ARGS[0]) if ARGS else 50
SIZE_MIB = int(ARGS[1]) if len(ARGS) > 1 else 4
BUILD = ARGS[2] if len(ARGS) > 2 else "build"
SHOALD = os.path.join(BUILD, "tools/shoald/shoald")
SHOAL = os.path.join(BUILD, "tools/shoal/shoal")
GOAL_MB = 128


def main():
    work = tempfile.mkdtemp(prefix="shoal-fetch-mem-")
    procs = []
    try:
        seed, seed_api, seed_listen = start_node(SHOALD, os.path.join(work, "seed"))
        procs.append(seed)
        contents = []
        for i in range(COUNT):
            data = os.urandom(SIZE_MIB << 20)
            path = os.path.join(work, f"c{i}")
            with open(path, "wb") as f:
                f.write(data)
            cid = subprocess.check_output([SHOAL, "--api", seed_api, "add", "--by-path",
                                           path]).decode().strip()
            contents.append((cid, hashlib.sha256(data).hexdigest()))
            os.remove(path)
        leech, api, _ = start_node(SHOALD, os.path.join(work, "leech"))
        procs.append(leech)
        time.sleep(1)
        idle = proc_rss_mb(leech.pid)
        split = PeakSplit(leech.pid)
        t0 = time.monotonic()
        readers = [(subprocess.Popen([SHOAL, "--api", api, "cat", cid, "--peer", seed_listen],
                                     stdout=subprocess.PIPE), digest)
                   for cid, digest in contents]
        bad = 0
        for p, digest in readers:
            out, _ = p.communicate(timeout=600)
            if p.returncode != 0 or hashlib.sha256(out).hexdigest() != digest:
                bad += 1
        took = time.monotonic() - t0
        split.stop()
        peak = proc_hwm_mb(leech.pid)
        print(f"== {COUNT} concurrent fetches of {SIZE_MIB} MiB over loopback, "
              f"{os.cpu_count()} cores")
        print(f"all fetched in {took:.2f} s, {COUNT - bad} of {COUNT} intact")
        print(f"leecher RSS idle {idle:.1f} MB, peak {peak:.1f} MB (goal at most {GOAL_MB}); "
              f"at the peak sampled, {split.anon_mb:.1f} MB anonymous, "
              f"{split.file_mb:.1f} MB mapped files")
        if "--json" in sys.argv:
            print(json.dumps({"bench": "fetch_memory", "count": COUNT, "size_mib": SIZE_MIB,
                              "seconds": round(took, 3), "intact": COUNT - bad,
                              "idle_rss_mb": round(idle, 1), "peak_rss_mb": round(peak, 1),
                              "peak_anon_mb": round(split.anon_mb, 1),
                              "peak_file_mb": round(split.file_mb, 1),
                              "goal_peak_rss_mb": GOAL_MB}))
        if bad:
            sys.exit(f"bench: {bad} fetches failed or differ")
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
