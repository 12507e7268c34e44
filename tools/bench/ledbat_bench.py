#!/usr/bin/python3
"""LEDBAT on a real link: does Shoal's µTP upload yield to TCP?

Two network namespaces joined by a bridge (tests/cluster/netns.py); the bridge's port toward the
receiver is shaped with `tc ... tbf` (default 8 Mbit/s, 300 ms of queue, as an ADSL/cable
uplink). A Shoal
seeder in the first namespace uploads a torrent over µTP to a Shoal leecher in the second
(`--tcp off`); after 10 s a TCP flow (Python sockets) starts over the same link for 25 s.
Prints µTP's rate alone, then the TCP flow's and µTP's rates while both run (measured over the
last 20 s), and the TCP flow's share of the link. Goal: at least 0.7. Then the same with a
libtorrent µTP seeder and leecher, in the same run, for reference.

  /usr/bin/python3 tools/bench/ledbat_bench.py [BUILD_DIR] [--rate-mbit=8] [--tcp-cc=cubic]
                                               [--json]

Needs root (network namespaces and tc). Talks only inside the namespaces it creates, which it
deletes at the end with every process it started.
"""
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

from benchlib import make_v1_torrent, start_node

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent.parent / "tests" /
                       "cluster"))
import netns  # noqa: E402

ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
BUILD = ARGS[0] if ARGS else "build"
RATE_MBIT = next((float(a.split("=", 1)[1]) for a in sys.argv if a.startswith("--rate-mbit=")),
                 8.0)
JSON = "--json" in sys.argv
# The TCP flow's congestion control: CUBIC, Linux's usual default and, like Reno, loss-based:
# what LEDBAT is designed to yield to. (BBR, the default on some hosts, this one included,
# paces at the bandwidth it measures at its minimum RTT: beside any flow that keeps a standing
# queue, µTP's 100 ms target included, it takes the queue for the path and starves itself.)
CC = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--tcp-cc=")), "cubic")
SHOALD = os.path.join(BUILD, "tools/shoald/shoald")
SHOAL = os.path.join(BUILD, "tools/shoal/shoal")
ALONE_S, TCP_S, SKIP_S = 10, 25, 5

# A TCP flow: `recv ADDR` listens on ADDR:5001 and prints the bytes received so far every
# 0.5 s; `send ADDR SECONDS CC` sends as fast as it can for SECONDS with congestion control CC.
TCP_FLOW = r"""
import socket, sys, time
mode, addr = sys.argv[1:3]
if mode == "recv":
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((addr, 5001))
    srv.listen(1)
    print("ready", flush=True)
    c, _ = srv.accept()
    c.settimeout(0.5)
    total, last = 0, time.monotonic()
    while True:
        try:
            b = c.recv(1 << 16)
            if not b:
                break
            total += len(b)
        except socket.timeout:
            pass
        if time.monotonic() - last >= 0.5:
            last = time.monotonic()
            print(f"{last:.3f} {total}", flush=True)
    print(f"{time.monotonic():.3f} {total}", flush=True)
else:
    s = socket.socket()
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, sys.argv[4].encode())
    s.connect((addr, 5001))
    end = time.monotonic() + float(sys.argv[3])
    buf = b"x" * (1 << 16)
    while time.monotonic() < end:
        s.sendall(buf)
    s.close()
"""

# A libtorrent peer speaking µTP only: `seed ADDR TORRENT SAVE` prints its port once seeding
# and seeds until killed; `leech ADDR TORRENT SAVE PEER` prints the bytes it has every 0.5 s.
LT_UTP = r"""
import sys, time
import libtorrent as lt
mode, addr, torrent, save = sys.argv[1:5]
ses = lt.session({"listen_interfaces": addr + ":0", "enable_dht": False, "enable_lsd": False,
                  "enable_upnp": False, "enable_natpmp": False, "enable_incoming_tcp": False,
                  "enable_outgoing_tcp": False, "alert_mask": 0})
h = ses.add_torrent({"ti": lt.torrent_info(torrent), "save_path": save})
if mode == "seed":
    while not h.status().is_seeding:
        time.sleep(0.05)
    print(ses.listen_port(), flush=True)
    while True:
        time.sleep(1)
host, port = sys.argv[5].rsplit(":", 1)
h.connect_peer((host, int(port)))
while True:
    print(f"{time.monotonic():.3f} {h.status().total_wanted_done}", flush=True)
    time.sleep(0.5)
"""


def rate(samples, t0, t1):
    """Bytes/s between t0 and t1 from [(time, cumulative bytes)]."""
    inside = [(t, b) for t, b in samples if t0 <= t <= t1]
    if len(inside) < 2:
        return 0.0
    return (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0])


def read_samples(proc, until, samples):
    """Reads "time bytes" lines from proc until `until` (monotonic)."""
    os.set_blocking(proc.stdout.fileno(), False)
    while time.monotonic() < until:
        line = proc.stdout.readline()
        if not line:
            time.sleep(0.1)
            continue
        t, b = line.split()
        samples.append((float(t), int(b)))


def run(lan, h1, h2, start_upload, procs):
    """start_upload() starts a µTP upload h1 -> h2 and returns a process that prints
    "time bytes" lines; runs the schedule and returns the rates (bytes/s)."""
    utp = start_upload()
    procs.append(utp)
    samples = []
    t_start = time.monotonic()
    read_samples(utp, t_start + ALONE_S, samples)
    recv = subprocess.Popen(lan.exec_args(h2, ["/usr/bin/python3", "-c", TCP_FLOW, "recv",
                                               h2.address]), stdout=subprocess.PIPE, text=True)
    procs.append(recv)
    recv.stdout.readline()
    send = subprocess.Popen(lan.exec_args(h1, ["/usr/bin/python3", "-c", TCP_FLOW, "send",
                                               h2.address, str(TCP_S), CC]))
    procs.append(send)
    t_tcp = time.monotonic()
    read_samples(utp, t_tcp + TCP_S, samples)
    send.wait(timeout=30)
    tcp_samples = []
    for line in recv.communicate(timeout=30)[0].split("\n"):
        if line:
            t, b = line.split()
            tcp_samples.append((float(t), int(b)))
    utp.kill()
    utp.wait()
    return {"utp_alone": rate(samples, t_start + 2, t_start + ALONE_S),
            "utp_shared": rate(samples, t_tcp + SKIP_S, t_tcp + TCP_S),
            "tcp_shared": rate(tcp_samples, t_tcp + SKIP_S, t_tcp + TCP_S)}


def main():
    try:
        lan = netns.Lan(prefix="shoalbl").create()
    except netns.NetnsUnavailable as e:
        sys.exit(f"ledbat_bench: no network namespaces here: {e}")
    work = tempfile.mkdtemp(prefix="shoal-ledbat-bench-")
    procs = []
    link = RATE_MBIT * 1e6 / 8
    try:
        h1, h2 = lan.add_host(1), lan.add_host(2)
        # The bottleneck is the bridge's port toward the receiver, as a modem is a box of its
        # own: in the sender's own qdisc, Linux's TCP Small Queues would keep TCP to about two
        # packets queued there (it holds the rest in the socket), whatever µTP did. tbf drops a
        # packet larger than its burst, and a veth hands it packets of up to 64 KB (GSO): the
        # burst is larger than that.
        subprocess.run([netns.IP, "netns", "exec", lan.switch, "tc", "qdisc", "add", "dev",
                        h2.port, "root", "tbf", "rate", f"{RATE_MBIT}mbit", "burst", "80kb",
                        "latency", "300ms"], check=True)
        # Enough to outlast the run at the link's rate.
        size_mib = int(link * (ALONE_S + TCP_S + 10) / (1 << 20)) + 8
        torrent, src, _ = make_v1_torrent(work, size_mib)

        def shoal_upload():
            seed, seed_api, seed_listen = start_node(
                SHOALD, os.path.join(work, "seed"), prefix=lan.exec_args(h1, []),
                listen=f"{h1.address}:0")
            procs.append(seed)
            cli1 = lan.exec_args(h1, [SHOAL, "--api", seed_api])
            tid = subprocess.check_output([*cli1, "torrent", "add", torrent, "--save-path",
                                           src]).decode().strip()
            subprocess.check_call([*cli1, "torrent", "wait", tid, "--timeout", "120"])
            leech, leech_api, _ = start_node(
                SHOALD, os.path.join(work, "leech"), ["--tcp", "off"],
                prefix=lan.exec_args(h2, []), listen=f"{h2.address}:0")
            procs.append(leech)
            cli2 = lan.exec_args(h2, [SHOAL, "--api", leech_api])
            tid = subprocess.check_output([*cli2, "torrent", "add", torrent, "--save-path",
                                           os.path.join(work, "out"), "--peer",
                                           seed_listen]).decode().strip()
            # A poller in the leecher's namespace, printing "time bytes" like the others.
            poll = (f"import json, subprocess, sys, time\n"
                    f"while True:\n"
                    f"    s = json.loads(subprocess.check_output({cli2[4:]!r} + "
                    f"['torrent', 'status', {tid!r}, '--json']))\n"
                    f"    print(f'{{time.monotonic():.3f}} {{s[\"downloaded\"]}}', flush=True)\n"
                    f"    time.sleep(0.5)\n")
            return subprocess.Popen(lan.exec_args(h2, ["/usr/bin/python3", "-c", poll]),
                                    stdout=subprocess.PIPE, text=True)

        def lt_upload():
            seed = subprocess.Popen(lan.exec_args(h1, ["/usr/bin/python3", "-c", LT_UTP,
                                                       "seed", h1.address, torrent, src]),
                                    stdout=subprocess.PIPE, text=True)
            procs.append(seed)
            port = seed.stdout.readline().strip()
            return subprocess.Popen(lan.exec_args(h2, ["/usr/bin/python3", "-c", LT_UTP,
                                                       "leech", h2.address, torrent,
                                                       os.path.join(work, "out-lt"),
                                                       f"{h1.address}:{port}"]),
                                    stdout=subprocess.PIPE, text=True)

        shoal = run(lan, h1, h2, shoal_upload, procs)
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        procs.clear()
        lt = run(lan, h1, h2, lt_upload, procs)
        result = {"link_bytes_per_s": link, "tcp_congestion_control": CC, "shoal": shoal, "libtorrent": lt,
                  "tcp_share_with_shoal": shoal["tcp_shared"] / link,
                  "tcp_share_with_libtorrent": lt["tcp_shared"] / link, "goal": 0.7}
        if JSON:
            print(json.dumps(result))
            return
        print(f"== LEDBAT: a {RATE_MBIT:g} Mbit/s link (tbf, 300 ms of queue), µTP upload, "
              f"then a TCP ({CC}) flow for {TCP_S} s")
        for name, r in (("Shoal", shoal), ("libtorrent", lt)):
            print(f"{name + ' µTP':<16} alone {r['utp_alone'] / 1e3:7.0f} KB/s   shared: "
                  f"µTP {r['utp_shared'] / 1e3:6.0f} KB/s, TCP {r['tcp_shared'] / 1e3:6.0f} KB/s "
                  f"({r['tcp_shared'] / link:.2f} of the link)")
        print(f"   goal: TCP keeps at least 0.7 of the link beside Shoal's µTP")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        lan.destroy()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
