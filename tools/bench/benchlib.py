"""What the transfer benchmarks share: starting shoald, and reading a process's CPU and peak RSS."""
import os
import subprocess

TICK = os.sysconf("SC_CLK_TCK")


def start_node(shoald, path, extra=()):
    """Starts shoald on loopback with OS-chosen ports; returns (process, api, listen)."""
    p = subprocess.Popen([shoald, "--data-dir", path, "--api", "127.0.0.1:0", "--listen",
                          "127.0.0.1:0", "--dht-routers", "", "--lsd", "off", "--log-level", "warn",
                          *extra],
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


def proc_rss_mb(pid):
    """The process's resident set now, MB."""
    return _status_mb(pid, "VmRSS")


# One libtorrent 2.0.8 session in a child process, so that its RSS and CPU are its own (plus
# Python's, about 20 MB): `seed TORRENT SAVE -` prints {"port"} once seeding and seeds until its
# stdin closes; `leech TORRENT SAVE HOST:PORT` downloads from that peer and prints
# {"seconds", "cpu", "rss_mb"}. TCP only, no DHT/LSD/UPnP: loopback and nothing else.
LT_PEER = r'''
import json, resource, sys, time
import libtorrent as lt
mode, torrent, save, peer = sys.argv[1:5]
ses = lt.session({"listen_interfaces": "127.0.0.1:0", "enable_dht": False, "enable_lsd": False,
                  "enable_upnp": False, "enable_natpmp": False, "enable_incoming_utp": False,
                  "enable_outgoing_utp": False, "allow_multiple_connections_per_ip": True,
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


def lt_seed(torrent, save):
    """Starts a libtorrent seed of `torrent` (data under `save`); returns (process, HOST:PORT).
    Close the process's stdin to stop it."""
    import json
    p = subprocess.Popen(["/usr/bin/python3", "-c", LT_PEER, "seed", torrent, save, "-"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    return p, f"127.0.0.1:{json.loads(p.stdout.readline())['port']}"


def lt_leech(torrent, save, peer):
    """Downloads `torrent` into `save` from `peer` in a fresh libtorrent process, then deletes
    the download; returns (seconds, cpu, rss_mb), as `report` takes them."""
    import json
    import shutil
    out = subprocess.check_output(["/usr/bin/python3", "-c", LT_PEER, "leech", torrent, save,
                                   peer], timeout=900)
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
