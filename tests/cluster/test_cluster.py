"""A ten-host Shoal cluster on one machine, each shoald in its own network namespace.

Run as root with Debian's interpreter:

    SHOALD=build/tools/shoald/shoald SHOAL=build/tools/shoal/shoal \\
        /usr/bin/python3 -m pytest -q tests/cluster -s

(ctest runs it as `cluster_netns`.) Skipped, with the reason, where namespaces cannot be created.
SHOAL_CLUSTER_KEEP=1 keeps the work directory (node logs, data dirs, fetched copies).

The network (see netns.py): a "switch" namespace holding a bridge, and one namespace per host
joined to it by a veth pair, on a random private 10.A.B.0/24 (A in 200..250). Host N is
10.A.B.N; its shoald listens for peers on 10.A.B.N:6881, serves its API on 10.A.B.N:7080 (and
metrics on 10.A.B.N:9464 when shoald has --metrics). The root namespace is untouched and cannot
reach the hosts, so the test drives each node from inside its namespace:
`ip netns exec NS shoal --api 10.A.B.N:7080 ...`, and scrapes metrics the same way. Nothing talks
to any address outside the namespaces this test creates: every shoald runs with
--dht-routers '' and bootstraps from the others by address.

The scenario (one module-scoped cluster; the tests below run in order and share it):
  1. nodes 1..10 start (2 from 1; 3..10 from 1 and 2), all with one cluster key when shoald
     has --cluster-key-file, plus an "intruder" (host 12) with another key, bootstrapped from
     nodes 1..3; node 1 adds 64 MiB; nodes 2..10 fetch it by ID at once (no --peer), 3..10
     behind a 4 MiB/s download limit, 2 without; once node 2 holds every piece and a limited
     fetcher a quarter of them, node 1 (the only seed) and node 10 are killed (SIGKILL); nodes
     3..9 must still finish, from node 2 and each other; every copy is checked with SHA-256;
  2. an eleventh node (bootstrapped from nodes 3 and 4) fetches it from the rest; the
     survivors are all listed as providers;
  3. (--cluster-key-file) the intruder finds no cluster DHT node, no provider, cannot fetch, and
     is in nobody's provider list;
  4. (--metrics) /healthz, /readyz, fetch and byte counters, content counts; promtool (Debian's
     `prometheus` package), if installed, accepts a scrape.
"""
import concurrent.futures
import hashlib
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netns  # noqa: E402

BIN_DIR = pathlib.Path(os.environ.get("SHOAL_BIN_DIR", ""))
SHOALD = os.path.abspath(os.environ.get("SHOALD", str(BIN_DIR / "shoald")))
SHOAL = os.path.abspath(os.environ.get("SHOAL", str(BIN_DIR / "shoal")))

SIZE = 64 * 1024 * 1024
API_PORT, LISTEN_PORT, METRICS_PORT = 7080, 6881, 9464
FIRST, KILLED_FETCHER, ELEVENTH, INTRUDER = 1, 10, 11, 12
START_TIMEOUT = 30  # seconds for shoald to print its ready line
FETCH_BOUND = 180  # seconds for the nine fetches, kill included
MIDWAY_FRACTION = 0.25
# Fetchers 3..10 get this node-wide download limit (`shoal torrent limit --down`), as a downlink
# would; node 2 has none. Unlimited, the whole fan-out takes about 3 s on 2 cores and "mid-way"
# is a blur; at 4 MiB/s a fetch takes about 16 s. Node 2 holds every piece within a second or
# two, so node 1, the only seed, can then die while the others are at 25% without taking any
# piece with it. (With every fetcher limited alike, rarest-first makes them all hold the same
# pieces as they go, so the pieces held anywhere but on node 1 never run ahead of the fetchers'
# own progress: killing node 1 before they finish loses pieces -- seen here: eight survivors
# stuck at the same 595 of 1024 pieces.)
DOWNLINK = 4 * 1024 * 1024
FAST = 2  # the fetcher without a download limit
LOOKUP_TIMEOUT = "30"  # providers --timeout: a dead node still in the tables costs ~6 s (3 x 2 s)
API_INSECURE_FLAG = None  # "--api-insecure" if this shoald has it (see the cluster fixture)

# Proxy settings would send gRPC (which honours them) or HTTP elsewhere: drop them.
_PROXY_VARS = {"http_proxy", "https_proxy", "all_proxy", "no_proxy", "grpc_proxy"}
ENV = {k: v for k, v in os.environ.items()
       if k.lower() not in _PROXY_VARS and k not in ("SHOAL_API", "SHOAL_DHT_ROUTERS")}


def log(msg):
    print(f"[cluster {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def shoald_help():
    res = subprocess.run([SHOALD, "--help"], capture_output=True, text=True, timeout=15, env=ENV)
    return res.stdout + res.stderr


# ---------------------------------------------------------------------------------------------
# Prometheus text format, parsed by hand.

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?\s*$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


def parse_metrics(text):
    """{(name, frozenset of (label, value))): float} for every sample line."""
    samples = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        assert m, f"not a Prometheus sample line: {line!r}"
        name, labels_text, value = m.groups()
        labels = {}
        if labels_text:
            pos = 0
            while pos < len(labels_text):
                lm = _LABEL.match(labels_text, pos)
                assert lm and lm.end() > pos, f"bad labels in {line!r}"
                labels[lm.group(1)] = re.sub(r"\\(.)", lambda e: {"n": "\n"}.get(e.group(1),
                                                                              e.group(1)),
                                             lm.group(2))
                pos = lm.end()
        samples[(name, frozenset(labels.items()))] = float(value)
    return samples


def metric(samples, name, **labels):
    """The sum of `name`'s samples whose labels include `labels`; None if there is none."""
    want = set(labels.items())
    vals = [v for (n, ls), v in samples.items() if n == name and want <= ls]
    return sum(vals) if vals else None


# ---------------------------------------------------------------------------------------------
# Nodes in namespaces.

_HTTP_GET = """
import json, sys, urllib.error, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
try:
    r = opener.open(sys.argv[1], timeout=5)
    status, body = r.status, r.read()
except urllib.error.HTTPError as e:
    status, body = e.code, e.read()
sys.stdout.write(json.dumps({"status": status, "body": body.decode("utf-8", "replace")}))
"""


class NsNode:
    """A shoald in its own namespace on the test LAN."""

    def __init__(self, lan, host, work, name, extra_args, metrics):
        self.lan, self.host, self.name = lan, host, name
        self.addr = host.address
        self.api = f"{self.addr}:{API_PORT}"
        self.listen = f"{self.addr}:{LISTEN_PORT}"
        self.metrics = f"{self.addr}:{METRICS_PORT}" if metrics else None
        self.data_dir = work / name
        self.stdout_path = work / f"{name}.stdout"
        self.stderr_path = work / f"{name}.stderr"
        self.extra_args = list(extra_args)
        self.proc = None
        self.ready = None  # fields of the ready line
        self._files = []

    def start(self):
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [SHOALD, "--data-dir", str(self.data_dir), "--api", self.api,
                "--listen", self.listen, "--dht-routers", ""]
        if self.metrics:
            args += ["--metrics", self.metrics]
        if API_INSECURE_FLAG:
            # The API listens on the namespace's address, reachable only from inside this
            # test's private LAN; shoald refuses a non-loopback API without tokens otherwise.
            args += [API_INSECURE_FLAG]
        args += self.extra_args
        out, err = open(self.stdout_path, "wb"), open(self.stderr_path, "wb")
        self._files = [out, err]
        # `ip netns exec` execs shoald in place: self.proc.pid is shoald's own pid.
        self.proc = subprocess.Popen(self.lan.exec_args(self.host, args), stdout=out,
                                     stderr=err, stdin=subprocess.DEVNULL, env=ENV)
        return self

    def wait_ready(self, deadline):
        while time.monotonic() < deadline:
            text = self.stdout_path.read_text(errors="replace")
            line = next((ln for ln in text.splitlines() if ln.startswith("shoald ready")), None)
            if line:
                self.ready = dict(kv.split("=", 1) for kv in line.split()[2:] if "=" in kv)
                assert self.ready.get("api") == self.api, line
                assert self.ready.get("listen") == self.listen, line
                if self.metrics:
                    assert self.ready.get("metrics") == self.metrics, \
                        f"ready line without metrics={self.metrics}: {line}"
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"{self.name} did not start (exit {self.proc.poll()}):\n"
                             f"{self.tail()}")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill9(self):
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
        if self.proc is not None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        for f in self._files:
            f.close()
        self._files = []

    def stop(self):
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self.kill9()

    def tail(self, lines=25):
        try:
            text = self.stderr_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            text = []
        return f"--- {self.name} stderr (last {lines} lines) ---\n" + "\n".join(text[-lines:])

    # The CLI, run inside this node's namespace.
    def cli_args(self, *args):
        return self.lan.exec_args(self.host, [SHOAL, "--api", self.api, *args])

    def cli(self, *args, check=True, timeout=60, stdout=subprocess.PIPE):
        res = subprocess.run(self.cli_args(*args), stdout=stdout, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL, timeout=timeout, env=ENV)
        if check and res.returncode != 0:
            raise AssertionError(f"{self.name}: shoal {' '.join(args)} failed "
                                 f"({res.returncode}): {res.stderr.decode(errors='replace')}")
        return res

    def cli_json(self, *args, timeout=60):
        return json.loads(self.cli(*args, "--json", timeout=timeout).stdout)

    def pieces_local(self, cid):
        res = self.cli("stat", cid, "--json", check=False, timeout=10)
        if res.returncode != 0:
            return 0  # no metadata yet: the content is not known here
        return json.loads(res.stdout)["pieces_local"]

    def info(self):
        return self.cli_json("node", "info")

    def http_get(self, path):
        """(status, body) of http://<metrics address><path>, fetched inside the namespace."""
        res = subprocess.run(self.lan.exec_args(self.host, [sys.executable, "-c", _HTTP_GET,
                                                            f"http://{self.metrics}{path}"]),
                             capture_output=True, text=True, timeout=20, env=ENV)
        assert res.returncode == 0, f"{self.name}: GET {path} failed: {res.stderr}"
        r = json.loads(res.stdout)
        return r["status"], r["body"]

    def scrape(self):
        status, body = self.http_get("/metrics")
        assert status == 200, f"{self.name}: /metrics answered {status}"
        return body


def wait_until(what, pred, timeout, interval=0.25):
    """Polls pred() until it returns a true value (returned), at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    for _ in range(int(timeout / interval) + 2):
        last = pred()
        if last:
            return last
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def in_parallel(*fns):
    """Runs the functions on threads (they mostly wait on subprocesses); returns their results
    in order, raising the first exception."""
    with concurrent.futures.ThreadPoolExecutor(len(fns)) as pool:
        return [f.result() for f in [pool.submit(fn) for fn in fns]]


def timed(fn):
    """fn wrapped to return (its result, seconds it took)."""
    def run():
        t = time.monotonic()
        r = fn()
        return r, time.monotonic() - t
    return run


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------
# The cluster.

class Cluster:
    def __init__(self, lan, work, features):
        self.lan, self.work = lan, work
        self.has_key, self.has_metrics = features
        self.nodes = {}  # host index -> NsNode
        self.cli_procs = []  # background CLI processes (fetches)
        self.key_file = work / "cluster.key"
        self.intruder_key_file = work / "intruder.key"
        self.state = {}  # what the steps found, for the later steps

    def node(self, index, bootstrap=(), extra_args=(), key_file=None, name=None):
        host = self.lan.add_host(index)
        args = [a for b in bootstrap for a in ("--bootstrap", self.nodes[b].listen)]
        if self.has_key:
            args += ["--cluster-key-file", str(key_file or self.key_file)]
        n = NsNode(self.lan, host, self.work, name or f"n{index:02d}", args + list(extra_args),
                   self.has_metrics)
        self.nodes[index] = n
        return n

    def good(self, indices):
        return [self.nodes[i] for i in indices]

    def teardown(self):
        for p in self.cli_procs:
            if p.poll() is None:
                p.kill()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        for n in self.nodes.values():  # SIGTERM to all, then wait for each (SIGKILL at 10 s)
            if n.alive():
                n.proc.send_signal(signal.SIGTERM)
        for n in self.nodes.values():
            n.stop()
        return self.lan.destroy()


@pytest.fixture(scope="module")
def cluster():
    if not sys.platform.startswith("linux"):
        pytest.skip("network namespaces need Linux")
    for path in (SHOALD, SHOAL):
        if not os.access(path, os.X_OK):
            pytest.fail(f"no executable at {path}: set SHOALD and SHOAL (or SHOAL_BIN_DIR)")
    global API_INSECURE_FLAG
    help_text = shoald_help()
    if "--api-insecure" in help_text:
        API_INSECURE_FLAG = "--api-insecure"
    features = ("--cluster-key-file" in help_text,
                re.search(r"--metrics\b", help_text) is not None)
    try:
        lan = netns.Lan().create()
    except netns.NetnsUnavailable as e:
        pytest.skip(f"cannot create network namespaces here ({e}); run as root")
    work = pathlib.Path(tempfile.mkdtemp(prefix="shoal-cluster-"))
    c = Cluster(lan, work, features)

    def on_sigterm(signum, frame):  # clean up as on Ctrl-C: kill the nodes, delete the LAN
        raise KeyboardInterrupt("SIGTERM")
    old_sigterm = signal.signal(signal.SIGTERM, on_sigterm)
    log(f"LAN {lan.subnet} (namespaces {lan.prefix}-{lan.tag}-*), work dir {work}, "
        f"cluster key: {'yes' if c.has_key else 'NO (shoald lacks --cluster-key-file)'}, "
        f"metrics: {'yes' if c.has_metrics else 'NO (shoald lacks --metrics)'}")
    try:
        c.key_file.write_text(os.urandom(32).hex() + "\n")
        c.intruder_key_file.write_text(os.urandom(32).hex() + "\n")
        os.chmod(c.key_file, 0o600)
        os.chmod(c.intruder_key_file, 0o600)
        t0 = time.monotonic()
        first = c.node(FIRST)
        c.node(2, bootstrap=[FIRST])
        for i in range(3, 11):
            c.node(i, bootstrap=[FIRST, 2])
        if c.has_key:
            c.node(INTRUDER, bootstrap=[FIRST, 2, 3], key_file=c.intruder_key_file,
                   extra_args=["--fetch-timeout", "5"], name="intruder")
        for n in c.nodes.values():
            n.start()
        deadline = time.monotonic() + START_TIMEOUT
        for n in c.nodes.values():
            n.wait_ready(deadline)
        log(f"{len(c.nodes)} shoald ready in {time.monotonic() - t0:.1f} s")
        # The cluster DHT settles: everyone knows a few others (node 1 learns them as they
        # bootstrap from it).
        good = c.good(range(1, 11))
        sizes = wait_until("every node's cluster DHT to know 3 others",
                           lambda: (lambda s: s if min(s) >= 3 else None)(
                               [n.info()["dht_nodes_cluster"] for n in good]), timeout=30)
        log(f"cluster DHT routing table sizes {sizes} after {time.monotonic() - t0:.1f} s")
        assert first.alive()
        yield c
    finally:
        errors = c.teardown()
        signal.signal(signal.SIGTERM, old_sigterm)
        if os.environ.get("SHOAL_CLUSTER_KEEP"):
            log(f"kept {work} (SHOAL_CLUSTER_KEEP)")
        else:
            shutil.rmtree(work, ignore_errors=True)
        assert not errors, f"could not delete namespaces: {errors}"


def needs(cluster, key):
    if key not in cluster.state:
        pytest.skip(f"an earlier step failed (no {key})")
    return cluster.state[key]


def survivor_progress(c, nodes, cid, gets):
    """{name: pieces held (and, with metrics, CDN bytes received)} for the nodes alive."""
    out = {}
    for n in nodes:
        if not n.alive():
            continue
        v = f"{n.pieces_local(cid)}" + ("" if gets[n.name].poll() is None else " done")
        if c.has_metrics:
            got = metric(parse_metrics(n.scrape()), "shoal_peer_bytes_received_total",
                         kind="cdn")
            v += f" ({(got or 0) / SIZE:.2f} copies received)"
        out[n.name] = v
    return out


# ---------------------------------------------------------------------------------------------
# 1. Nine fetches at once; node 1 (the only seed) and node 10 killed mid-way.

def test_nine_fetch_by_id_with_two_nodes_killed_midway(cluster):
    c = cluster
    first = c.nodes[FIRST]
    fetchers = c.good(range(2, 11))
    survivors = c.good(range(2, 10))
    victims = [first, c.nodes[KILLED_FETCHER]]

    src = c.work / "data"
    with open(src, "wb") as f:
        for _ in range(SIZE >> 20):
            f.write(os.urandom(1 << 20))
    want = sha256_file(src)
    t0 = time.monotonic()
    cid = first.cli("add", str(src), timeout=120).stdout.decode().strip()
    assert re.fullmatch(r"[0-9a-f]{64}", cid), cid
    st = first.cli_json("stat", cid)
    num_pieces = st["num_pieces"]
    assert st["length"] == SIZE and st["pieces_local"] == num_pieces, st
    log(f"added {cid[:16]}… on n01 in {time.monotonic() - t0:.1f} s: {num_pieces} pieces of "
        f"{st['piece_length']} bytes")
    # Node 1's announce has reached the DHT: a node looks it up and finds it.
    wait_until("n05 to find n01 as a provider",
               lambda: first.listen in c.nodes[5].cli_json("providers", cid, "--timeout",
                                                           LOOKUP_TIMEOUT)["providers"],
               timeout=30, interval=0.5)
    limited = [n for n in fetchers if n.name != f"n{FAST:02d}"]
    for n in limited:
        n.cli("torrent", "limit", "--down", str(DOWNLINK))

    out_dir = c.work / "out"
    out_dir.mkdir()
    outs = {n.name: out_dir / n.name for n in fetchers}
    t_fetch = time.monotonic()
    gets = {}
    for n in fetchers:
        errf = open(c.work / f"{n.name}.get.stderr", "wb")
        p = subprocess.Popen(n.cli_args("get", cid, "-o", str(outs[n.name])),
                             stdout=subprocess.DEVNULL, stderr=errf, stdin=subprocess.DEVNULL,
                             env=ENV)
        errf.close()
        c.cli_procs.append(p)
        gets[n.name] = p
    log(f"9 fetches started (no --peer) on {', '.join(n.name for n in fetchers)}")

    # Mid-way: node 2 holds every piece (so node 1 takes none with it), and a download-limited
    # fetcher holds a quarter. Node 1 is scraped while it serves; the last scrape before the
    # kill is kept, as is one of node 10.
    fast = c.nodes[FAST]
    quarter = int(num_pieces * MIDWAY_FRACTION)

    def fast_done():
        rc = gets[fast.name].poll()
        assert rc in (None, 0), f"{fast.name}'s fetch failed: " + \
            (c.work / f"{fast.name}.get.stderr").read_text(errors="replace")
        return rc == 0 or fast.pieces_local(cid) == num_pieces
    wait_until(f"{fast.name} to hold every piece", fast_done, timeout=90, interval=0.1)
    t_fast = time.monotonic()
    progress = wait_until(
        f"a limited fetcher to hold {MIDWAY_FRACTION:.0%} of the pieces",
        lambda: (lambda p: p if max(p.values()) >= quarter else None)(
            {n.name: n.pieces_local(cid) for n in limited}), timeout=90, interval=0.1)
    seed_sent = None
    if c.has_metrics:
        c.state["seed_samples"] = parse_metrics(first.scrape())
        c.state["victim_samples"] = {KILLED_FETCHER: parse_metrics(
            c.nodes[KILLED_FETCHER].scrape())}
        seed_sent = metric(c.state["seed_samples"], "shoal_peer_bytes_sent_total", kind="cdn")
    still_fetching = [n.name for n in survivors if gets[n.name].poll() is None]
    for v in victims:
        v.kill9()
    t_kill = time.monotonic()
    log(f"n{FAST:02d} held every piece {t_fast - t_fetch:.1f} s into the fetch; killed n01 and "
        f"n{KILLED_FETCHER} (SIGKILL) at {t_kill - t_fetch:.1f} s; pieces then: {progress}"
        + (f"; n01 had sent {seed_sent / SIZE:.2f} copies" if seed_sent is not None else ""))
    assert gets[fast.name].wait(timeout=60) == 0, \
        (c.work / f"{fast.name}.get.stderr").read_text(errors="replace")
    assert len(still_fetching) >= 7, \
        f"only {still_fetching} were still fetching at the kill: nothing was killed mid-way"

    # The eight survivors finish from each other.
    deadline = max(t_fetch + FETCH_BOUND, t_kill + 60)
    next_report = time.monotonic() + 5
    for _ in range(int(FETCH_BOUND / 0.2) + 1):
        if all(gets[n.name].poll() is not None for n in survivors):
            break
        if time.monotonic() > deadline:
            break
        if time.monotonic() >= next_report:
            log(f"pieces held: {survivor_progress(c, survivors, cid, gets)}")
            next_report = time.monotonic() + 5
        time.sleep(0.2)
    t_done = time.monotonic()
    pending = [n for n in survivors if gets[n.name].poll() is None]
    failed = {n.name: (gets[n.name].returncode,
                       (c.work / f"{n.name}.get.stderr").read_text(errors="replace").strip())
              for n in survivors if gets[n.name].poll() not in (None, 0)}
    if pending or failed:
        raise AssertionError(
            f"{len(pending)} fetches still running {t_done - t_fetch:.0f} s after starting "
            f"({t_done - t_kill:.0f} s after the kill), {len(failed)} failed: {failed}; "
            f"pieces held of {num_pieces}: {survivor_progress(c, survivors, cid, gets)}\n"
            + "\n".join(n.tail() for n in survivors if n in pending or n.name in failed))
    log(f"8 surviving fetches done {t_done - t_fetch:.1f} s after starting "
        f"({t_done - t_kill:.1f} s after the kill)")

    # Every copy: the file written, and the node's own store.
    for n in survivors:
        assert sha256_file(outs[n.name]) == want, f"{n.name}: the fetched copy differs"
        st = n.cli_json("stat", cid)
        assert (st["id"], st["length"], st["num_pieces"], st["pieces_local"]) == \
            (cid, SIZE, num_pieces, num_pieces), f"{n.name}: {st}"
    # Read back from two stores through the API, not just the files `get` wrote.
    for n in (survivors[0], survivors[-1]):
        p = subprocess.Popen(n.cli_args("cat", cid), stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, env=ENV)
        h = hashlib.sha256()
        for block in iter(lambda: p.stdout.read(1 << 20), b""):
            h.update(block)
        assert p.wait(timeout=60) == 0 and h.hexdigest() == want, f"{n.name}: cat differs"
    c.state.update(cid=cid, want=want, num_pieces=num_pieces)


# ---------------------------------------------------------------------------------------------
# 2. An eleventh node joins and fetches from what is left.

def test_eleventh_node_fetches_from_the_rest(cluster):
    c = cluster
    cid, want = needs(c, "cid"), needs(c, "want")
    t0 = time.monotonic()
    n11 = c.node(ELEVENTH, bootstrap=[3, 4]).start()
    n11.wait_ready(time.monotonic() + START_TIMEOUT)
    wait_until("n11's cluster DHT to find a node", lambda: n11.info()["dht_nodes_cluster"] >= 1,
               timeout=20)
    out = c.work / "out" / n11.name
    res = n11.cli("get", cid, "-o", str(out), check=False, timeout=120)
    assert res.returncode == 0, (f"n11 could not fetch: {res.stderr.decode(errors='replace')}\n"
                                 + n11.tail())
    assert sha256_file(out) == want, "n11: the fetched copy differs"
    st = n11.cli_json("stat", cid)
    assert st["pieces_local"] == st["num_pieces"] == c.state["num_pieces"], st
    log(f"n11 started and fetched it in {time.monotonic() - t0:.1f} s")

    # Every live holder is a provider, seen from an old node and from the new one. (A lookup
    # takes ~6 s now: the dead nodes' records and routing entries linger.)
    holders = c.good(list(range(2, 10)) + [ELEVENTH])
    want_set = {n.listen for n in holders}

    def all_holders_seen_by(asker):
        return lambda: wait_until(
            f"{asker.name} to list every live holder as a provider",
            lambda: (lambda p: p if want_set <= p else None)(
                set(asker.cli_json("providers", cid, "--timeout", LOOKUP_TIMEOUT)["providers"])),
            timeout=90, interval=0.5)
    askers = (c.nodes[2], n11)
    for asker, found in zip(askers, in_parallel(*map(all_holders_seen_by, askers))):
        c.state.setdefault("providers_seen", {})[asker.name] = found
    log(f"n02 and n11 list every live holder as a provider ({time.monotonic() - t0:.1f} s)")
    c.state["eleventh_done"] = True


# ---------------------------------------------------------------------------------------------
# 3. A node with another cluster key gets nothing.

def test_node_with_wrong_cluster_key_gets_nothing(cluster):
    c = cluster
    if not c.has_key:
        pytest.skip("shoald has no --cluster-key-file yet: the intruder checks need it")
    cid = needs(c, "cid")
    intruder = c.nodes[INTRUDER]
    assert intruder.alive(), intruder.tail()
    info = intruder.info()
    assert info["dht_nodes_cluster"] == 0, \
        f"the intruder's cluster DHT knows {info['dht_nodes_cluster']} nodes"
    good_askers = c.good([2, 5, 9])
    # At once: the intruder looks up providers and fetches by ID (it runs with
    # --fetch-timeout 5), and good nodes look up providers.
    (providers, t_prov), (res, t_cat), *seen_timed = in_parallel(
        timed(lambda: intruder.cli_json("providers", cid, "--timeout",
                                        LOOKUP_TIMEOUT)["providers"]),
        timed(lambda: intruder.cli("cat", cid, check=False, timeout=90,
                                   stdout=subprocess.DEVNULL)),
        *[timed((lambda a: lambda: a.cli_json("providers", cid, "--timeout",
                                              LOOKUP_TIMEOUT)["providers"])(a))
          for a in good_askers])
    seen = [p for p, _ in seen_timed]
    assert providers == [], f"the intruder found providers: {providers}"
    assert res.returncode != 0, "the intruder fetched the content"
    log(f"intruder: no DHT node, no provider ({t_prov:.1f} s), cat failed in {t_cat:.1f} s: "
        f"{res.stderr.decode(errors='replace').strip()}; good nodes' lookups took "
        + ", ".join(f"{a.name} {t:.1f} s" for a, (_, t) in zip(good_askers, seen_timed)))
    st = intruder.cli("stat", cid, "--json", check=False, timeout=10)
    if st.returncode == 0:
        assert json.loads(st.stdout)["pieces_local"] == 0, st.stdout
    assert intruder.cli_json("node", "info")["store"]["num_contents"] == 0
    # Nor did it get into anyone's provider list.
    for asker, p in zip(good_askers, seen):
        assert intruder.listen not in p, f"{asker.name} lists the intruder: {p}"
        assert c.nodes[2].listen in p, f"{asker.name}'s lookup found no provider: {p}"
    for name, p in c.state.get("providers_seen", {}).items():
        assert intruder.listen not in p, f"{name} listed the intruder: {p}"


# ---------------------------------------------------------------------------------------------
# 4. Metrics.

def test_metrics(cluster):
    c = cluster
    if not c.has_metrics:
        pytest.skip("shoald has no --metrics yet: the metrics checks need it")
    needs(c, "cid")
    needs(c, "eleventh_done")
    live = c.good(list(range(2, 10)) + [ELEVENTH])
    for n in live:
        for path in ("/healthz", "/readyz"):
            status, _ = n.http_get(path)
            assert status == 200, f"{n.name}: {path} answered {status}"
    scrapes = {n.name: parse_metrics(n.scrape()) for n in live}

    # Node 1 served while the fetches ran (scraped just before it was killed).
    seed = c.state["seed_samples"]
    seed_sent = metric(seed, "shoal_peer_bytes_sent_total", kind="cdn")
    assert seed_sent and seed_sent > 0, f"n01 sent {seed_sent} CDN bytes"
    assert metric(seed, "shoal_contents") == 1

    received_total = 0
    for n in live:
        s = scrapes[n.name]
        ok = metric(s, "shoal_fetches_total", result="ok")
        assert ok is not None and ok >= 1, f"{n.name}: shoal_fetches_total{{result=ok}} = {ok}"
        got = metric(s, "shoal_peer_bytes_received_total", kind="cdn")
        assert got is not None and got >= SIZE, f"{n.name}: received {got} CDN bytes"
        received_total += got
        assert metric(s, "shoal_contents") == 1, f"{n.name}: shoal_contents"
        assert (metric(s, "shoal_hash_failures_total") or 0) == 0, f"{n.name}: hash failures"
        assert (metric(s, "shoal_dht_nodes", instance="cluster") or 0) >= 1, n.name
    assert received_total >= 9 * SIZE
    # Every byte received was sent by someone; the killed nodes' last scrapes (just before
    # SIGKILL) stand for them, so the sum may fall a little short, not far.
    sent_total = sum(metric(s, "shoal_peer_bytes_sent_total", kind="cdn") or 0
                     for s in list(scrapes.values()) + [seed]
                     + list(c.state["victim_samples"].values()))
    assert sent_total >= 0.9 * received_total, (sent_total, received_total)
    log(f"metrics: {received_total / SIZE:.2f} copies received, {sent_total / SIZE:.2f} sent "
        f"(n01 {seed_sent / SIZE:.2f} before it was killed)")
    if c.has_key:
        intr = parse_metrics(c.nodes[INTRUDER].scrape())
        assert (metric(intr, "shoal_contents") or 0) == 0
        assert (metric(intr, "shoal_fetches_total", result="ok") or 0) == 0
        assert (metric(intr, "shoal_fetches_total") or 0) >= 1, "its failed fetch is not counted"
        assert (metric(intr, "shoal_peer_bytes_received_total", kind="cdn") or 0) == 0
        assert (metric(intr, "shoal_dht_nodes", instance="cluster") or 0) == 0
        # It did knock: the good nodes it bootstraps from dropped its messages.
        dropped = sum(metric(scrapes[f"n{i:02d}"], "shoal_dht_unauthenticated_total") or 0
                      for i in (2, 3))
        assert dropped > 0, "n02 and n03 dropped no unauthenticated cluster-DHT message"
    c.state["a_scrape"] = c.nodes[2].scrape()


def test_promtool_accepts_metrics(cluster):
    c = cluster
    if not c.has_metrics:
        pytest.skip("shoald has no --metrics yet")
    promtool = shutil.which("promtool")
    if not promtool:
        pytest.skip("promtool is not installed (Debian package `prometheus`)")
    text = needs(c, "a_scrape")
    res = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                         text=True, timeout=30)
    assert res.returncode == 0, f"promtool check metrics: {res.stdout}{res.stderr}"
