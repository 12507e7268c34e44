"""End-to-end: the HTTP gateway serves content by ID, with ranges, caching headers and errors."""
import http.client
import json
import os
import socket

import pytest


def request(node, method, path, headers=None):
    host, port = node.gateway.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request(method, path, headers=headers or {})
    res = conn.getresponse()
    body = res.read()
    conn.close()
    return res, body


@pytest.fixture
def gw_node(make_node):
    n = make_node("gw", extra_args=["--gateway", "127.0.0.1:0"])
    info = json.loads(n.cli("node", "info", "--json").stdout)
    n.gateway = info["gateway_address"]
    assert n.gateway.startswith("127.0.0.1:")
    return n


def add_bytes(node, tmp_dir, data, name="f"):
    p = tmp_dir / name
    p.write_bytes(data)
    return node.cli("add", str(p)).stdout.decode().strip()


# GET returns the bytes with an ETag of the ID and immutable caching; HEAD returns the headers.
def test_get_and_head(gw_node, tmp_dir):
    data = os.urandom(300_000)
    cid = add_bytes(gw_node, tmp_dir, data)
    res, body = request(gw_node, "GET", f"/content/{cid}")
    assert res.status == 200 and body == data
    assert res.getheader("ETag") == f'"{cid}"'
    assert "immutable" in res.getheader("Cache-Control")
    assert res.getheader("Accept-Ranges") == "bytes"
    res, body = request(gw_node, "HEAD", f"/content/{cid}")
    assert res.status == 200 and body == b"" and int(res.getheader("Content-Length")) == len(data)
    res, _ = request(gw_node, "GET", f"/content/{cid}", {"If-None-Match": f'"{cid}"'})
    assert res.status == 304


# Single ranges give 206 with exactly those bytes; ranges past the end give 416.
def test_ranges(gw_node, tmp_dir):
    data = os.urandom(200_000)
    cid = add_bytes(gw_node, tmp_dir, data)
    for header, lo, hi in [("bytes=0-0", 0, 0), ("bytes=65535-65536", 65535, 65536),
                           ("bytes=100000-", 100000, len(data) - 1), ("bytes=-10", len(data) - 10,
                                                                      len(data) - 1),
                           ("bytes=199990-999999", 199990, len(data) - 1)]:
        res, body = request(gw_node, "GET", f"/content/{cid}", {"Range": header})
        assert res.status == 206, header
        assert body == data[lo:hi + 1], header
        assert res.getheader("Content-Range") == f"bytes {lo}-{hi}/{len(data)}"
    res, _ = request(gw_node, "GET", f"/content/{cid}", {"Range": "bytes=200000-"})
    assert res.status == 416 and res.getheader("Content-Range") == f"bytes */{len(data)}"
    res, body = request(gw_node, "GET", f"/content/{cid}", {"Range": "bytes=0-1,5-6"})
    assert res.status == 200 and body == data  # several ranges: the whole content


# Bad IDs, unknown content, unknown paths and other methods get their status codes, and a
# garbage request does not stop the gateway.
def test_errors(gw_node, tmp_dir):
    assert request(gw_node, "GET", "/content/xyz")[0].status == 400
    assert request(gw_node, "GET", "/content/" + "ab" * 32)[0].status == 404
    assert request(gw_node, "GET", "/nothing")[0].status == 404
    assert request(gw_node, "DELETE", "/content/" + "ab" * 32)[0].status == 405
    host, port = gw_node.gateway.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(b"\x00\x01garbage\r\n\r\n")
        reply = s.recv(1024)
        assert reply.startswith(b"HTTP/1.1 400")
    assert request(gw_node, "GET", "/health")[0].status == 200
    cid = add_bytes(gw_node, tmp_dir, b"still here")
    assert request(gw_node, "GET", f"/content/{cid}")[1] == b"still here"


# Keep-alive: several requests on one connection.
def test_keep_alive(gw_node, tmp_dir):
    cid = add_bytes(gw_node, tmp_dir, b"x" * 70000)
    host, port = gw_node.gateway.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    for _ in range(3):
        conn.request("GET", f"/content/{cid}", headers={"Range": "bytes=0-9"})
        res = conn.getresponse()
        assert res.status == 206 and res.read() == b"x" * 10
    conn.close()


# An idle client connection does not hold up a clean shutdown.
def test_shutdown_with_idle_connection(gw_node):
    host, port = gw_node.gateway.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=10)
    s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert s.recv(1024).startswith(b"HTTP/1.1 200")
    assert gw_node.stop(timeout=15) == 0
    s.close()
