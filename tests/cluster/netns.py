"""A private LAN of network namespaces for cluster tests.

Layout (nothing in the root namespace changes):

    switch namespace  <prefix>-<tag>-sw   holds bridge "br0" and one port "pN" per host
    host namespaces   <prefix>-<tag>-hNN  each with "lo" up and "eth0" = 10.A.B.N/24

Each host's eth0 is the far end of a veth pair whose near end ("pN") is a port of the bridge in
the switch namespace, so hosts reach each other (and only each other) over 10.A.B.0/24; they have
no route anywhere else. <tag> is random per run, so concurrent runs never share a name; the
/24 is picked at random from 10.200.0.0-10.250.255.0, avoiding any network the root namespace
already has an address or a route in. Interface names are all short (at most 15 characters).

Processes run inside a host with `ip netns exec NS ...` (see Lan.exec_args). Lan.destroy()
deletes every namespace this Lan created (the bridge and the veth pairs go with them); it is
idempotent and safe after a partial create.
"""
import ipaddress
import os
import random
import secrets
import shutil
import subprocess

IP = shutil.which("ip") or next((p for p in ("/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip")
                                  if os.path.exists(p)), None)


class NetnsUnavailable(Exception):
    """This machine (or this user) cannot create network namespaces, bridges or veth pairs."""


def _ip(*args, timeout=15):
    """Runs `ip args...`; returns (returncode, combined output)."""
    res = subprocess.run([IP, *args], capture_output=True, text=True, timeout=timeout)
    return res.returncode, (res.stdout + res.stderr).strip()


def _ip_ok(*args):
    rc, out = _ip(*args)
    if rc != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed ({rc}): {out}")
    return out


def _root_networks():
    """The IPv4 networks the root namespace has addresses or routes in."""
    nets = []
    for cmd in (("-4", "-o", "addr", "show"), ("-4", "route", "show", "table", "all")):
        rc, out = _ip(*cmd)
        if rc != 0:
            continue
        for word in out.split():
            if "/" in word or word.count(".") == 3:
                try:
                    nets.append(ipaddress.ip_network(word, strict=False))
                except ValueError:
                    pass
    return nets


def pick_subnet(rng=random.SystemRandom()):
    """A random 10.A.B.0/24 with A in 200..250 that overlaps nothing the root namespace uses."""
    taken = _root_networks()
    for _ in range(100):
        net = ipaddress.ip_network(f"10.{rng.randint(200, 250)}.{rng.randint(0, 255)}.0/24")
        if not any(net.overlaps(t) for t in taken if t.prefixlen > 0):
            return net
    raise RuntimeError("found no free /24 in 10.200.0.0-10.250.255.0")


class Host:
    def __init__(self, lan, index):
        self.index = index
        self.ns = f"{lan.prefix}-{lan.tag}-h{index:02d}"
        self.port = f"p{index}"  # the bridge port in the switch namespace
        self.address = str(lan.subnet.network_address + index)


class Lan:
    """The switch namespace with its bridge, and the hosts added with add_host()."""

    def __init__(self, prefix="shoalct"):
        if IP is None:
            raise NetnsUnavailable("the `ip` tool (iproute2) is not installed")
        self.prefix = prefix
        self.tag = secrets.token_hex(3)
        self.subnet = pick_subnet()
        self.switch = f"{prefix}-{self.tag}-sw"
        self.hosts = {}
        self._namespaces = []  # created by us, in creation order

    def _add_ns(self, name):
        rc, out = _ip("netns", "add", name)
        if rc != 0:
            return out
        self._namespaces.append(name)
        return None

    def create(self):
        """Creates the switch namespace and its bridge; NetnsUnavailable if that is not possible
        here (no root, no CAP_SYS_ADMIN/CAP_NET_ADMIN, no bridge support)."""
        err = self._add_ns(self.switch)
        if err is not None:
            raise NetnsUnavailable(f"`ip netns add` failed: {err}")
        for args in (("link", "set", "lo", "up"),
                     ("link", "add", "br0", "type", "bridge", "forward_delay", "0",
                      "stp_state", "0"),
                     ("link", "set", "br0", "up")):
            rc, out = _ip("-n", self.switch, *args)
            if rc != 0:
                self.destroy()
                raise NetnsUnavailable(f"`ip -n NS {' '.join(args)}` failed: {out}")
        return self

    def add_host(self, index):
        """A namespace with lo up and eth0 = <subnet>.index/24, joined to the bridge."""
        if not 1 <= index <= 254 or index in self.hosts:
            raise ValueError(f"bad host index {index}")
        h = Host(self, index)
        err = self._add_ns(h.ns)
        if err is not None:
            raise RuntimeError(f"ip netns add {h.ns} failed: {err}")
        _ip_ok("-n", h.ns, "link", "set", "lo", "up")
        # Created in the switch namespace with the peer end placed straight into the host's, so
        # no interface ever appears in the root namespace.
        _ip_ok("-n", self.switch, "link", "add", h.port, "type", "veth", "peer", "name", "eth0",
               "netns", h.ns)
        _ip_ok("-n", self.switch, "link", "set", h.port, "master", "br0")
        _ip_ok("-n", self.switch, "link", "set", h.port, "up")
        _ip_ok("-n", h.ns, "addr", "add", f"{h.address}/{self.subnet.prefixlen}", "dev", "eth0")
        _ip_ok("-n", h.ns, "link", "set", "eth0", "up")
        self.hosts[index] = h
        return h

    def exec_args(self, host, argv):
        """The command line that runs argv inside `host`'s namespace."""
        return [IP, "netns", "exec", host.ns, *argv]

    def destroy(self):
        """Deletes every namespace we created (hosts first, then the switch). Kill the processes
        inside first: a namespace whose processes live on outlasts its name."""
        errors = []
        for name in reversed(self._namespaces):
            rc, out = _ip("netns", "del", name)
            if rc != 0 and "No such file" not in out:
                errors.append(f"{name}: {out}")
        self._namespaces.clear()
        self.hosts.clear()
        return errors
