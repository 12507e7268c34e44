"""examples/python: the client module and its example script, against real nodes."""
import os
import pathlib
import subprocess
import sys

import pytest

from conftest import PROTO_GEN

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples" / "python"


@pytest.fixture
def client_module():
    sys.path.insert(0, str(EXAMPLES))
    try:
        import shoal_client
        yield shoal_client
    finally:
        sys.path.remove(str(EXAMPLES))


def test_example_script_publishes_and_fetches_by_id(make_node, tmp_dir):
    a, b = make_node("a"), make_node("b")
    f = tmp_dir / "data.bin"
    data = os.urandom(5 * 1024 * 1024 + 7)
    f.write_bytes(data)
    env = dict(os.environ, PYTHONPATH=f"{PROTO_GEN}:{EXAMPLES}")
    res = subprocess.run(["/usr/bin/python3", str(EXAMPLES / "example.py"), a.api, str(f), b.api],
                         capture_output=True, timeout=120, env=env)
    assert res.returncode == 0, res.stderr.decode()
    out = res.stdout.decode()
    assert "added " in out and f"fetched {len(data)} bytes" in out and "last 100%" in out, out
    assert (tmp_dir / "data.bin.fetched").read_bytes() == data
    assert not (tmp_dir / "data.bin.fetched.part").exists()


def test_client_module_calls_and_errors(make_node, tmp_dir, client_module):
    import grpc
    node = make_node()
    with client_module.Shoal(node.api) as s:
        cid = s.add_bytes(b"hello shoal", name="greeting")
        assert s.read(cid) == b"hello shoal"
        info = s.stat(cid)
        assert info.length == 11 and info.id == cid
        assert [c.id for c in s.list()] == [cid]
        assert s.info().node_id == node.node_id
        with pytest.raises(grpc.RpcError) as e:
            s.stat("ab" * 32)
        assert e.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.RpcError) as e:
            s.stat("not-an-id")
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        # A failed fetch leaves no partial file behind.
        with pytest.raises(grpc.RpcError):
            s.fetch("ab" * 32, str(tmp_dir / "out"))
        assert not (tmp_dir / "out").exists() and not (tmp_dir / "out.part").exists()
        # Events: a torrent added to the node shows in the replayed stream.
        src = tmp_dir / "t"
        src.mkdir()
        (src / "a").write_bytes(b"a" * 1000)
        (src / "b").write_bytes(b"b" * 2000)
        node.cli("torrent", "create", str(src), "-o", str(tmp_dir / "t.torrent"))
        tid = node.cli("torrent", "add", str(tmp_dir / "t.torrent"), "--save-path",
                       str(tmp_dir)).stdout.decode().strip()
        for event in s.watch(replay=True):
            if event.kind == "added":
                assert event.id == tid
                break
