"""What the transfer benchmarks share: starting shoald, and reading a process's CPU and peak RSS."""
import os
import subprocess

TICK = os.sysconf("SC_CLK_TCK")


def start_node(shoald, path, extra=()):
    """Starts shoald on loopback with OS-chosen ports; returns (process, api, listen)."""
    p = subprocess.Popen([shoald, "--data-dir", path, "--api", "127.0.0.1:0", "--listen",
                          "127.0.0.1:0", "--dht-routers", "", "--log-level", "warn", *extra],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    fields = dict(kv.split("=", 1) for kv in p.stdout.readline().decode().split()[2:])
    return p, fields["api"], fields["listen"]


def proc_cpu(pid):
    """CPU seconds (user + system) the process has used."""
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / TICK


def proc_hwm_mb(pid):
    """The process's peak resident set, MB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM"):
                return int(line.split()[1]) / 1024
    return 0.0
