"""Running a node in production: API tokens and roles (CLI and Python grpcio), TLS and mTLS,
path roots, the cluster key, Prometheus metrics and health endpoints, JSON logs."""
import hashlib
import json
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from conftest import SHOAL, SHOALD, Node
from test_fetch import lt_session, wait_seeding

ADMIN = "admin-token-" + "a" * 20
READER = "reader-token-" + "r" * 20


def write_tokens(tmp_dir):
    p = tmp_dir / "tokens"
    p.write_text(f"# operators\n{ADMIN}\n{READER} read\n")
    return p


def http_get(url, timeout=5):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def scrape(node):
    status, text = http_get(f"http://{node.metrics}/metrics")
    assert status == 200
    return text


def metric(text, name, **labels):
    """The value of one sample of the exposition `text` (0 if absent)."""
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$', line)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        if all(got.get(k) == v for k, v in labels.items()):
            return float(m.group(4))
    return 0.0


# ---------------------------------------------------------------------------------------------
# tokens and roles


def test_tokens_and_roles_from_the_cli(make_node, tmp_dir):
    node = make_node(extra_args=["--api-token-file", str(write_tokens(tmp_dir))])
    f = tmp_dir / "f"
    f.write_bytes(b"some bytes" * 1000)
    # No token: refused, one line on stderr.
    res = node.cli("add", str(f), check=False)
    assert res.returncode != 0
    err = res.stderr.decode()
    assert "needs a token" in err and err.count("\n") == 1
    # A wrong token.
    node.token = "not-a-token-of-this-node"
    res = node.cli("ls", check=False)
    assert res.returncode != 0 and "not valid" in res.stderr.decode()
    # A read token may read, not write.
    node.token = READER
    res = node.cli("add", str(f), check=False)
    assert res.returncode != 0 and "admin" in res.stderr.decode()
    node.token = ADMIN
    cid = node.cli("add", str(f)).stdout.decode().strip()
    node.token = READER
    assert node.cli("cat", cid).stdout == f.read_bytes()
    assert json.loads(node.cli("stat", cid, "--json").stdout)["id"] == cid
    node.cli("ls")
    node.cli("node", "info")
    node.cli("torrent", "ls")
    for admin_only in (["pin", cid], ["rm", cid], ["torrent", "limit", "--up", "1000"],
                       ["config", "show"]):
        res = node.cli(*admin_only, check=False)
        assert res.returncode != 0, admin_only
        assert "admin" in res.stderr.decode(), admin_only
    # --api-token-file sends the file's first token (the admin one here).
    node.token = None
    node.cli_args = ["--api-token-file", str(tmp_dir / "tokens")]
    node.cli("pin", cid)
    # The node logged the refusals with the peer's address, never a token.
    log = node.stderr()
    assert "without a token refused" in log and "127.0.0.1:" in log
    assert READER not in log and ADMIN not in log and "not-a-token" not in log


def test_tokens_from_python_grpcio(make_node, tmp_dir):
    import grpc
    from shoal.v1 import shoal_pb2, shoal_pb2_grpc
    node = make_node(extra_args=["--api-token-file", str(write_tokens(tmp_dir))])
    ch = grpc.insecure_channel(node.api)
    content = shoal_pb2_grpc.ContentServiceStub(ch)
    nodes = shoal_pb2_grpc.NodeServiceStub(ch)
    with pytest.raises(grpc.RpcError) as e:
        nodes.GetInfo(shoal_pb2.GetInfoRequest())
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as e:
        nodes.GetInfo(shoal_pb2.GetInfoRequest(), metadata=[("authorization", "Basic x")])
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
    info = nodes.GetInfo(shoal_pb2.GetInfoRequest(),
                         metadata=[("authorization", f"Bearer {READER}")])
    assert info.node_id == node.node_id
    with pytest.raises(grpc.RpcError) as e:
        content.Pin(shoal_pb2.PinRequest(id="ab" * 32),
                    metadata=[("authorization", f"Bearer {READER}")])
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # Admin passes the check (and the node answers for the unknown ID).
    with pytest.raises(grpc.RpcError) as e:
        content.Pin(shoal_pb2.PinRequest(id="ab" * 32),
                    metadata=[("authorization", f"Bearer {ADMIN}")])
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    # The configuration is for admins: it names the files that hold the secrets.
    with pytest.raises(grpc.RpcError) as e:
        nodes.GetConfig(shoal_pb2.GetConfigRequest(),
                        metadata=[("authorization", f"Bearer {READER}")])
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    toml = nodes.GetConfig(shoal_pb2.GetConfigRequest(),
                           metadata=[("authorization", f"Bearer {ADMIN}")]).toml
    assert f"api_token_file = '{tmp_dir / 'tokens'}'" in toml and ADMIN not in toml
    # The standard health service takes no token (Kubernetes probes send none). Called
    # generically: Debian's grpcio has no grpc_health module. HealthCheckResponse{status:
    # SERVING} is field 1 = 1.
    check = ch.unary_unary("/grpc.health.v1.Health/Check",
                           request_serializer=lambda b: b, response_deserializer=lambda b: b)
    assert check(b"") == b"\x08\x01"


def test_non_loopback_api_needs_tokens_or_insecure(tmp_dir):
    res = subprocess.run([SHOALD, "--data-dir", str(tmp_dir / "d"), "--api", "0.0.0.0:0",
                          "--listen", "127.0.0.1:0", "--dht-routers", ""],
                         capture_output=True, timeout=30)
    assert res.returncode != 0
    err = res.stderr.decode()
    assert "not loopback" in err and "--api-token-file" in err and err.count("\n") == 1
    # A malformed token file is refused at start, naming the line.
    bad = tmp_dir / "bad-tokens"
    bad.write_text("tok-0000000000000000 superuser\n")
    res = subprocess.run([SHOALD, "--data-dir", str(tmp_dir / "d"), "--api", "127.0.0.1:0",
                          "--listen", "127.0.0.1:0", "--dht-routers", "",
                          "--api-token-file", str(bad)], capture_output=True, timeout=30)
    assert res.returncode != 0 and "line 1" in res.stderr.decode()


def test_api_insecure_allows_any_address(make_node):
    node = make_node(extra_args=["--api", "0.0.0.0:0", "--api-insecure"])
    node.api = "127.0.0.1:" + node.api.rsplit(":", 1)[1]
    node.cli("ls")


# ---------------------------------------------------------------------------------------------
# TLS and mTLS


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture
def pki(tmp_dir):
    """A CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    d = tmp_dir / "pki"
    d.mkdir()
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
            "ca.crt", "-days", "2", "-subj", "/CN=Shoal test CA", cwd=d)
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name in ("server", "client"):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out",
                f"{name}.csr", "-subj", f"/CN={name}", cwd=d)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-extfile", "san.ext",
                cwd=d)
    # A second CA, whose client certificate the node must refuse.
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "other.key", "-out",
            "other.crt", "-days", "2", "-subj", "/CN=Other", cwd=d)
    return d


def test_api_over_tls(make_node, tmp_dir, pki):
    node = make_node(extra_args=["--api-tls-cert", str(pki / "server.crt"),
                                 "--api-tls-key", str(pki / "server.key"),
                                 "--api-token-file", str(write_tokens(tmp_dir))])
    node.token = ADMIN
    # Plaintext against a TLS API fails; TLS with the CA works, by prefix or by --api-ca.
    assert node.cli("ls", check=False, timeout=30).returncode != 0
    node.api_scheme = "https://"
    node.cli_args = ["--api-ca", str(pki / "ca.crt")]
    node.cli("ls")
    node.api_scheme = "tls://"
    node.cli("node", "info")
    node.api_scheme = ""
    node.cli("ls")  # --api-ca alone implies TLS
    # A CA that did not sign the server's certificate.
    node.cli_args = ["--api-ca", str(pki / "other.crt")]
    assert node.cli("ls", check=False, timeout=30).returncode != 0
    # Python grpcio over TLS, with the token.
    import grpc
    from shoal.v1 import shoal_pb2, shoal_pb2_grpc
    creds = grpc.ssl_channel_credentials((pki / "ca.crt").read_bytes())
    ch = grpc.secure_channel(node.api, creds)
    info = shoal_pb2_grpc.NodeServiceStub(ch).GetInfo(
        shoal_pb2.GetInfoRequest(), metadata=[("authorization", f"Bearer {ADMIN}")])
    assert info.node_id == node.node_id


def test_bad_tls_files_are_refused_at_start(tmp_dir, pki):
    def start(cert, key):
        return subprocess.run([SHOALD, "--data-dir", str(tmp_dir / "d"), "--api", "127.0.0.1:0",
                               "--listen", "127.0.0.1:0", "--dht-routers", "",
                               "--api-tls-cert", str(cert), "--api-tls-key", str(key)],
                              capture_output=True, timeout=30)
    res = start(pki / "san.ext", pki / "server.key")
    assert res.returncode != 0 and b"holds no PEM certificate" in res.stderr
    res = start(pki / "server.crt", pki / "san.ext")
    assert res.returncode != 0 and b"no PEM private key" in res.stderr
    res = start(pki / "server.crt", pki / "client.key")
    assert res.returncode != 0 and b"is not the key of the certificate" in res.stderr


def test_api_mtls_requires_a_client_certificate(make_node, pki):
    node = make_node(extra_args=["--api-tls-cert", str(pki / "server.crt"),
                                 "--api-tls-key", str(pki / "server.key"),
                                 "--api-tls-client-ca", str(pki / "ca.crt")])
    node.api_scheme = "https://"
    node.cli_args = ["--api-ca", str(pki / "ca.crt")]
    assert node.cli("ls", check=False, timeout=30).returncode != 0
    node.cli_args += ["--api-cert", str(pki / "client.crt"), "--api-key", str(pki / "client.key")]
    node.cli("ls")
    # A client certificate from another CA is refused.
    node.cli_args = ["--api-ca", str(pki / "ca.crt"), "--api-cert", str(pki / "other.crt"),
                     "--api-key", str(pki / "other.key")]
    assert node.cli("ls", check=False, timeout=30).returncode != 0


# ---------------------------------------------------------------------------------------------
# path roots


def test_path_roots_confine_add_by_path_and_save_paths(make_node, tmp_dir):
    root = tmp_dir / "allowed"
    (root / "sub").mkdir(parents=True)
    outside = tmp_dir / "outside"
    outside.mkdir()
    (root / "sub" / "ok.bin").write_bytes(b"inside" * 100)
    (outside / "secret").write_bytes(b"secret" * 100)
    os.symlink(outside / "secret", root / "link-out")
    os.symlink(root / "sub" / "ok.bin", outside / "link-in")
    os.symlink(outside, root / "dir-out")
    node = make_node(extra_args=["--path-root", str(root), "--path-root",
                                 str(tmp_dir / "also")])
    node.cli("add", "--by-path", str(root / "sub" / "ok.bin"))
    node.cli("add", "--by-path", str(outside / "link-in"))  # leads inside
    for bad in (outside / "secret", root / "link-out", root / "dir-out" / "secret",
                root / "sub" / ".." / ".." / "outside" / "secret", "/etc/passwd"):
        res = node.cli("add", "--by-path", str(bad), check=False)
        assert res.returncode != 0, bad
        err = res.stderr.decode()
        assert "path_roots" in err and "outside" in err, err
    # Streamed adds are not file access: they still work.
    node.cli("add", "-", input=b"streamed")
    # Torrent save paths.
    import libtorrent as lt
    src = tmp_dir / "src"
    src.mkdir()
    (src / "x.bin").write_bytes(os.urandom(100_000))
    fs = lt.file_storage()
    lt.add_files(fs, str(src / "x.bin"))
    ct = lt.create_torrent(fs, 16384)
    lt.set_piece_hashes(ct, str(src))
    tfile = tmp_dir / "t.torrent"
    tfile.write_bytes(lt.bencode(ct.generate()))
    res = node.cli("torrent", "add", str(tfile), "--save-path", str(outside), "--paused",
                   check=False)
    assert res.returncode != 0 and "path_roots" in res.stderr.decode()
    res = node.cli("torrent", "add", str(tfile), "--save-path", str(root / "dir-out"),
                   "--paused", check=False)
    assert res.returncode != 0
    node.cli("torrent", "add", str(tfile), "--save-path", str(root / "dl"), "--paused")


# ---------------------------------------------------------------------------------------------
# the cluster key


def test_keygen(tmp_dir):
    out = subprocess.run([SHOAL, "keygen"], capture_output=True, timeout=10, check=True)
    assert re.fullmatch(rb"[0-9a-f]{64}\n", out.stdout)
    key = tmp_dir / "cluster.key"
    subprocess.run([SHOAL, "keygen", "-o", str(key)], check=True, timeout=10)
    assert re.fullmatch(r"[0-9a-f]{64}\n", key.read_text())
    assert (key.stat().st_mode & 0o777) == 0o600
    # Never overwritten.
    res = subprocess.run([SHOAL, "keygen", "-o", str(key)], capture_output=True, timeout=10)
    assert res.returncode != 0 and b"cannot create" in res.stderr


def test_cluster_key_keeps_outsiders_out(make_node, tmp_dir):
    key = tmp_dir / "cluster.key"
    key.write_text(os.urandom(32).hex() + "\n")
    other = tmp_dir / "other.key"
    other.write_text(os.urandom(32).hex() + "\n")
    a = make_node("a", ["--cluster-key-file", str(key), "--metrics", "127.0.0.1:0"])
    b = make_node("b", ["--cluster-key-file", str(key), "--bootstrap", a.listen])
    wrong = make_node("wrong", ["--cluster-key-file", str(other), "--bootstrap", a.listen,
                                "--fetch-timeout", "3"])
    keyless = make_node("keyless", ["--bootstrap", a.listen, "--fetch-timeout", "3"])
    data = os.urandom(3 * 1024 * 1024 + 7)
    (tmp_dir / "data").write_bytes(data)
    cid = a.cli("add", str(tmp_dir / "data")).stdout.decode().strip()
    # A member with the key fetches by ID through the cluster DHT.
    assert hashlib.sha256(b.cli("cat", cid, timeout=60).stdout).digest() == \
        hashlib.sha256(data).digest()
    # Outsiders know no cluster node, see no provider, and can't fetch by ID.
    for n in (wrong, keyless):
        info = json.loads(n.cli("node", "info", "--json").stdout)
        assert info["dht_nodes_cluster"] == 0, info
        assert json.loads(n.cli("providers", cid, "--json").stdout)["providers"] == []
        res = n.cli("cat", cid, check=False, timeout=60)
        assert res.returncode != 0
    # ... and never entered the members' tables or provider records.
    providers = json.loads(b.cli("providers", cid, "--json").stdout)["providers"]
    assert a.listen in providers and wrong.listen not in providers
    assert keyless.listen not in providers
    assert json.loads(a.cli("node", "info", "--json").stdout)["dht_nodes_cluster"] == 1
    # Their messages were dropped and counted.
    assert metric(scrape(a), "shoal_dht_unauthenticated_total") > 0
    # Standard BitTorrent is unaffected: libtorrent fetches the content by v2 magnet.
    import libtorrent as lt
    ses = lt_session()
    params = lt.parse_magnet_uri(f"magnet:?xt=urn:btmh:1220{cid}&x.pe={a.listen}")
    params.save_path = str(tmp_dir / "lt")
    h = ses.add_torrent(params)
    wait_seeding(h, timeout=60)
    st = json.loads(a.cli("stat", cid, "--json").stdout)
    assert (tmp_dir / "lt" / st["pieces_root"]).read_bytes() == data


def test_bad_cluster_key_file_is_refused(tmp_dir):
    bad = tmp_dir / "bad.key"
    bad.write_text("not hex\n")
    res = subprocess.run([SHOALD, "--data-dir", str(tmp_dir / "d"), "--api", "127.0.0.1:0",
                          "--listen", "127.0.0.1:0", "--dht-routers", "",
                          "--cluster-key-file", str(bad)], capture_output=True, timeout=30)
    assert res.returncode != 0 and b"cluster key" in res.stderr


# ---------------------------------------------------------------------------------------------
# metrics, health, logs


def test_metrics_follow_a_transfer(make_node, tmp_dir):
    a = make_node("a", ["--metrics", "127.0.0.1:0", "--gateway", "127.0.0.1:0"])
    b = make_node("b", ["--metrics", "127.0.0.1:0", "--bootstrap", a.listen])
    data = os.urandom(2 * 1024 * 1024 + 3)
    (tmp_dir / "data").write_bytes(data)
    cid = a.cli("add", str(tmp_dir / "data")).stdout.decode().strip()
    assert b.cli("cat", cid, timeout=60).stdout == data
    status, body = http_get(f"http://{a.gateway}/content/{cid}")
    assert status == 200
    # Not held, nobody provides it: 404 once the provider lookup found nobody.
    status404, body404 = http_get(f"http://{a.gateway}/content/{'0' * 64}")
    assert status404 == 404, (status404, body404)
    ta, tb = scrape(a), scrape(b)
    assert metric(ta, "shoal_build_info") == 1
    assert metric(ta, "shoal_contents") == 1 and metric(tb, "shoal_contents") == 1
    assert metric(ta, "shoal_store_used_bytes") >= len(data)
    assert metric(ta, "shoal_peer_bytes_sent_total", kind="cdn") >= len(data)
    assert metric(tb, "shoal_peer_bytes_received_total", kind="cdn") >= len(data)
    assert metric(tb, "shoal_pieces_verified_total", kind="cdn") >= 1
    assert metric(tb, "shoal_fetches_total", result="ok") == 1
    assert metric(tb, "shoal_fetch_duration_seconds_count") == 1
    assert metric(tb, "shoal_dht_lookups_total", instance="cluster", result="found") >= 1
    assert metric(ta, "shoal_dht_nodes", instance="cluster") == 1
    assert metric(ta, "shoal_gateway_requests_total", code="200") == 1
    assert metric(ta, "shoal_gateway_requests_total", code="404") == 1
    # Bodies of every response: the content and the 404 text.
    assert metric(ta, "shoal_gateway_bytes_sent_total") == len(data) + len(body404.encode())
    assert metric(ta, "shoal_api_calls_total", method="ContentService/Add", code="OK") == 1
    assert metric(tb, "shoal_api_calls_total", method="ContentService/Read", code="OK") == 1
    assert metric(ta, "shoal_torrents", state="seeding") == 0
    if shutil.which("promtool"):
        res = subprocess.run(["promtool", "check", "metrics"], input=ta.encode(),
                             capture_output=True, timeout=30)
        assert res.returncode == 0, res.stdout + res.stderr
    # Health endpoints: a seed with no bootstrap is ready; so is b, which has a cluster node.
    assert http_get(f"http://{a.metrics}/healthz")[0] == 200
    assert http_get(f"http://{a.metrics}/readyz")[0] == 200
    assert http_get(f"http://{b.metrics}/readyz")[0] == 200
    assert http_get(f"http://{a.metrics}/nope")[0] == 404


def test_readyz_waits_for_the_cluster(make_node, tmp_dir):
    # Bootstrapping from an address where nobody answers: alive, not ready.
    lonely = make_node("lonely", ["--metrics", "127.0.0.1:0", "--bootstrap", "127.0.0.1:9"])
    assert http_get(f"http://{lonely.metrics}/healthz")[0] == 200
    status, body = http_get(f"http://{lonely.metrics}/readyz")
    assert status == 503 and "cluster" in body


def test_metrics_address_must_differ_from_gateway(tmp_dir):
    res = subprocess.run([SHOALD, "--data-dir", str(tmp_dir / "d"), "--api", "127.0.0.1:0",
                          "--listen", "127.0.0.1:0", "--dht-routers", "",
                          "--gateway", "127.0.0.1:18080", "--metrics", "127.0.0.1:18080"],
                         capture_output=True, timeout=30)
    assert res.returncode != 0 and b"different" in res.stderr


def test_json_logs(make_node, tmp_dir):
    node = make_node(extra_args=["--log-format", "json", "--log-level", "debug",
                                 "--api-token-file", str(write_tokens(tmp_dir))])
    node.cli("ls", check=False)  # refused: logged with the peer's address
    node.token = ADMIN
    (tmp_dir / "f").write_bytes(b"x" * 100_000)
    node.cli("add", str(tmp_dir / "f"))
    lines = [line for line in node.stderr().splitlines() if line.strip()]
    assert len(lines) >= 3
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    for r in records:
        assert {"time", "level", "component", "message"} <= set(r), r
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", r["time"])
    refused = [r for r in records if "without a token" in r["message"]]
    assert refused and refused[0]["component"] == "api"
    assert refused[0]["peer"].startswith("127.0.0.1:")
    assert refused[0]["level"] == "warning"


def test_bootstrap_name_is_retried_until_the_node_is_up(make_node, tmp_dir):
    """--bootstrap with a host name ("localhost": /etc/hosts, no DNS) for a node that starts
    later: the name is resolved and tried again, with a backoff, while the table is empty."""
    from test_torrent import free_port
    port = free_port()
    late = make_node("late", ["--bootstrap", f"localhost:{port}", "--metrics", "127.0.0.1:0"])
    assert http_get(f"http://{late.metrics}/readyz")[0] == 503
    time.sleep(2)
    seed = make_node("seed", ["--listen", f"127.0.0.1:{port}"])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if json.loads(late.cli("node", "info", "--json").stdout)["dht_nodes_cluster"] > 0:
            break
        time.sleep(0.2)
    else:
        raise AssertionError("the late node never joined:\n" + late.stderr()[-3000:])
    assert http_get(f"http://{late.metrics}/readyz")[0] == 200
    assert seed.listen == f"127.0.0.1:{port}"


# `shoal config show`: flags, the config file and defaults merged, as TOML that --config takes.
def test_config_show_prints_what_restarts_the_node_alike(make_node, tmp_dir):
    cfg = tmp_dir / "in.toml"
    cfg.write_text('capacity = "1GiB"\nshare_ratio_limit = 1.5\nencryption = "off"\n')
    node = make_node(extra_args=["--config", str(cfg), "--encryption", "require", "--utp", "off",
                                 "--active-seeds", "7"])
    out = node.cli("config", "show").stdout.decode()
    for line in ("capacity = 1073741824", "share_ratio_limit = 1.5", "encryption = 'require'",
                 "utp = false", "tcp = true", "active_seeds = 7", "active_downloads = 3",
                 "dht_routers = []", "lsd = false"):
        assert line in out.split("\n"), (line, out)
    printed = tmp_dir / "printed.toml"
    printed.write_text(out)
    again = make_node("again", extra_args=["--config", str(printed)])
    theirs = again.cli("config", "show").stdout.decode()

    def without_data_dir(text):
        return [line for line in text.split("\n") if not line.startswith("data_dir")]
    assert without_data_dir(theirs) == without_data_dir(out)
