"""What the transfer benchmarks share: starting shoald, and reading a process's CPU and peak RSS."""
import os
import subprocess
import threading
import time

TICK = os.sysconf("SC_CLK_TCK")


def start_node(shoald, path, extra=(), prefix=(), listen="127.0.0.1:0"):
    """Starts shoald (under `prefix`, e.g. `ip netns exec NS`) with OS-chosen ports on
    `listen`'s address; returns (process, api, listen)."""
    p = subprocess.Popen([*prefix, shoald, "--data-dir", path, "--api", "127.0.0.1:0",
                          "--listen", listen, "--dht-routers", "", "--lsd", "off",
                          "--log-level", "warn", *extra],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    fields = dict(kv.split("=", 1) for kv in p.stdout.readline().decode().split()[2:])
    return p, fields["api"], fields["listen"]


def proc_cpu(pid):
    """CPU seconds (user + system) the process has used."""
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / TICK


def _status_mb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    return 0.0


def proc_hwm_mb(pid):
    """The process's peak resident set, MB."""
    return _status_mb(pid, "VmHWM")


class PeakSplit:
    """Samples a process's RSS every 5 ms on a thread until stop(); `anon_mb` and `file_mb` are
    its anonymous memory and mapped files (libraries) at the highest sample."""

    def __init__(self, pid):
        self.pid, self.rss, self.anon_mb, self.file_mb = pid, 0, 0.0, 0.0
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop:
            try:
                with open(f"/proc/{self.pid}/status") as f:
                    fields = {l.split(":")[0]: int(l.split()[1]) for l in f
                              if l.startswith(("VmRSS", "RssAnon", "RssFile"))}
            except (OSError, ValueError, IndexError):
                fields = {}
            if fields.get("VmRSS", 0) > self.rss:
                self.rss = fields["VmRSS"]
                self.anon_mb = fields.get("RssAnon", 0) / 1024
                self.file_mb = fields.get("RssFile", 0) / 1024
            time.sleep(0.005)

    def stop(self):
        self._stop = True
        self._thread.join()


def proc_rss_mb(pid):
    """The process's resident set now, MB."""
    return _status_mb(pid, "VmRSS")


# One libtorrent 2.0.8 session in a child process, so that its RSS and CPU are its own (plus
# Python's, about 20 MB): `seed TORRENT SAVE -` prints {"port"} once seeding and seeds until its
# stdin closes; `leech TORRENT SAVE HOST:PORT` downloads from that peer and prints
# {"seconds", "cpu", "rss_mb"}. TCP only (µTP only with transport "utp"), no DHT/LSD/UPnP:
# loopback and nothing else.
LT_PEER = r'''
import json, resource, sys, time
import libtorrent as lt
mode, torrent, save, peer, transport = sys.argv[1:6]
utp = transport == "utp"
ses = lt.session({"listen_interfaces": "127.0.0.1:0", "enable_dht": False, "enable_lsd": False,
                  "enable_upnp": False, "enable_natpmp": False, "enable_incoming_utp": utp,
                  "enable_outgoing_utp": utp, "enable_incoming_tcp": not utp,
                  "enable_outgoing_tcp": not utp, "allow_multiple_connections_per_ip": True,
                  "alert_mask": 0})
h = ses.add_torrent({"ti": lt.torrent_info(torrent), "save_path": save})
if mode == "seed":
    while not h.status().is_seeding:
        time.sleep(0.05)
    print(json.dumps({"port": ses.listen_port()}), flush=True)
    sys.stdin.read()   # until the parent closes it
    sys.exit(0)
host, port = peer.rsplit(":", 1)
t0 = time.monotonic()
h.connect_peer((host, int(port)))
while not h.status().is_seeding:
    if h.status().errc.value() != 0:
        sys.exit("libtorrent: " + h.status().errc.message())
    time.sleep(0.02)
took = time.monotonic() - t0
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": took, "cpu": ru.ru_utime + ru.ru_stime,
                  "rss_mb": ru.ru_maxrss / 1024}), flush=True)
'''


def lt_seed(torrent, save, transport="tcp"):
    """Starts a libtorrent seed of `torrent` (data under `save`) speaking `transport` ("tcp"
    or "utp") only; returns (process, HOST:PORT). Close the process's stdin to stop it."""
    import json
    p = subprocess.Popen(["/usr/bin/python3", "-c", LT_PEER, "seed", torrent, save, "-",
                          transport], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    return p, f"127.0.0.1:{json.loads(p.stdout.readline())['port']}"


def lt_leech(torrent, save, peer, transport="tcp"):
    """Downloads `torrent` into `save` from `peer` in a fresh libtorrent process speaking
    `transport` only, then deletes the download; returns (seconds, cpu, rss_mb), as `report`
    takes them."""
    import json
    import shutil
    out = subprocess.check_output(["/usr/bin/python3", "-c", LT_PEER, "leech", torrent, save,
                                   peer, transport], timeout=900)
    shutil.rmtree(save, ignore_errors=True)
    r = json.loads(out)
    return (r["seconds"], r["cpu"], r["rss_mb"])


def report(name, runs, size):
    """runs: [(seconds, cpu, rss_mb)]; prints the median run by time and returns it."""
    runs = sorted(runs)
    seconds, cpu, rss_mb = runs[len(runs) // 2]
    spread = f"  (runs {runs[0][0]:.2f}-{runs[-1][0]:.2f} s)" if len(runs) > 1 else ""
    print(f"{name:<30} {seconds:7.2f} s {size / seconds / 1e6:8.1f} MB/s   "
          f"leecher peak RSS {rss_mb:7.1f} MB   CPU {cpu:6.2f} s{spread}", flush=True)
    return seconds, cpu, rss_mb


def make_v1_torrent(work, size_mib):
    """Two files of random bytes under WORK/src/bench (size_mib in all) and a v1 torrent of
    them with libtorrent's piece size; returns (torrent path, source dir, torrent_info)."""
    import libtorrent as lt
    src = os.path.join(work, "src")
    os.makedirs(os.path.join(src, "bench"))
    half = size_mib // 2
    for i, mib in enumerate([half, size_mib - half]):
        with open(os.path.join(src, "bench", f"part{i}.bin"), "wb") as f:
            for _ in range(mib):
                f.write(os.urandom(1 << 20))
    fs = lt.file_storage()
    lt.add_files(fs, os.path.join(src, "bench"))
    ct = lt.create_torrent(fs, 0, flags=lt.create_torrent.v1_only)
    lt.set_piece_hashes(ct, src)
    torrent = os.path.join(work, "bench.torrent")
    with open(torrent, "wb") as f:
        f.write(lt.bencode(ct.generate()))
    return torrent, src, lt.torrent_info(torrent)


def same_files(a, b):
    """Raises unless the torrent's files under a and b are identical (not timed)."""
    import filecmp
    for name in sorted(os.listdir(os.path.join(a, "bench"))):
        if not filecmp.cmp(os.path.join(a, "bench", name), os.path.join(b, "bench", name),
                           shallow=False):
            raise SystemExit(f"bench: {name} differs after the download")


def shoal_leech(shoald, shoal, work, name, torrent, src, seed_addr, procs, extra=()):
    """Downloads `torrent` from `seed_addr` with a fresh shoald (args `extra`), checks the
    files against `src`, removes everything; returns (seconds, cpu, rss_mb) of that node."""
    import shutil
    import time
    node, api, _ = start_node(shoald, os.path.join(work, name), extra)
    procs.append(node)
    out = os.path.join(work, "out-" + name)
    cpu0 = proc_cpu(node.pid)
    t0 = time.monotonic()
    tid = subprocess.check_output([shoal, "--api", api, "torrent", "add", torrent,
                                   "--save-path", out, "--peer", seed_addr]).decode().strip()
    subprocess.check_call([shoal, "--api", api, "torrent", "wait", tid, "--timeout", "900"])
    t1 = time.monotonic()
    result = (t1 - t0, proc_cpu(node.pid) - cpu0, proc_hwm_mb(node.pid))
    same_files(src, out)
    node.terminate()
    node.wait()
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(os.path.join(work, name), ignore_errors=True)
    return result
