#!/usr/bin/python3
"""Fan-out of CDN content in a cluster: one node's content fetched by N nodes at once, against
one node fetching alone, printed as a ratio (the goals: at most 1.3 with up to 4 fetchers, at most
1.5 with more).

  /usr/bin/python3 tools/bench/fanout_bench.py [SIZE_MIB] [BUILD_DIR] [N] [--uplink=MB/s]
      [--to-files]      (256, ./build, 4; no uplink limit)

Every node bootstraps its cluster DHT from the first; fetches name no peer (`shoal get ID`), so
providers come from the DHT, and nodes that finish become providers too. Two contents of the same
size (fresh random bytes) keep the runs independent. Talks only to 127.0.0.1.

On loopback with no limit, the run measures CPU: every node hashes and stores what it receives,
so five nodes on a 2-core machine cannot match one fetch alone. --uplink=X gives every node an
upload limit of X MB/s (Shoal's node-wide rate limit), as each would have behind a real link:
then one fetch alone is bound by the seed's uplink, and the ratio shows how well the fetchers
share the load among themselves, which is what a swarm is for.

Each fetcher is `shoal cat ID > /dev/null`: the node fetches into its store and streams the
bytes to the client, which drops them. With --to-files it is `shoal get ID -o FILE`, as before
(a profile of 8 fetchers on 2 cores found 40% of both cores in the 8 clients writing their
files into the page cache: the machine's limit, not the swarm's).
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

from benchlib import start_node

ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
TO_FILES = "--to-files" in sys.argv[1:]
UPLINK = next((float(a.split("=", 1)[1]) for a in sys.argv[1:] if a.startswith("--uplink=")),
              0.0)
SIZE_MIB = int(ARGS[0]) if len(ARGS) > 0 else 256
BUILD = ARGS[1] if len(ARGS) > 1 else "build"
N = int(ARGS[2]) if len(ARGS) > 2 else 4
SHOALD = os.path.join(BUILD, "tools/shoald/shoald")
SHOAL = os.path.join(BUILD, "tools/shoal/shoal")


def fetch(api, content_id, path):
    """The command one fetcher runs: `shoal cat ID` (its output goes to /dev/null), or with
    --to-files `shoal get ID -o PATH`."""
    if TO_FILES:
        return [SHOAL, "--api", api, "get", content_id, "-o", path]
    return [SHOAL, "--api", api, "cat", content_id]


def add(api, path):
    return subprocess.check_output([SHOAL, "--api", api, "add", "--by-path", path]).decode().strip()


def main():
    work = tempfile.mkdtemp(prefix="shoal-fanout-bench-")
    procs = []
    try:
        seed, seed_api, seed_listen = start_node(SHOALD, os.path.join(work, "seed"))
        procs.append(seed)
        leechers = []
        for i in range(N + 1):
            p, api, _ = start_node(SHOALD, os.path.join(work, f"n{i}"), ["--bootstrap", seed_listen])
            procs.append(p)
            leechers.append(api)
        if UPLINK:
            for api in [seed_api] + leechers:
                subprocess.check_call([SHOAL, "--api", api, "torrent", "limit", "--up",
                                       str(int(UPLINK * 1e6))], stdout=subprocess.DEVNULL)
        ids = []
        for k in range(2):
            path = os.path.join(work, f"data{k}")
            with open(path, "wb") as f:
                for _ in range(SIZE_MIB):
                    f.write(os.urandom(1 << 20))
            ids.append(add(seed_api, path))
        time.sleep(1)  # the DHT settles: everyone has found the seed
        link = f", every node's uplink {UPLINK:g} MB/s" if UPLINK else ", no uplink limit"
        print(f"== fan-out over loopback: {SIZE_MIB} MiB from one node, {os.cpu_count()} cores"
              + link, flush=True)
        # One node alone (the last one, which takes no part in the group run).
        t0 = time.monotonic()
        subprocess.check_call(fetch(leechers[N], ids[0], os.path.join(work, "alone")),
                              stdout=subprocess.DEVNULL)
        alone = time.monotonic() - t0
        print(f"1 node alone        {alone:7.2f} s  {SIZE_MIB * 1.048576 / alone:8.1f} MB/s",
              flush=True)
        t0 = time.monotonic()
        gets = [subprocess.Popen(fetch(api, ids[1], os.path.join(work, f"out{i}")),
                                 stdout=subprocess.DEVNULL)
                for i, api in enumerate(leechers[:N])]
        if os.environ.get("FANOUT_DEBUG"):
            time.sleep(5)
            for api in leechers[:N]:
                print(subprocess.run([SHOAL, "--api", api, "node", "info", "--json"],
                                     capture_output=True).stdout.decode()[:600])
        if os.environ.get("FANOUT_DEBUG"):
            import re
            import threading
            port = seed_listen.rsplit(":", 1)[1]
            best = {}

            def sample():
                while any(g.poll() is None for g in gets):
                    out = subprocess.run(["ss", "-tinH", f"( sport = :{port} )"],
                                         capture_output=True, text=True).stdout
                    peer = None
                    for line in out.splitlines():
                        if not line.startswith((" ", "\t")):
                            peer = line.split()[-1]
                        elif peer and (m := re.search(r"bytes_acked:(\d+)", line)):
                            best[peer] = max(best.get(peer, 0), int(m.group(1)))
                    time.sleep(0.2)
            sampler = threading.Thread(target=sample)
            sampler.start()
        # Each fetcher's own end (waiting on them in turn would give every one that ended
        # before the one waited on the same time).
        ends = {}
        deadline = time.monotonic() + 600
        while len(ends) < len(gets):
            if time.monotonic() > deadline:
                raise SystemExit("fetches did not end within 600 s")
            for i, g in enumerate(gets):
                if i not in ends and g.poll() is not None:
                    if g.returncode != 0:
                        raise SystemExit("a fetch failed")
                    ends[i] = time.monotonic() - t0
            time.sleep(0.01)
        ends = list(ends.values())
        group = max(ends)
        if os.environ.get("FANOUT_DEBUG"):
            sampler.join()
            print(f"seed sent about {sum(best.values()) / 1e6:.0f} MB to {len(best)} peers")

        print(f"{N} nodes at once     {group:7.2f} s  (each: "
              + ", ".join(f"{e:.2f}" for e in sorted(ends)) + " s)")
        goal = 1.3 if N <= 4 else 1.5
        print(f"   ratio {group / alone:.2f} (goal: at most {goal})")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
