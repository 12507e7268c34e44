"""The deployment files under deploy/: they parse, fit together (names, ports, secrets, probes),
use only flags shoald has, keep the API behind tokens, and the example config and health check
work with the real shoald.

Run with /usr/bin/python3 -m pytest (Debian's, with python3-yaml). SHOALD and SHOAL name the built
binaries; the checks that run them skip without them.
"""
import os
import pathlib
import re
import shlex
import http.server
import shutil
import socket
import subprocess
import threading
import time

import pytest
import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "kubernetes"
HEX64 = re.compile(r"[0-9a-f]{64}\n")


def shoald_path():
    path = os.environ.get("SHOALD", "")
    if not path or not os.path.isfile(path):
        pytest.skip(f"shoald not found (set SHOALD): {path or '(unset)'}")
    return path


def shoal_path():
    path = os.environ.get("SHOAL", "")
    if not path or not os.path.isfile(path):
        pytest.skip(f"shoal not found (set SHOAL): {path or '(unset)'}")
    return path


def load_yaml(path):
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def k8s_objects():
    objects = {}
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in load_yaml(path):
            objects[(doc["kind"], doc["metadata"]["name"])] = (doc, path.name)
    return objects


def k8s_object(kind, name=None):
    found = [doc for (k, n), (doc, _) in k8s_objects().items()
             if k == kind and (name is None or n == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''} in deploy/kubernetes"
    return found[0]


def shoald_container():
    spec = k8s_object("StatefulSet")["spec"]["template"]["spec"]
    [container] = [c for c in spec["containers"] if c["name"] == "shoald"]
    return container


def flag_values(argv, flag):
    return [v for f, v in zip(argv, argv[1:]) if f == flag]


def is_loopback(host):
    return host in ("localhost", "::1") or host.startswith("127.")


def assert_api_needs_token(argv, where):
    for address in flag_values(argv, "--api"):
        host = address.rsplit(":", 1)[0].strip("[]")
        if not is_loopback(host):
            assert flag_values(argv, "--api-token-file"), (
                f"{where}: the API on {address} without --api-token-file")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- Every YAML file -------------------------------------------------------------------------


def test_every_yaml_file_parses():
    """Every YAML file under deploy/ parses and holds at least one document."""
    paths = sorted(DEPLOY.rglob("*.yaml")) + sorted(DEPLOY.rglob("*.yml"))
    assert paths
    for path in paths:
        assert load_yaml(path), f"{path} is empty"


# ---- compose ---------------------------------------------------------------------------------


def compose():
    return load_yaml(DEPLOY / "compose.yaml")[0]


def test_compose_nodes_form_a_cluster_with_secrets_and_health_checks():
    """Three nodes with health checks and both secrets, no public DHT, bootstrapping by service
    name from nodes that exist, starting after a healthy node1, published on loopback only."""
    c = compose()
    services = c["services"]
    assert sorted(services) == ["node1", "node2", "node3"]
    for name, svc in services.items():
        argv = svc["command"]
        assert svc["healthcheck"]["test"], name
        assert set(svc["secrets"]) == {"shoal_api_tokens", "shoal_cluster_key"}, name
        assert flag_values(argv, "--dht-routers") == [""], name
        peers = flag_values(argv, "--bootstrap")
        assert peers, f"{name} has no --bootstrap"
        for peer in peers:
            host, port = peer.rsplit(":", 1)
            assert host in services and host != name and port == "6881", peer
        for conditions in (svc.get("depends_on") or {}).values():
            assert conditions["condition"] == "service_healthy", name
        for port in svc.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
        assert_api_needs_token(argv, f"compose {name}")
    assert services["node2"]["depends_on"] == {"node1": {"condition": "service_healthy"}}
    for secret in c["secrets"].values():
        assert secret["file"].startswith("./secrets/"), secret


def test_secrets_are_ignored_by_git_and_docker():
    """deploy/secrets/ is neither committed nor sent into image builds."""
    r = subprocess.run(["git", "-C", str(REPO), "check-ignore", "-q",
                        "deploy/secrets/api_tokens"])
    assert r.returncode == 0, "deploy/secrets/ is not in .gitignore"
    assert "deploy/secrets/" in (REPO / ".dockerignore").read_text().split()


def test_make_secrets_writes_what_compose_and_kubernetes_read(tmp_path):
    """make-secrets.sh writes a cluster key and token files in shoald's formats, keeps them on a
    second run, and writes every file compose and the Kubernetes Secret command name."""
    out = tmp_path / "secrets"
    subprocess.run(["bash", str(DEPLOY / "make-secrets.sh"), str(out)], check=True,
                   capture_output=True)
    first = {p.name: p.read_text() for p in out.iterdir()}
    subprocess.run(["bash", str(DEPLOY / "make-secrets.sh"), str(out)], check=True,
                   capture_output=True)
    assert {p.name: p.read_text() for p in out.iterdir()} == first
    assert oct(out.stat().st_mode & 0o777) == "0o700"
    assert HEX64.fullmatch(first["cluster_key"])
    entries = [line.split() for line in first["api_tokens"].splitlines()
               if line.strip() and not line.startswith("#")]
    assert {e[1] for e in entries} == {"admin", "read"} and all(len(e) == 2 for e in entries)
    assert [first["admin_token"].strip(), "admin"] in entries
    for secret in compose()["secrets"].values():
        assert pathlib.PurePath(secret["file"]).name in first, secret
    template = (K8S / "secret.template.yaml").read_text()
    for name in re.findall(r"--from-file=\w+=deploy/secrets/(\w+)", template):
        assert name in first, name


# ---- Kubernetes ------------------------------------------------------------------------------


def test_kubernetes_statefulset_bootstraps_from_the_headless_service():
    """The StatefulSet starts pods in parallel behind a headless service that publishes
    not-ready pods, joins no public DHT and bootstraps from shoal-0..2 by their DNS names."""
    sts = k8s_object("StatefulSet")
    headless = k8s_object("Service", sts["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["publishNotReadyAddresses"] is True
    assert sts["spec"]["podManagementPolicy"] == "Parallel"
    container = shoald_container()
    argv = container["command"] + container["args"]
    assert flag_values(argv, "--dht-routers") == [""]
    name, svc = sts["metadata"]["name"], headless["metadata"]["name"]
    assert flag_values(argv, "--bootstrap") == [
        f"{name}-{i}.{svc}.$(POD_NAMESPACE).svc.cluster.local:6881" for i in range(3)]
    env = {e["name"]: e for e in container["env"]}
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert flag_values(argv, "--path-root") == ["/data"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts["/data"] in {t["metadata"]["name"] for t in sts["spec"]["volumeClaimTemplates"]}


def test_kubernetes_probes_resources_and_security():
    """Liveness checks /healthz and readiness /readyz on the metrics port; the pod has requests
    and limits, runs as non-root with a read-only root and no capabilities."""
    sts = k8s_object("StatefulSet")
    container = shoald_container()
    argv = container["command"] + container["args"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    [metrics] = flag_values(argv, "--metrics")
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        port = container[probe]["httpGet"]["port"]
        assert ports[port] == int(metrics.rsplit(":", 1)[1]), probe
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][kind]), kind
    pod_security = sts["spec"]["template"]["spec"]["securityContext"]
    security = container["securityContext"]
    assert pod_security["runAsNonRoot"] is True and pod_security["runAsUser"] != 0
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]


def test_kubernetes_secret_and_services_match_the_pods():
    """The API needs the token file, which (like the cluster key) comes from the Secret's keys;
    the services and the disruption budget select the pods and name their ports."""
    sts = k8s_object("StatefulSet")
    pod = sts["spec"]["template"]
    container = shoald_container()
    argv = container["command"] + container["args"]
    assert_api_needs_token(argv, "the StatefulSet")
    secret = k8s_object("Secret")
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    for flag, key in (("--api-token-file", "api_tokens"), ("--cluster-key-file", "cluster_key")):
        [path] = flag_values(argv, flag)
        directory, name = path.rsplit("/", 1)
        [volume] = [n for n, m in mounts.items() if m == directory]
        assert volumes[volume]["secret"]["secretName"] == secret["metadata"]["name"], flag
        assert name == key and key in secret["stringData"], flag
    labels = pod["metadata"]["labels"]
    port_names = {p["name"] for p in container["ports"]}
    for (kind, _), (doc, _) in k8s_objects().items():
        if kind == "Service":
            assert doc["spec"]["selector"].items() <= labels.items()
            for port in doc["spec"]["ports"]:
                assert port.get("targetPort", port["name"]) in port_names, port
        elif kind == "PodDisruptionBudget":
            assert doc["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_kustomization_lists_every_manifest_but_the_secret_template():
    """kustomization.yaml names each manifest except the Secret template, and builds."""
    kustomization = load_yaml(K8S / "kustomization.yaml")[0]
    manifests = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == manifests - {"secret.template.yaml"}
    if shutil.which("kubectl") is None:
        return
    r = subprocess.run(["kubectl", "kustomize", str(K8S)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr


# ---- systemd ---------------------------------------------------------------------------------


def unit_settings():
    settings, text = {}, (DEPLOY / "shoald.service").read_text().replace("\\\n", " ")
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, value = line.split("=", 1)
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def test_systemd_unit_is_hardened():
    """The unit runs shoald as shoal, confined to its state directory, with the hardening the
    deployment guide promises."""
    s = unit_settings()
    expected = {
        "User": "shoal", "NoNewPrivileges": "true", "ProtectSystem": "strict",
        "ProtectHome": "true", "PrivateTmp": "true", "PrivateDevices": "true",
        "ProtectKernelTunables": "true", "ProtectKernelModules": "true",
        "ProtectKernelLogs": "true", "ProtectControlGroups": "true",
        "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX AF_NETLINK",
        "RestrictNamespaces": "true", "LockPersonality": "true",
        "MemoryDenyWriteExecute": "true", "CapabilityBoundingSet": "",
        "StateDirectory": "shoal", "LimitNOFILE": "1048576",
    }
    for key, value in expected.items():
        assert s.get(key, [None])[-1] == value, key
    assert "@system-service" in s["SystemCallFilter"]
    argv = shlex.split(s["ExecStart"][-1])
    assert flag_values(argv, "--config") == ["/etc/shoal/shoald.toml"]
    assert flag_values(argv, "--path-root") == ["/var/lib/shoal"]
    assert flag_values(argv, "--data-dir") == ["/var/lib/shoal"]


def test_systemd_unit_verifies(tmp_path):
    """systemd-analyze verifies the unit and rates its exposure 2.0 or less; systemd-sysusers
    accepts the sysusers.d file."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    unit = tmp_path / "shoald.service"
    # verify wants ExecStart's program to exist.
    program = os.environ.get("SHOALD") if os.path.isfile(os.environ.get("SHOALD", "")) \
        else "/bin/true"
    unit.write_text((DEPLOY / "shoald.service").read_text()
                    .replace("/usr/local/bin/shoald", program))
    r = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    assert r.returncode == 0 and not r.stderr.strip(), r.stderr
    r = subprocess.run(["systemd-analyze", "security", "--offline=true", "--threshold=20",
                        str(unit)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr
    if shutil.which("systemd-sysusers"):
        (tmp_path / "root" / "etc").mkdir(parents=True)
        r = subprocess.run(["systemd-sysusers", "--dry-run", f"--root={tmp_path / 'root'}",
                            str(DEPLOY / "shoal.sysusers")], capture_output=True, text=True)
        assert r.returncode == 0 and "Creating user 'shoal'" in r.stderr, r.stderr


# ---- The image's health check -----------------------------------------------------------------


def test_healthcheck_passes_only_on_200():
    """shoal-healthcheck exits 0 for a 200 on the path it asks for, non-zero for a 503 or when
    nothing listens."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/healthz" else 503)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    address = f"127.0.0.1:{server.server_address[1]}"

    def check(path, addr=address):
        return subprocess.run(["bash", str(DEPLOY / "healthcheck.sh"), path],
                              env=dict(os.environ, SHOAL_METRICS=addr), capture_output=True,
                              timeout=30).returncode

    try:
        assert check("/healthz") == 0
        assert check("/readyz") != 0
    finally:
        server.shutdown()
        server.server_close()
    assert check("/healthz") != 0


# ---- Against the real shoald -----------------------------------------------------------------


def deploy_shoald_argvs():
    """(where, argv) of each shoald command line in the deployment files."""
    argvs = []
    for name, svc in compose()["services"].items():
        argvs.append((f"compose {name}", svc["command"]))
    container = shoald_container()
    argvs.append(("kubernetes", container["command"] + container["args"]))
    argvs.append(("systemd", shlex.split(unit_settings()["ExecStart"][-1])))
    script = (DEPLOY / "docker-entrypoint.sh").read_text()
    for m in re.finditer(r"args(?:\+)?=\(([^)]*)\)", script):
        argvs.append(("docker-entrypoint.sh", shlex.split(m.group(1))))
    return argvs


def test_deployment_files_use_only_flags_shoald_has():
    """Every flag the deployment files give shoald is in `shoald --help`."""
    help_text = subprocess.run([shoald_path(), "--help"], capture_output=True, text=True,
                               check=True).stdout
    known = set(re.findall(r"--[a-z][a-z0-9-]*", help_text))
    for where, argv in deploy_shoald_argvs():
        unknown = {a for a in argv if a.startswith("--") and a not in known}
        assert not unknown, f"{where}: shoald has no {sorted(unknown)}"


def test_example_config_starts_shoald_with_tls_tokens_and_health(tmp_path):
    """deploy/shoald.toml (its paths moved under a temporary directory, TLS switched on) starts
    shoald; the image's health check passes against its metrics port; the CLI reaches the TLS API
    with --api-ca and a token, and is refused without the token."""
    shoald, shoal = shoald_path(), shoal_path()
    etc, data = tmp_path / "etc", tmp_path / "data"
    (etc / "tls").mkdir(parents=True)
    data.mkdir()
    subprocess.run([shoal, "keygen", "-o", str(etc / "cluster_key")], check=True)
    assert HEX64.fullmatch((etc / "cluster_key").read_text())
    (etc / "api_tokens").write_text("# test\n" + "ab" * 32 + " admin\n" + "cd" * 32 + " read\n")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj",
                    "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", str(etc / "tls" / "api.key"), "-out", str(etc / "tls" / "api.crt")],
                   check=True, capture_output=True)
    config = (DEPLOY / "shoald.toml").read_text()
    config = config.replace('"/etc/shoal/', f'"{etc}/').replace('"/var/lib/shoal"', f'"{data}"')
    config = re.sub(r"^# (api_tls_(cert|key) =)", r"\1", config, flags=re.M)
    # Loopback only: no traffic to the example's addresses.
    config = re.sub(r"^bootstrap = .*$", "bootstrap = []", config, flags=re.M)
    config = re.sub(r'^metrics = ".*"', f'metrics = "127.0.0.1:{free_port()}"', config, flags=re.M)
    (tmp_path / "shoald.toml").write_text(config)
    metrics = re.search(r'^metrics = "(.*)"', config, re.M).group(1)

    proc = subprocess.Popen([shoald, "--config", str(tmp_path / "shoald.toml"),
                             "--api", "127.0.0.1:0", "--listen", "127.0.0.1:0"],
                            stdout=subprocess.PIPE, stderr=open(tmp_path / "stderr", "wb"))
    try:
        line = proc.stdout.readline().decode()
        assert line.startswith("shoald ready"), (tmp_path / "stderr").read_text()
        api = dict(kv.split("=", 1) for kv in line.split()[2:])["api"]
        health = ["bash", str(DEPLOY / "healthcheck.sh"), "/healthz"]
        env = dict(os.environ, SHOAL_METRICS=metrics)
        deadline = time.monotonic() + 10
        while subprocess.run(health, env=env, capture_output=True).returncode != 0:
            assert time.monotonic() < deadline, f"no 200 from http://{metrics}/healthz"
            time.sleep(0.2)
        cli = [shoal, "--api", f"https://{api}", "--api-ca", str(etc / "tls" / "api.crt")]
        env = {k: v for k, v in os.environ.items() if not k.startswith("SHOAL_API")}
        r = subprocess.run(cli + ["--api-token-file", str(etc / "api_tokens"), "node", "info"],
                           env=env, capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        r = subprocess.run(cli + ["node", "info"], env=env, capture_output=True, text=True,
                           timeout=30)
        assert r.returncode != 0, "the API answered without a token"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        proc.stdout.close()
