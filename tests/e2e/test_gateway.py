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


# ---------------------------------------------------------------------------------------------
# the event-driven gateway: pipelining, timeouts, limits, content types


def raw(node, data, timeout=10):
    host, port = node.gateway.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=timeout)
    s.sendall(data)
    return s


def recv_all(s, limit=10_000_000):
    out = b""
    while len(out) < limit:
        try:
            d = s.recv(1 << 16)
        except socket.timeout:
            break
        if not d:
            break
        out += d
    return out


# Pipelined requests are answered in order on one connection; HTTP/1.0 closes after one.
def test_pipelining_and_http10(gw_node, tmp_dir):
    a = add_bytes(gw_node, tmp_dir, b"A" * 5000, "a")
    b = add_bytes(gw_node, tmp_dir, b"B" * 7000, "b")
    s = raw(gw_node, (f"GET /content/{a} HTTP/1.1\r\nHost: x\r\n\r\n"
                      f"HEAD /content/{b} HTTP/1.1\r\nHost: x\r\n\r\n"
                      f"GET /content/{b} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .encode(), timeout=5)
    reply = recv_all(s)
    s.close()
    parts = reply.split(b"HTTP/1.1 200 OK")
    assert len(parts) == 4, reply[:500]
    assert b"A" * 5000 in parts[1] and b"B" not in parts[1]
    assert b"Content-Length: 7000" in parts[2] and b"B" * 10 not in parts[2]
    assert parts[3].endswith(b"B" * 7000)
    s = raw(gw_node, f"GET /content/{a} HTTP/1.0\r\n\r\n".encode(), timeout=5)
    reply = recv_all(s)  # ends: the server closed
    s.close()
    assert reply.startswith(b"HTTP/1.0 200") and reply.endswith(b"A" * 5000)


# Content-Type and Content-Disposition from ?filename=; If-Range.
def test_filename_and_if_range(gw_node, tmp_dir):
    cid = add_bytes(gw_node, tmp_dir, b"body { color: red }\n")
    res, body = request(gw_node, "GET", f"/content/{cid}?filename=site.css")
    assert res.status == 200 and res.getheader("Content-Type").startswith("text/css")
    assert res.getheader("Content-Disposition") == 'inline; filename="site.css"'
    res, _ = request(gw_node, "GET", f"/content/{cid}?filename=%C3%A9t%C3%A9.json")
    assert res.getheader("Content-Type") == "application/json"
    assert "filename*=UTF-8''%C3%A9t%C3%A9.json" in res.getheader("Content-Disposition")
    res, _ = request(gw_node, "GET", f"/content/{cid}")
    assert res.getheader("Content-Type") == "application/octet-stream"
    res, body = request(gw_node, "GET", f"/content/{cid}",
                        {"Range": "bytes=0-3", "If-Range": f'"{cid}"'})
    assert res.status == 206 and body == b"body"
    res, body = request(gw_node, "GET", f"/content/{cid}",
                        {"Range": "bytes=0-3", "If-Range": '"something-else"'})
    assert res.status == 200 and body == b"body { color: red }\n"


@pytest.fixture
def strict_gw(make_node, tmp_dir):
    cfg = tmp_dir / "gw.toml"
    cfg.write_text("gateway_header_timeout = 1\ngateway_idle_timeout = 2\n"
                   "gateway_max_header_bytes = 2048\ngateway_max_connections = 300\n")
    n = make_node("strict", extra_args=["--config", str(cfg), "--gateway", "127.0.0.1:0"])
    return n


# A header that doesn't arrive in time, an idle keep-alive connection, and a header over the
# limit are closed; none of them holds up anyone else.
def test_timeouts_and_header_limit(strict_gw, tmp_dir):
    import time
    cid = add_bytes(strict_gw, tmp_dir, b"x" * 1000)
    silent = raw(strict_gw, b"", timeout=5)
    trickle = raw(strict_gw, b"GET /content/", timeout=5)
    t0 = time.monotonic()
    assert silent.recv(100) == b""  # closed by the header timeout
    assert trickle.recv(100) == b""
    assert 0.8 < time.monotonic() - t0 < 4
    s = raw(strict_gw, f"GET /content/{cid} HTTP/1.1\r\nHost: x\r\n\r\n".encode(), timeout=6)
    first = s.recv(1 << 16)
    assert first.startswith(b"HTTP/1.1 200")
    t0 = time.monotonic()
    while s.recv(1 << 16):
        pass
    assert 1.5 < time.monotonic() - t0 < 5  # the idle timeout closed it
    s = raw(strict_gw, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 4000 + b"\r\n\r\n")
    assert recv_all(s).startswith(b"HTTP/1.1 431")


# Many idle connections (more than the old thread-per-connection cap of 256) don't lock out a
# real client, who is answered at once; over gateway_max_connections, connections are refused.
def test_many_idle_connections(strict_gw, tmp_dir):
    import time
    cid = add_bytes(strict_gw, tmp_dir, b"y" * 65536)
    idle = [raw(strict_gw, b"", timeout=5) for _ in range(280)]
    t0 = time.monotonic()
    res, body = request(strict_gw, "GET", f"/content/{cid}")
    assert res.status == 200 and len(body) == 65536
    assert time.monotonic() - t0 < 0.5
    extra = [raw(strict_gw, b"", timeout=5) for _ in range(40)]
    refused = sum(1 for s in extra if s.recv(10) == b"")  # closed at once over the limit
    assert refused >= 15, refused
    for s in idle + extra:
        s.close()


# A slow reader slows only itself.
def test_slow_reader_does_not_block_others(gw_node, tmp_dir):
    import time
    data = os.urandom(8 * 1024 * 1024)
    cid = add_bytes(gw_node, tmp_dir, data)
    host, port = gw_node.gateway.rsplit(":", 1)
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.connect((host, int(port)))
    slow.sendall(f"GET /content/{cid} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    slow.recv(100)  # and then reads nothing more
    t0 = time.monotonic()
    for _ in range(5):
        res, body = request(gw_node, "GET", f"/content/{cid}")
        assert res.status == 200 and body == data
    assert time.monotonic() - t0 < 10
    slow.close()


# ---------------------------------------------------------------------------------------------
# fetch on miss


def test_fetch_on_miss_streams_from_the_cluster(make_node, tmp_dir):
    import threading
    seed = make_node("seed")
    other = make_node("other", ["--bootstrap", seed.listen])
    edge = make_node("edge", ["--bootstrap", seed.listen, "--gateway", "127.0.0.1:0",
                              "--metrics", "127.0.0.1:0"])
    data = os.urandom(12 * 1024 * 1024 + 321)
    cid = add_bytes(seed, tmp_dir, data)
    other.cli("cat", cid)  # a second provider
    # A Range into the middle of content the edge never held.
    lo, hi = 5_000_000, 9_000_000
    res, body = request(edge, "GET", f"/content/{cid}", {"Range": f"bytes={lo}-{hi}"})
    assert res.status == 206 and body == data[lo:hi + 1]
    assert res.getheader("Content-Range") == f"bytes {lo}-{hi}/{len(data)}"
    # Many readers at once share the fetch (it goes on in the background).
    results = [None] * 6

    def get(i):
        results[i] = request(edge, "GET", f"/content/{cid}")

    threads = [threading.Thread(target=get, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for res, body in results:
        assert res.status == 200 and body == data
    from test_production import metric, scrape
    m = scrape(edge)
    assert metric(m, "shoal_fetches_total", result="ok") == 1
    assert metric(m, "shoal_gateway_requests_total", code="200") == 6
    # Now it is held: a plain hit.
    assert json.loads(edge.cli("stat", cid, "--json").stdout)["complete"]


def test_miss_with_nobody_to_ask_is_404_at_once(gw_node, make_node):
    import time
    t0 = time.monotonic()
    res, body = request(gw_node, "GET", "/content/" + "cd" * 32)
    assert res.status == 404 and b"knows no node" in body
    assert time.monotonic() - t0 < 1
    # The same for the CLI and the Read RPC.
    t0 = time.monotonic()
    r = gw_node.cli("cat", "cd" * 32, check=False)
    assert r.returncode != 0 and b"knows no node" in r.stderr
    assert time.monotonic() - t0 < 2


def test_miss_with_silent_provider_is_504(make_node, tmp_dir):
    import signal
    import time
    seed = make_node("seed")
    helper = make_node("helper", ["--bootstrap", seed.listen])
    cfg = tmp_dir / "edge.toml"
    cfg.write_text("gateway_max_fetches = 1\n")
    edge = make_node("edge", ["--config", str(cfg), "--bootstrap", seed.listen,
                              "--bootstrap", helper.listen, "--gateway", "127.0.0.1:0",
                              "--fetch-timeout", "3"])
    cid = add_bytes(seed, tmp_dir, os.urandom(300_000))
    # The helper holds the provider record; the seed stops answering anything.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if seed.listen in json.loads(helper.cli("providers", cid, "--json").stdout)["providers"]:
            break
        time.sleep(0.2)
    seed.proc.send_signal(signal.SIGSTOP)
    try:
        import threading
        out = {}
        t = threading.Thread(target=lambda: out.update(r=request(edge, "GET", f"/content/{cid}")))
        t.start()
        time.sleep(0.5)
        # Over gateway_max_fetches (1): another missing ID gets 503 at once.
        res, _ = request(edge, "GET", "/content/" + "ef" * 32)
        assert res.status == 503 and res.getheader("Retry-After") == "1"
        t.join(30)
        res, body = out["r"]
        assert res.status == 504, (body, edge.stderr()[-6000:])
    finally:
        seed.proc.send_signal(signal.SIGCONT)


# ---------------------------------------------------------------------------------------------
# torrents over HTTP, while they download


def test_torrent_file_streams_while_downloading(make_node, tmp_dir):
    import time
    from test_torrent import create_torrent, make_files
    from test_torrent_swarm import lt_seed, status, write_torrent
    src = tmp_dir / "src"
    files = make_files(src, [3_000_000, 2_500_000], seed=31)
    data, ti, v1, v2 = create_torrent(src, "v1", "http://127.0.0.1:9/announce",
                                      piece_length=64 * 1024)
    ses, h, addr = lt_seed(tmp_dir, files, ti, "seed", upload_limit=1_000_000)
    cfg = tmp_dir / "gw.toml"
    cfg.write_text("gateway_torrents = true\n")
    node = make_node("dl", ["--config", str(cfg), "--gateway", "127.0.0.1:0"])
    tfile = write_torrent(tmp_dir, data)
    tid = node.cli("torrent", "add", str(tfile), "--save-path", str(tmp_dir / "dl"),
                   "--peer", addr).stdout.decode().strip()
    listing = json.loads(node.cli("torrent", "files", tid, "--json").stdout)["files"]
    by_size = {f["size"]: f for f in listing}
    second = by_size[2_500_000]
    rel = [k for k, v in files.items() if len(v) == 2_500_000][0]
    want = files[rel]
    # Into the middle of the second file, long before the download is done (~5.5 s at 1 MB/s).
    lo, hi = 1_000_000, 1_700_000
    t0 = time.monotonic()
    try:
        res, body = request(node, "GET", f"/torrent/{tid}/{second['path']}",
                            {"Range": f"bytes={lo}-{hi}"})
    except Exception:
        print("returncode", node.proc.poll())
        print(node.stderr()[-3000:])
        raise
    took = time.monotonic() - t0
    assert res.status == 206 and body == want[lo:hi + 1]
    assert res.getheader("Content-Range") == f"bytes {lo}-{hi}/{len(want)}"
    st = status(node, tid)
    assert st["progress"] < 1.0, (took, st["progress"])  # served before the end
    # `torrent cat` waits too.
    first = by_size[3_000_000]
    got = node.cli("torrent", "cat", tid, first["path"], "--offset", "2000000", "--length",
                   "500000", timeout=60).stdout
    rel1 = [k for k, v in files.items() if len(v) == 3_000_000][0]
    assert got == files[rel1][2_000_000:2_500_000]
    # Not waiting: a piece not there yet is UNAVAILABLE at once (if any is still missing).
    # Traversal and unknown paths never reach the torrent.
    assert request(node, "GET", f"/torrent/{tid}/../../etc/passwd")[0].status in (400, 404)
    assert request(node, "GET", f"/torrent/{tid}/a%2F..%2F..%2Fb")[0].status == 400
    assert request(node, "GET", f"/torrent/{tid}/no/such/file")[0].status == 404
    res, body = request(node, "GET", f"/torrent/{tid}/{second['path']}")
    assert res.status == 200 and body == want
    assert res.getheader("Content-Type") == "application/octet-stream"


def test_torrents_are_not_served_by_default(gw_node):
    res, body = request(gw_node, "GET", "/torrent/" + "ab" * 20 + "/x")
    assert res.status == 404 and b"gateway_torrents" in body
