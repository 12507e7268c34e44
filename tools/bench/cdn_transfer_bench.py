#!/usr/bin/python3
"""Moves CDN content over loopback and prints time, MB/s, the leecher's peak RSS and CPU.

  /usr/bin/python3 tools/bench/cdn_transfer_bench.py [SIZE_MIB] [BUILD_DIR]   (1024, ./build)

Contenders, in the same run, for the same bytes seeded by one Shoal node:
  - Shoal -> Shoal: `shoal get ID --peer` on a second node (leecher = that shoald)
  - Shoal -> libtorrent 2.0.8: a magnet link with x.pe (leecher = this Python process running
    libtorrent's session, measured the same way)
Talks only to 127.0.0.1; every process started here is stopped at the end.
"""
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

from benchlib import proc_cpu, proc_hwm_mb, start_node

SIZE_MIB = int(sys.argv[1]) if len(sys.argv) > 1 else 1024
BUILD = sys.argv[2] if len(sys.argv) > 2 else "build"
SHOALD = os.path.join(BUILD, "tools/shoald/shoald")
SHOAL = os.path.join(BUILD, "tools/shoal/shoal")








def report(name, seconds, cpu, rss_mb, size):
    print(f"{name:<28} {seconds:7.2f} s {size / seconds / 1e6:8.1f} MB/s   "
          f"leecher peak RSS {rss_mb:7.1f} MB   CPU {cpu:6.2f} s")


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
        print(f"== CDN transfer over loopback: {SIZE_MIB} MiB, content {cid[:16]}…, "
              f"{os.cpu_count()} cores")

        # Shoal -> Shoal
        leech, leech_api, _ = start_node(SHOALD, os.path.join(work, "leech"))
        procs.append(leech)
        cpu0 = proc_cpu(leech.pid)
        out = os.path.join(work, "out")
        t0 = time.monotonic()
        subprocess.check_call([SHOAL, "--api", leech_api, "get", cid, "-o", out, "--peer",
                               seed_listen])
        t1 = time.monotonic()
        report("Shoal -> Shoal (shoal get)", t1 - t0, proc_cpu(leech.pid) - cpu0,
               proc_hwm_mb(leech.pid), size)
        if subprocess.call(["cmp", "-s", out, data_path]) != 0:
            sys.exit("bench: Shoal leecher's bytes differ")
        os.remove(out)

        # Shoal -> libtorrent
        import libtorrent as lt
        ses = lt.session({"listen_interfaces": "127.0.0.1:0", "enable_dht": False,
                          "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
                          "enable_incoming_utp": False, "enable_outgoing_utp": False,
                          "allow_multiple_connections_per_ip": True, "alert_mask": 0})
        params = lt.parse_magnet_uri(f"magnet:?xt=urn:btmh:1220{cid}&x.pe={seed_listen}")
        params.save_path = os.path.join(work, "lt")
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.monotonic()
        h = ses.add_torrent(params)
        deadline = t0 + 600
        while not h.status().is_seeding and time.monotonic() < deadline:
            time.sleep(0.01)
        t1 = time.monotonic()
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        if not h.status().is_seeding:
            sys.exit("bench: libtorrent did not finish")
        report("Shoal -> libtorrent", t1 - t0,
               (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime),
               proc_hwm_mb(os.getpid()), size)
        del ses
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
