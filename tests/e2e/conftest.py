"""Shared fixtures for end-to-end tests: real shoald processes on OS-chosen ports.

Run with /usr/bin/python3 -m pytest (Debian's interpreter, which has grpc and libtorrent).
SHOAL_BIN_DIR names the directory holding the shoald and shoal binaries.
"""
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

BIN_DIR = pathlib.Path(os.environ.get("SHOAL_BIN_DIR", ""))
SHOALD = os.environ.get("SHOALD", str(BIN_DIR / "shoald"))
SHOAL = os.environ.get("SHOAL", str(BIN_DIR / "shoal"))
PROTO_GEN = os.environ.get("SHOAL_PY_PROTO")  # directory with shoal/v1/shoal_pb2*.py
if PROTO_GEN:
    sys.path.insert(0, PROTO_GEN)

START_TIMEOUT = 20


class Node:
    """A shoald process with its own data dir, API and peer ports chosen by the OS."""

    def __init__(self, data_dir, extra_args=(), prefix=(), listen="127.0.0.1:0", lsd="off"):
        """`prefix` runs shoald and the CLI under a command (`ip netns exec NS`); `listen` is
        the peer address; `lsd` the --lsd value (off: tests multicast nowhere but in the
        namespaces they create)."""
        self.data_dir = pathlib.Path(data_dir)
        self.extra_args = list(extra_args)
        self.prefix = list(prefix)
        self.listen_arg = listen
        self.lsd = lsd
        self.proc = None
        self.api = None
        self.listen = None
        self.node_id = None
        self.metrics = None  # HOST:PORT when started with --metrics
        # Sent by cli(): a token (SHOAL_API_TOKEN) and global options such as --api-ca.
        self.token = None
        self.cli_args = []
        self.api_scheme = ""  # "https://" for an API over TLS
        self.stderr_path = self.data_dir.parent / (self.data_dir.name + ".stderr")

    def start(self, expect_ready=True):
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [*self.prefix, SHOALD, "--data-dir", str(self.data_dir), "--api", "127.0.0.1:0",
                "--listen", self.listen_arg, "--dht-routers", "", "--lsd", self.lsd,
                *self.extra_args]
        self._stderr = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self._stderr)
        if not expect_ready:
            return self
        deadline = time.monotonic() + START_TIMEOUT
        line = b""
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line or self.proc.poll() is not None:
                break
        text = line.decode().strip()
        if not text.startswith("shoald ready"):
            self.proc.kill()
            raise RuntimeError(f"shoald did not start: {text!r}\n{self.stderr()}")
        fields = dict(kv.split("=", 1) for kv in text.split()[2:])
        self.api, self.listen, self.node_id = fields["api"], fields["listen"], fields["node_id"]
        self.listen6 = fields.get("listen6")  # dual-stack nodes only
        self.metrics = fields.get("metrics")
        self.gateway = fields.get("gateway")
        return self

    def stderr(self):
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.proc.stdout.close()
            self._stderr.close()
        return self.proc.returncode if self.proc else None

    def kill9(self):
        return self.stop(sig=signal.SIGKILL)

    def cli(self, *args, check=True, input=None, timeout=120):
        """Runs `shoal --api <this node> args...`; returns the CompletedProcess (bytes)."""
        env = dict(os.environ)
        env.pop("SHOAL_API_TOKEN", None)
        if self.token:
            env["SHOAL_API_TOKEN"] = self.token
        res = subprocess.run([*self.prefix, SHOAL, "--api", self.api_scheme + self.api,
                              *self.cli_args, *args],
                             capture_output=True, input=input, timeout=timeout, env=env)
        if check and res.returncode != 0:
            raise AssertionError(f"shoal {' '.join(args)} failed ({res.returncode}): "
                                 f"{res.stderr.decode(errors='replace')}")
        return res


@pytest.fixture
def tmp_dir():
    d = tempfile.mkdtemp(prefix="shoal-e2e-")
    yield pathlib.Path(d)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def make_node(tmp_dir):
    nodes = []

    def make(name="node", extra_args=(), start=True, **kw):
        n = Node(tmp_dir / name, extra_args, **kw)
        nodes.append(n)
        if start:
            n.start()
        return n

    yield make
    for n in nodes:
        n.stop(timeout=10)


@pytest.fixture
def node(make_node):
    return make_node()
