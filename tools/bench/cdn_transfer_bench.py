#!/usr/bin/python3
"""Moves CDN content over loopback and prints each contender's time beside libtorrent's.

  /usr/bin/python3 tools/bench/cdn_transfer_bench.py [SIZE_MIB] [BUILD_DIR] [--runs=N] [--json]
                                                     (1024, ./build, 3 runs)

The same bytes, in the same run, N times each (the machine is noisy; the median run is shown):
  - reference: libtorrent 2.0.8 -> libtorrent, the canonical v2 torrent of the content (the
    .torrent whose v2 info-hash is the content ID), each libtorrent in its own process
  - Shoal -> Shoal: `shoal cat ID --peer SEED > /dev/null` on a fresh node (leecher = that shoald);
    goal at most 0.6x the reference's time, leecher peak RSS at most 64 MB
  - Shoal -> libtorrent: a libtorrent leecher of the canonical torrent from a Shoal seed; goal at
    most 0.9x the reference's time (a libtorrent seed). Each seed's CPU is printed too, and the
    libtorrent leecher's CPU per second of its run: at 1.0 cores it is bound by itself, and no
    seed can make it faster
  - the durable-write floor: `dd conv=fdatasync` of the same bytes. A Shoal fetch makes what it
    stores durable before it says so; libtorrent leaves it in the page cache. Where this floor
    is above 0.6x the reference, the disk alone stops the fetch goal.
  - what is left without the disk: the same Shoal fetch with the leecher under `eatmydata`
    (fsync and fdatasync made no-ops; not a mode Shoal offers, an experiment), and the cores
    that the seed, the leecher and the CLI kept busy together (their CPU over the fetch's time;
    this machine has 2). Skipped, saying so, where `eatmydata` is not installed.
--json prints one JSON object (seconds, CPU, peak RSS of each contender, the ratios) as the
last line. Talks only to 127.0.0.1; every process started here is stopped at the end.
"""
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

from benchlib import lt_leech, lt_seed, proc_cpu, proc_hwm_mb, report, start_node

ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
SIZE_MIB = int(ARGS[0]) if ARGS else 1024
BUILD = ARGS[1] if len(ARGS) > 1 else "build"
RUNS = next((int(a.split("=", 1)[1]) for a in sys.argv if a.startswith("--runs=")), 3)
SHOALD = os.path.join(BUILD, "tools/shoald/shoald")
SHOAL = os.path.join(BUILD, "tools/shoal/shoal")


def canonical_torrent(data_path, cid, work):
    """Writes the canonical v2 .torrent of the single-file content at data_path, and a folder
    that seeds it (the file named by its hex pieces root, hard-linked); returns both paths."""
    import libtorrent as lt
    size = os.path.getsize(data_path)
    # The piece length rule of docs/ARCHITECTURE.md: size/1024 rounded up to a power of two,
    # clamped to [64 KiB, 4 MiB].
    piece = 1
    while piece < (size + 1023) // 1024:
        piece *= 2
    piece = max(64 << 10, min(4 << 20, piece))
    tmp = os.path.join(work, "lt-hash")
    os.makedirs(tmp)
    os.link(data_path, os.path.join(tmp, "x"))
    fs = lt.file_storage()
    lt.add_files(fs, os.path.join(tmp, "x"))
    ct = lt.create_torrent(fs, piece, flags=lt.create_torrent.v2_only)
    lt.set_piece_hashes(ct, tmp)
    t = ct.generate()
    shutil.rmtree(tmp)
    entry = t[b"info"][b"file tree"][b"x"]
    root = entry[b""][b"pieces root"].hex().encode()
    # The canonical dict names the file, and the torrent, by the pieces root.
    t[b"info"][b"file tree"] = {root: entry}
    t[b"info"][b"name"] = root
    if hashlib.sha256(lt.bencode(t[b"info"])).hexdigest() != cid:
        sys.exit("bench: libtorrent's canonical torrent has another info-hash than the content ID")
    seed_dir = os.path.join(work, "lt-seed")
    os.makedirs(seed_dir)
    os.link(data_path, os.path.join(seed_dir, root.decode()))
    torrent = os.path.join(work, "canonical.torrent")
    with open(torrent, "wb") as f:
        f.write(lt.bencode(t))
    return torrent, seed_dir


def main():
    work = tempfile.mkdtemp(prefix="shoal-cdn-bench-")
    procs = []
    try:
        data_path = os.path.join(work, "data")
        with open(data_path, "wb") as f:
            for _ in range(SIZE_MIB):
                f.write(os.urandom(1 << 20))
        size = os.path.getsize(data_path)
        seed, seed_api, seed_listen = start_node(SHOALD, os.path.join(work, "seed"))
        procs.append(seed)
        cid = subprocess.check_output([SHOAL, "--api", seed_api, "add", "--by-path",
                                       data_path]).decode().strip()
        torrent, lt_dir = canonical_torrent(data_path, cid, work)
        lt_proc, lt_addr = lt_seed(torrent, lt_dir)
        procs.append(lt_proc)
        print(f"== CDN transfer over loopback: {SIZE_MIB} MiB, content {cid[:16]}…, "
              f"{os.cpu_count()} cores, {RUNS} runs each", flush=True)

        all_cpu = {}  # Shoal -> Shoal run's result -> CPU of seed + leecher + CLI during it

        def cli_cpu():
            r = resource.getrusage(resource.RUSAGE_CHILDREN)
            return r.ru_utime + r.ru_stime

        def shoal_run(i, prefix=()):
            leech, api, _ = start_node(SHOALD, os.path.join(work, f"leech{i}"), prefix=prefix)
            procs.append(leech)
            cpu0, seed0, cli0 = proc_cpu(leech.pid), proc_cpu(seed.pid), cli_cpu()
            t0 = time.monotonic()
            with open(os.devnull, "wb") as null:
                subprocess.check_call([SHOAL, "--api", api, "cat", cid, "--peer", seed_listen],
                                      stdout=null)
            result = (time.monotonic() - t0, proc_cpu(leech.pid) - cpu0, proc_hwm_mb(leech.pid))
            all_cpu[result] = (result[1] + proc_cpu(seed.pid) - seed0 + cli_cpu() - cli0)
            if i == 0:  # the bytes, once (untimed): a local read of what was fetched
                out = os.path.join(work, "out")
                subprocess.check_call([SHOAL, "--api", api, "get", cid, "-o", out])
                if subprocess.call(["cmp", "-s", out, data_path]) != 0:
                    sys.exit("bench: the Shoal leecher's bytes differ")
                os.remove(out)
            leech.terminate()
            leech.wait()
            shutil.rmtree(os.path.join(work, f"leech{i}"), ignore_errors=True)
            return result

        seed_cpu = {}  # run's result -> the seed's CPU seconds during it

        def lt_run(peer, seed_pid):
            cpu0 = proc_cpu(seed_pid)
            r = lt_leech(torrent, os.path.join(work, "lt-out"), peer)
            seed_cpu[r] = proc_cpu(seed_pid) - cpu0
            return r

        # Interleaved, so that a slow spell of the machine does not fall on one contender only.
        # Each run starts with the disk idle: the previous run's gigabyte still being written
        # back would slow whoever syncs (a Shoal fetch syncs its flushes; libtorrent never does).
        def settled(run):
            os.sync()
            time.sleep(1)
            return run()
        # The durable-write floor: a Shoal fetch syncs what it stores (a crash loses no
        # verified chunk); libtorrent leaves its bytes in the page cache.
        def dd_run():
            out = os.path.join(work, "dd-out")
            t0 = time.monotonic()
            subprocess.check_call(["dd", f"if={data_path}", f"of={out}", "bs=1M",
                                   "conv=fdatasync", "status=none"])
            took = time.monotonic() - t0
            os.remove(out)
            return took
        eat = shutil.which("eatmydata")
        ref, shoal, to_lt, dd, nosync = [], [], [], [], []
        for i in range(RUNS):
            ref.append(settled(lambda: lt_run(lt_addr, lt_proc.pid)))
            shoal.append(settled(lambda: shoal_run(i)))
            to_lt.append(settled(lambda: lt_run(seed_listen, seed.pid)))
            dd.append(settled(dd_run))
            if eat:
                nosync.append(settled(lambda: shoal_run(RUNS + i, prefix=(eat,))))
        r_secs, r_cpu, r_rss = report("libtorrent -> libtorrent", ref, size)
        s_secs, s_cpu, s_rss = report("Shoal -> Shoal (cat --peer)", shoal, size)
        l_secs, l_cpu, l_rss = report("Shoal -> libtorrent", to_lt, size)
        r_seed = seed_cpu[sorted(ref)[len(ref) // 2]]
        l_seed = seed_cpu[sorted(to_lt)[len(to_lt) // 2]]
        # A leecher that uses a whole core for the time it takes is bound by its own CPU: no
        # seed, however cheap, makes it faster.
        print(f"   seed CPU: libtorrent {r_seed:.2f} s, Shoal {l_seed:.2f} s; the libtorrent "
              f"leecher's CPU / its time: {r_cpu / r_secs:.2f} and {l_cpu / l_secs:.2f} cores")
        print(f"   Shoal -> Shoal / reference: {s_secs / r_secs:.2f} (goal at most 0.6); "
              f"leecher peak RSS {s_rss:.1f} MB (goal at most 64)")
        print(f"   Shoal seed / libtorrent seed, libtorrent leecher: {l_secs / r_secs:.2f} "
              f"(goal at most 0.9)")
        d_secs = sorted(dd)[len(dd) // 2]
        print(f"   durable-write floor, dd conv=fdatasync of the same bytes: {d_secs:.2f} s "
              f"= {d_secs / r_secs:.2f} of the reference; Shoal -> Shoal / floor: "
              f"{s_secs / d_secs:.2f}", flush=True)
        s_cores = all_cpu[sorted(shoal)[len(shoal) // 2]] / s_secs
        print(f"   Shoal -> Shoal, seed + leecher + CLI CPU / time: {s_cores:.2f} cores")
        n_secs = n_cores = None
        if nosync:
            n_secs, n_cpu, n_rss = report("Shoal -> Shoal, syncs off", nosync, size)
            n_cores = all_cpu[sorted(nosync)[len(nosync) // 2]] / n_secs
            print(f"   syncs off (eatmydata, an experiment): {n_secs / r_secs:.2f} of the "
                  f"reference, seed + leecher + CLI CPU / time: {n_cores:.2f} cores", flush=True)
        else:
            print("   syncs off: skipped, eatmydata is not installed (scripts/setup.sh installs it)")
        if "--json" in sys.argv:
            def entry(secs, cpu, rss):
                return {"seconds": round(secs, 3), "cpu_seconds": round(cpu, 3),
                        "leecher_peak_rss_mb": round(rss, 1)}
            print(json.dumps({
                "bench": "cdn_transfer", "size_mib": SIZE_MIB, "runs": RUNS,
                "libtorrent_to_libtorrent": entry(r_secs, r_cpu, r_rss),
                "shoal_to_shoal_cat": entry(s_secs, s_cpu, s_rss),
                "shoal_to_libtorrent": entry(l_secs, l_cpu, l_rss),
                "shoal_to_shoal_ratio": round(s_secs / r_secs, 3),
                "shoal_seed_ratio": round(l_secs / r_secs, 3),
                "seed_cpu_seconds": {"libtorrent": round(r_seed, 3), "shoal": round(l_seed, 3)},
                "dd_fdatasync_seconds": round(d_secs, 3),
                "dd_fdatasync_ratio": round(d_secs / r_secs, 3),
                "shoal_to_shoal_cores_busy": round(s_cores, 2),
                "syncs_off": None if n_secs is None else {
                    "seconds": round(n_secs, 3), "ratio": round(n_secs / r_secs, 3),
                    "cores_busy": round(n_cores, 2)},
                "goals": {"shoal_to_shoal_ratio": 0.6, "leecher_peak_rss_mb": 64,
                          "shoal_seed_ratio": 0.9}}))
    finally:
        for p in procs:
            if p.poll() is None:
                if p.stdin:
                    p.stdin.close()
                p.terminate()
                p.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
