"""End-to-end: content by ID on one node, through the CLI and the gRPC API."""
import hashlib
import json
import os
import pathlib
import random
import signal
import subprocess
import time

import grpc
import pytest

from conftest import Node, SHOAL, SHOALD

from shoal.v1 import shoal_pb2, shoal_pb2_grpc

SIZES = [1, 16383, 16384, 16385, 65536, 65537, 5 * 65536 + 17, 3 * 1024 * 1024 + 1]


def random_bytes(n, seed):
    if n > 16 * 1024 * 1024:
        return os.urandom(n)
    return random.Random(seed).randbytes(n)


def write(tmp_dir, name, data):
    p = tmp_dir / name
    p.write_bytes(data)
    return p


def lt_content_id(data, tmp_dir):
    """The content ID as libtorrent computes it: v2 info-hash of the canonical dict."""
    import libtorrent as lt
    n = len(data)
    q = (n + 1023) // 1024
    pl = 1
    while pl < q:
        pl *= 2
    pl = max(64 * 1024, min(4 * 1024 * 1024, pl))
    d = tmp_dir / "lt"
    d.mkdir(exist_ok=True)

    def make(name):
        p = d / name
        p.write_bytes(data)
        fs = lt.file_storage()
        lt.add_files(fs, str(p))
        ct = lt.create_torrent(fs, pl, flags=lt.create_torrent.v2_only)
        lt.set_piece_hashes(ct, str(d))
        p.unlink()
        return ct.generate()

    root = make("x")[b"info"][b"file tree"][b"x"][b""][b"pieces root"]
    info = make(root.hex())[b"info"]
    return hashlib.sha256(lt.bencode(info)).hexdigest(), root.hex(), pl


def stub(node):
    ch = grpc.insecure_channel(node.api, options=[("grpc.max_receive_message_length", 16 << 20)])
    return shoal_pb2_grpc.ContentServiceStub(ch), shoal_pb2_grpc.NodeServiceStub(ch), ch


def add(node, path, *extra):
    out = node.cli("add", str(path), *extra).stdout.decode().strip()
    assert len(out) == 64 and all(c in "0123456789abcdef" for c in out), out
    return out


# add then cat gives identical bytes, and the ID is libtorrent's v2 info-hash of the canonical
# dict, for sizes around block and piece boundaries.
@pytest.mark.parametrize("size", SIZES)
def test_add_cat_matches_libtorrent(node, tmp_dir, size):
    data = random_bytes(size, size)
    cid = add(node, write(tmp_dir, "f", data))
    assert node.cli("cat", cid).stdout == data
    expected_id, root, pl = lt_content_id(data, tmp_dir)
    assert cid == expected_id
    st = json.loads(node.cli("stat", cid, "--json").stdout)
    assert st["id"] == cid and st["length"] == size and st["pieces_root"] == root
    assert st["piece_length"] == pl
    assert st["num_pieces"] == (size + pl - 1) // pl == st["pieces_local"]
    assert st["pinned"] is False


# A few hundred MiB: the ID still matches libtorrent's, and get writes identical bytes.
def test_large_content_matches_libtorrent(node, tmp_dir):
    size = 300 * 1024 * 1024 + 12345
    data = random_bytes(size, 7)
    src = write(tmp_dir, "big", data)
    cid = add(node, src)
    expected_id, _, pl = lt_content_id(data, tmp_dir)
    assert pl == 512 * 1024
    assert cid == expected_id
    out = tmp_dir / "big.out"
    node.cli("get", cid, "-o", str(out), timeout=300)
    assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(data).digest()
    assert not (tmp_dir / "big.out.shoal-part").exists()


# Empty content has a fixed ID, adds and reads back as nothing.
def test_empty_content(node, tmp_dir):
    cid = add(node, write(tmp_dir, "empty", b""))
    assert node.cli("cat", cid).stdout == b""
    st = json.loads(node.cli("stat", cid, "--json").stdout)
    assert st["length"] == 0 and st["num_pieces"] == 0 and st["pieces_root"] == "0" * 64


# The same bytes get the same ID on two nodes, through both add paths and stdin.
def test_same_id_on_two_nodes(make_node, tmp_dir):
    a, b = make_node("a"), make_node("b")
    data = random_bytes(1_000_000, 3)
    p = write(tmp_dir, "f", data)
    ida = add(a, p)
    idb = add(b, p, "--by-path")
    idc = b.cli("add", "-", input=data).stdout.decode().strip()
    assert ida == idb == idc


# Content survives a clean restart, with its pin.
def test_restart_keeps_content(make_node, tmp_dir):
    n = make_node("n")
    data = random_bytes(500_000, 4)
    cid = add(n, write(tmp_dir, "f", data), "--pin")
    assert n.stop() == 0
    n.start()
    assert n.cli("cat", cid).stdout == data
    assert json.loads(n.cli("stat", cid, "--json").stdout)["pinned"] is True


# kill -9 during a large add leaves a store that opens, holds no trace of the partial add,
# and accepts the same add again.
def test_kill9_during_add(make_node, tmp_dir):
    n = make_node("n")
    data = random_bytes(200 * 1024 * 1024, 5)
    p = write(tmp_dir, "big", data)
    small = add(n, write(tmp_dir, "small", b"kept"))
    proc = subprocess.Popen([SHOAL, "--api", n.api, "add", str(p)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    # Wait until the node has stored part of it, then kill it.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        info = json.loads(n.cli("node", "info", "--json").stdout)
        if info["store"]["used_bytes"] > 20 * 1024 * 1024:
            break
        time.sleep(0.05)
    n.kill9()
    proc.wait(timeout=30)
    assert proc.returncode != 0
    n.start()
    info = json.loads(n.cli("node", "info", "--json").stdout)
    assert info["store"]["num_contents"] == 1
    assert info["store"]["used_bytes"] == 4
    assert n.cli("cat", small).stdout == b"kept"
    cid = add(n, p)
    assert hashlib.sha256(n.cli("cat", cid, timeout=300).stdout).digest() == \
        hashlib.sha256(data).digest()


# A second shoald on the same data dir, or on a port in use, refuses to start with one line.
def test_refuses_busy_data_dir_and_port(make_node, tmp_dir):
    a = make_node("a")
    res = subprocess.run([SHOALD, "--data-dir", str(a.data_dir), "--api", "127.0.0.1:0",
                          "--listen", "127.0.0.1:0", "--dht-routers", ""],
                         capture_output=True, timeout=30)
    assert res.returncode != 0
    err = res.stderr.decode().strip()
    assert "in use by another shoald" in err and len(err.splitlines()) == 1, err
    for flag, addr in (("--api", a.api), ("--listen", a.listen)):
        args = [SHOALD, "--data-dir", str(tmp_dir / "other"), "--api", "127.0.0.1:0",
                "--listen", "127.0.0.1:0", "--dht-routers", "", flag, addr]
        res = subprocess.run(args, capture_output=True, timeout=30)
        err = res.stderr.decode().strip()
        assert res.returncode != 0 and len(err.splitlines()) == 1, err
        assert addr in err, err
    # The first node keeps serving.
    a.cli("node", "info")


# Unpinned content is evicted least recently used first; pinned content is never evicted;
# an add that cannot fit fails with RESOURCE_EXHAUSTED.
def test_eviction(make_node, tmp_dir):
    n = make_node("n", extra_args=["--capacity", str(4 * 65536)])
    ids = []
    for i in range(3):
        ids.append(add(n, write(tmp_dir, f"f{i}", random_bytes(65536, 100 + i))))
        time.sleep(0.01)
    a, b, c = ids
    n.cli("cat", a)           # a becomes the most recently used
    n.cli("pin", b)           # b may not be evicted
    d = add(n, write(tmp_dir, "d", random_bytes(2 * 65536, 200)))  # evicts c only
    listed = {x["id"] for x in json.loads(n.cli("ls", "--json").stdout)["contents"]}
    assert listed == {a, b, d}
    n.cli("pin", a)
    n.cli("pin", d)
    res = n.cli("add", str(write(tmp_dir, "e", b"x" * 100)), check=False)
    assert res.returncode != 0
    assert "capacity" in res.stderr.decode()
    content, _, ch = stub(n)
    with pytest.raises(grpc.RpcError) as e:
        content.Add(iter([shoal_pb2.AddRequest(header=shoal_pb2.AddHeader(length=5)),
                          shoal_pb2.AddRequest(data=b"hello")]))
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    n.cli("unpin", a)
    add(n, write(tmp_dir, "e", b"x" * 100))
    listed = {x["id"] for x in json.loads(n.cli("ls", "--json").stdout)["contents"]}
    assert a not in listed and {b, d} <= listed
    ch.close()


# Ranged reads through gRPC and the CLI return exactly the requested bytes.
def test_ranged_reads(node, tmp_dir):
    data = random_bytes(3 * 65536 + 100, 9)
    cid = add(node, write(tmp_dir, "f", data))
    content, _, ch = stub(node)
    for off, ln in [(0, 1), (65535, 2), (1000, 150000), (len(data) - 1, 1), (len(data), 0),
                    (70000, None)]:
        req = shoal_pb2.ReadRequest(id=cid, offset=off)
        if ln is not None:
            req.length = ln
        got = b"".join(m.data for m in content.Read(req))
        assert got == data[off:off + ln if ln is not None else None], (off, ln)
    got = node.cli("cat", cid, "--offset", "100", "--length", "65536").stdout
    assert got == data[100:100 + 65536]
    ch.close()


# Every bad input gets its status code, and the node keeps serving.
def test_bad_input_status_codes(node, tmp_dir):
    data = random_bytes(100_000, 10)
    cid = add(node, write(tmp_dir, "f", data))
    content, node_stub, ch = stub(node)
    C = grpc.StatusCode

    def code_of(fn):
        with pytest.raises(grpc.RpcError) as e:
            r = fn()
            if hasattr(r, "__iter__") and not isinstance(r, (bytes, str)):
                list(r)
        return e.value.code()

    unknown = "ab" * 32
    assert code_of(lambda: content.Stat(shoal_pb2.StatRequest(id="xyz"))) == C.INVALID_ARGUMENT
    assert code_of(lambda: content.Stat(shoal_pb2.StatRequest(id="g" * 64))) == C.INVALID_ARGUMENT
    assert code_of(lambda: content.Stat(shoal_pb2.StatRequest(id=unknown))) == C.NOT_FOUND
    assert code_of(lambda: content.Read(shoal_pb2.ReadRequest(id=unknown))) == C.NOT_FOUND
    assert code_of(lambda: content.Read(shoal_pb2.ReadRequest(id="1"))) == C.INVALID_ARGUMENT
    assert code_of(lambda: content.Read(
        shoal_pb2.ReadRequest(id=cid, offset=len(data) + 1))) == C.INVALID_ARGUMENT
    assert code_of(lambda: content.Read(
        shoal_pb2.ReadRequest(id=cid, offset=10, length=len(data)))) == C.INVALID_ARGUMENT
    # A peer that is not an IP address is refused even for content held here, which needs none.
    for peers in (["nothost:1"], ["127.0.0.1"], ["127.0.0.1:99999"]):
        assert code_of(lambda: content.Read(
            shoal_pb2.ReadRequest(id=cid, peers=peers))) == C.INVALID_ARGUMENT, peers
    assert code_of(lambda: content.Pin(shoal_pb2.PinRequest(id=unknown))) == C.NOT_FOUND
    assert code_of(lambda: content.Unpin(shoal_pb2.UnpinRequest(id=unknown))) == C.NOT_FOUND
    assert code_of(lambda: content.Remove(shoal_pb2.RemoveRequest(id=unknown))) == C.NOT_FOUND
    assert code_of(lambda: content.Remove(shoal_pb2.RemoveRequest(id=""))) == C.INVALID_ARGUMENT
    # Add streams: no header, data before header, two headers, wrong lengths.
    R, H = shoal_pb2.AddRequest, shoal_pb2.AddHeader
    assert code_of(lambda: content.Add(iter([]))) == C.INVALID_ARGUMENT
    assert code_of(lambda: content.Add(iter([R(data=b"x")]))) == C.INVALID_ARGUMENT
    assert code_of(lambda: content.Add(iter([R(header=H()), R(header=H())]))) == C.INVALID_ARGUMENT
    assert code_of(lambda: content.Add(iter([R(header=H(length=3)), R(data=b"toolong")]))) == \
        C.INVALID_ARGUMENT
    assert code_of(lambda: content.Add(iter([R(header=H(length=30)), R(data=b"short")]))) == \
        C.INVALID_ARGUMENT
    AF = shoal_pb2.AddFileRequest
    assert code_of(lambda: content.AddFile(AF(path="relative/path"))) == C.INVALID_ARGUMENT
    assert code_of(lambda: content.AddFile(AF(path=str(tmp_dir / "missing")))) == C.NOT_FOUND
    # A directory holding no file, or a special file.
    (tmp_dir / "empty dir" / "sub").mkdir(parents=True)
    assert code_of(lambda: content.AddFile(AF(path=str(tmp_dir / "empty dir")))) == \
        C.INVALID_ARGUMENT
    os.mkfifo(tmp_dir / "pipe")
    assert code_of(lambda: content.AddFile(AF(path=str(tmp_dir / "pipe")))) == C.INVALID_ARGUMENT
    # A header without a length works (spooled), and a good add still works after all that.
    r = content.Add(iter([R(header=H(name="spooled")), R(data=data[:50_000]), R(data=data[50_000:])]))
    assert r.content.id == cid
    assert b"".join(m.data for m in content.Read(shoal_pb2.ReadRequest(id=cid))) == data
    info = node_stub.GetInfo(shoal_pb2.GetInfoRequest())
    assert info.store.num_contents == 1 and info.store.reserved_bytes == 0
    ch.close()


# The CLI prints one line on stderr and exits non-zero on errors.
def test_cli_errors(node, tmp_dir):
    (tmp_dir / "no files" / "inside").mkdir(parents=True)
    cases = [("stat", "nothex"), ("cat", "ab" * 32), ("rm", "ab" * 32), ("add", str(tmp_dir / "nope")),
             ("add", str(tmp_dir / "no files")), ("add", "--by-path", str(tmp_dir / "no files")),
             ("pin", "")]
    for args in cases:
        res = node.cli(*args, check=False)
        err = res.stderr.decode().strip()
        assert res.returncode != 0, args
        assert len(err.splitlines()) == 1 and err.startswith("shoal: "), (args, err)
    res = subprocess.run([SHOAL, "--api", "127.0.0.1:1", "node", "info"], capture_output=True,
                         timeout=30)
    err = res.stderr.decode().strip()
    assert res.returncode != 0 and "cannot reach shoald" in err and len(err.splitlines()) == 1
    res = subprocess.run([SHOAL, "bogus"], capture_output=True, timeout=30)
    assert res.returncode != 0 and len(res.stderr.decode().strip().splitlines()) == 1


# ls, pin, unpin, rm and node info work from the CLI, in human and JSON form.
def test_cli_management(node, tmp_dir):
    a = add(node, write(tmp_dir, "a.txt", b"alpha" * 1000))
    b = add(node, write(tmp_dir, "b.txt", b"beta" * 1000), "--pin")
    listing = json.loads(node.cli("ls", "--json").stdout)["contents"]
    assert {x["id"]: x["name"] for x in listing} == {a: "a.txt", b: "b.txt"}
    assert a in node.cli("ls").stdout.decode()
    node.cli("pin", a)
    assert json.loads(node.cli("stat", a, "--json").stdout)["pinned"] is True
    node.cli("unpin", a)
    assert json.loads(node.cli("stat", a, "--json").stdout)["pinned"] is False
    assert "pieces" in node.cli("stat", a).stdout.decode()
    node.cli("rm", a)
    assert node.cli("stat", a, check=False).returncode != 0
    info = json.loads(node.cli("node", "info", "--json").stdout)
    assert info["api_address"] == node.api and info["listen_address"] == node.listen
    assert info["node_id"] == node.node_id and len(info["node_id"]) == 64
    assert info["store"]["num_contents"] == 1
    assert info["dht_routers"] == []
    # The node's identity is kept across restarts.
    node.stop()
    node.start()
    assert json.loads(node.cli("node", "info", "--json").stdout)["node_id"] == info["node_id"]


# The standard health service and server reflection answer. (Debian ships no Python stubs for
# them, so the messages are written by hand: both are tiny.)
def test_health_and_reflection(node):
    ch = grpc.insecure_channel(node.api)
    check = ch.unary_unary("/grpc.health.v1.Health/Check",
                           request_serializer=lambda b: b, response_deserializer=lambda b: b)
    assert check(b"") == b"\x08\x01"  # HealthCheckResponse{status: SERVING}
    reflect = ch.stream_stream("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                               request_serializer=lambda b: b, response_deserializer=lambda b: b)
    replies = list(reflect(iter([b"\x3a\x00"])))  # ServerReflectionRequest{list_services: ""}
    assert b"shoal.v1.ContentService" in replies[0] and b"shoal.v1.NodeService" in replies[0]
    ch.close()


# A config file sets what flags don't, and flags override it.
def test_config_file(tmp_dir):
    cfg = tmp_dir / "shoald.toml"
    cfg.write_text(f'data_dir = "{tmp_dir / "fromcfg"}"\ncapacity = "1MiB"\nlog_level = "warn"\n')
    n = Node(tmp_dir / "flagdir", ["--config", str(cfg)]).start()
    try:
        info = json.loads(n.cli("node", "info", "--json").stdout)
        assert info["data_dir"] == str(tmp_dir / "flagdir")  # flag wins
        assert info["store"]["capacity_bytes"] == 1 << 20  # from the file
    finally:
        n.stop()
    cfg.write_text("bogus = 1\n")
    res = subprocess.run([SHOALD, "--config", str(cfg), "--dht-routers", ""],
                         capture_output=True, timeout=30)
    err = res.stderr.decode().strip()
    assert res.returncode != 0 and "unknown setting 'bogus'" in err and len(err.splitlines()) == 1


# SIGINT stops the node cleanly with exit status 0.
def test_sigint_clean_shutdown(make_node):
    n = make_node("n")
    assert n.stop(sig=signal.SIGINT) == 0
    assert "stopped" in n.stderr()


def test_add_json_describes_the_content(node, tmp_dir):
    """`add --json` prints what `stat --json` prints, for a stream, a path and a directory."""
    f = tmp_dir / "a.bin"
    f.write_bytes(os.urandom(200_000))
    d = tmp_dir / "tree"
    (d / "sub").mkdir(parents=True)
    (d / "sub" / "x.txt").write_bytes(b"x" * 10)
    for args in ([str(f)], [str(f), "--by-path"], [str(d)]):
        got = json.loads(node.cli("add", *args, "--json").stdout)
        stat = json.loads(node.cli("stat", got["id"], "--json").stdout)
        assert got["id"] == stat["id"] and got["length"] == stat["length"], (args, got)
    assert json.loads(node.cli("add", str(f), "--json").stdout)["length"] == 200_000
