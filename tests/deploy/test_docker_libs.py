"""The runtime image of deploy/Dockerfile: every shared library that shoald and shoal load comes
from a package its runtime stage installs (or from one of their dependencies, or from what
debian:12-slim already has); it runs as a non-root user with a health check; and it puts the API
on all interfaces only together with a token file.

Run with /usr/bin/python3 -m pytest. SHOALD and SHOAL name the built binaries (tests/CMakeLists.txt
sets them); the library checks skip without them. The package look-ups need dpkg and apt-cache,
so this runs on Debian 12, as the build stage does.
"""
import json
import os
import pathlib
import re
import shlex
import stat
import subprocess
import textwrap

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "deploy" / "Dockerfile"
# Libraries of debian:12-slim itself (Essential: yes), which the runtime stage needn't install.
BASE_PACKAGES = {"libc6", "libstdc++6", "libgcc-s1"}


def parse_dockerfile(path):
    """[(stage, INSTRUCTION, arguments)] with continuation lines joined and comments dropped."""
    instructions, stage, current = [], -1, ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and current):
            continue  # Docker drops comment lines, also inside a continued instruction
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        if current.strip():
            keyword, _, args = current.strip().partition(" ")
            keyword = keyword.upper()
            if keyword == "FROM":
                stage += 1
            instructions.append((stage, keyword, args.strip()))
        current = ""
    return instructions


def runtime_stage():
    instructions = parse_dockerfile(DOCKERFILE)
    last = max(stage for stage, _, _ in instructions)
    return [(keyword, args) for stage, keyword, args in instructions if stage == last]


def apt_packages(stage):
    """The packages that the stage's `apt-get install` commands name."""
    packages = []
    for keyword, args in stage:
        if keyword != "RUN":
            continue
        command = []
        for word in shlex.split(args) + ["&&"]:
            if word not in ("&&", "||", ";", "|"):
                command.append(word)
                continue
            if "apt-get" in command and "install" in command[command.index("apt-get"):]:
                i = command.index("install", command.index("apt-get"))
                packages += [w for w in command[i + 1:] if not w.startswith("-")]
            command = []
    return packages


def exec_form(args):
    """The argv of an exec-form ENTRYPOINT/CMD/HEALTHCHECK CMD (a JSON list), or a shell-form
    command run by /bin/sh -c."""
    try:
        argv = json.loads(args)
        if isinstance(argv, list):
            return argv
    except json.JSONDecodeError:
        pass
    return ["/bin/sh", "-c", args]


def copied_files(stage):
    """{destination in the image: source in the repository} for the stage's COPY of repo files."""
    files = {}
    for keyword, args in stage:
        if keyword != "COPY":
            continue
        words = [w for w in shlex.split(args) if not w.startswith("--")]
        if any(w.startswith("--from") for w in shlex.split(args)) or len(words) != 2:
            continue
        files[words[1]] = REPO / words[0]
    return files


def image_program(stage, name):
    """The repository file that the image runs as `name` (a bare name is looked up in
    /usr/local/bin), or None."""
    copies = copied_files(stage)
    for candidate in (name, f"/usr/local/bin/{name}"):
        if candidate in copies:
            return copies[candidate]
    return None


def binaries():
    paths = [os.environ.get("SHOALD", ""), os.environ.get("SHOAL", "")]
    missing = [p or "(unset)" for p in paths if not p or not os.path.isfile(p)]
    if missing:
        pytest.skip(f"built binaries not found (set SHOALD and SHOAL): {', '.join(missing)}")
    return paths


def ldd_libraries(binary):
    """{soname: resolved path} of every library the dynamic loader maps for `binary`."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    libs, unresolved = {}, []
    for line in out.splitlines():
        line = line.strip()
        m = re.match(r"(\S+) => (\S+) \(0x[0-9a-f]+\)$", line)
        if m:
            libs[m.group(1)] = m.group(2)
        elif "not found" in line:
            unresolved.append(line)
        else:
            m = re.match(r"(/\S+) \(0x[0-9a-f]+\)$", line)  # the loader itself
            if m:
                libs[os.path.basename(m.group(1))] = m.group(1)
    assert not unresolved, f"{binary}: libraries not found on this machine: {unresolved}"
    return libs


def merged_usr_variants(path):
    """The path as given, and as dpkg may have recorded it on the other side of merged /usr."""
    variants = [path]
    for a, b in (("/usr/lib/", "/lib/"), ("/usr/lib64/", "/lib64/")):
        if path.startswith(a):
            variants.append(b + path[len(a):])
        elif path.startswith(b):
            variants.append(a + path[len(b):])
    return variants


def owning_packages(paths):
    """{path: the Debian package that installed it, or None}, from one dpkg -S call."""
    candidates = {}
    for path in paths:
        for p in (path, os.path.realpath(path)):
            for v in merged_usr_variants(p):
                candidates.setdefault(path, [])
                if v not in candidates[path]:
                    candidates[path].append(v)
    everything = sorted({v for vs in candidates.values() for v in vs})
    # Exit status 1 when any candidate is unknown, which the other variants make likely.
    r = subprocess.run(["dpkg", "-S", *everything], capture_output=True, text=True)
    owner = {}
    for line in r.stdout.splitlines():
        owners, sep, path = line.partition(": ")
        if sep and not line.startswith("diversion by"):
            owner[path.strip()] = owners.split(",")[0].strip().split(":")[0]
    return {path: next((owner[v] for v in vs if v in owner), None)
            for path, vs in candidates.items()}


def dependency_closure(packages):
    """The packages, with everything they depend on (Depends and Pre-Depends), recursively."""
    r = subprocess.run(
        ["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests",
         "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances", *packages],
        capture_output=True, text=True)
    assert r.returncode == 0, (
        f"apt-cache depends failed (an unknown package in the Dockerfile, or no package lists: "
        f"run apt-get update): {r.stderr.strip()}")
    closure = set()
    for line in r.stdout.splitlines():
        if line and not line[0].isspace() and not line.startswith("<"):
            closure.add(line.strip().split(":")[0])
    return closure


def test_runtime_packages_provide_every_library():
    """Every library that ldd resolves for shoald and shoal is in a package the runtime stage
    installs, in one of their dependencies, or in debian:12-slim's base."""
    shoald, shoal = binaries()
    listed = apt_packages(runtime_stage())
    assert listed, "the runtime stage installs no packages"
    closure = dependency_closure(listed) | BASE_PACKAGES
    libraries = {}
    for binary in (shoald, shoal):
        for soname, path in ldd_libraries(binary).items():
            # A sanitizer build (scripts/test.sh --sanitize) links ASan's and UBSan's
            # runtimes, which no release image carries.
            if soname.startswith(("libasan.", "libubsan.")):
                continue
            libraries[path] = soname
    owners = owning_packages(libraries)
    unowned, uncovered = [], {}
    for path, soname in libraries.items():
        package = owners[path]
        if package is None:
            unowned.append(f"{soname} ({path})")
        elif package not in closure:
            uncovered.setdefault(package, set()).add(soname)
    assert not unowned, f"libraries no Debian package installed: {unowned}"
    assert not uncovered, (
        "add these packages to the runtime stage of deploy/Dockerfile: " +
        ", ".join(f"{p} (for {', '.join(sorted(s))})" for p, s in sorted(uncovered.items())))


def test_runtime_packages_are_all_loaded():
    """Every package the runtime stage installs, CA certificates aside, provides a library that
    shoald or shoal loads: what the binaries link statically is not installed again."""
    shoald, shoal = binaries()
    listed = set(apt_packages(runtime_stage())) - {"ca-certificates"}
    libraries = {}
    for binary in (shoald, shoal):
        for soname, path in ldd_libraries(binary).items():
            libraries[path] = soname
    loaded = set(owning_packages(libraries).values())
    unused = sorted(listed - loaded)
    assert not unused, f"deploy/Dockerfile's runtime stage installs what nothing loads: {unused}"


def test_runtime_stage_runs_as_non_root_user():
    """The runtime stage ends up running as a user that isn't root."""
    users = [args for keyword, args in runtime_stage() if keyword == "USER"]
    assert users, "the runtime stage has no USER: shoald would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), f"USER {users[-1]} is root"


def test_runtime_stage_has_healthcheck_of_installed_program():
    """The runtime stage has a HEALTHCHECK whose program the image contains."""
    stage = runtime_stage()
    checks = [args for keyword, args in stage if keyword == "HEALTHCHECK"]
    assert checks and checks[-1].upper() != "NONE", "the runtime stage has no HEALTHCHECK"
    m = re.search(r"\bCMD\s+(.*)$", checks[-1])
    assert m, f"HEALTHCHECK without CMD: {checks[-1]}"
    argv = exec_form(m.group(1))
    if argv[0] != "/bin/sh":
        program = image_program(stage, argv[0])
        assert program is not None and program.is_file(), (
            f"the health check runs {argv[0]}, which the runtime stage doesn't COPY")


def entrypoint_argv(stage):
    entrypoint = [exec_form(a) for k, a in stage if k == "ENTRYPOINT"]
    cmd = [exec_form(a) for k, a in stage if k == "CMD"]
    return (entrypoint[-1] if entrypoint else []) + (cmd[-1] if cmd else [])


def api_binding(argv):
    """(API host, token file) that a shoald argv sets; (None, None) where it sets neither."""
    host = token = None
    for flag, value in zip(argv, argv[1:]):
        if flag == "--api":
            host = value.rsplit(":", 1)[0].strip("[]")
        elif flag == "--api-token-file":
            token = value
    return host, token


def is_loopback(host):
    return host in ("localhost", "::1") or host.startswith("127.")


def test_image_args_bind_api_publicly_only_with_token_file():
    """The ENTRYPOINT and CMD put the API on a non-loopback address only with --api-token-file."""
    host, token = api_binding(entrypoint_argv(runtime_stage()))
    if host is not None and not is_loopback(host):
        assert token, f"the image binds the API to {host} without --api-token-file"


def run_entrypoint(tmp_path, token_file, args=()):
    """Runs the image's entrypoint script with a stand-in shoald that records its argv."""
    stage = runtime_stage()
    argv = entrypoint_argv(stage)
    assert argv, "the runtime stage has no ENTRYPOINT or CMD"
    script = image_program(stage, argv[0])
    if script is None:
        pytest.skip(f"the entrypoint {argv[0]} is not a script from the repository")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    record = tmp_path / "argv.json"
    fake = bin_dir / "shoald"
    fake.write_text(textwrap.dedent(f"""\
        #!/usr/bin/python3
        import json, sys
        json.dump(sys.argv[1:], open({str(record)!r}, "w"))
        """))
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
               SHOAL_API_TOKEN_FILE=str(token_file),
               SHOAL_CLUSTER_KEY_FILE=str(tmp_path / "no-cluster-key"))
    r = subprocess.run(["bash", str(script), *argv[1:], *args], env=env, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return json.loads(record.read_text())


def test_entrypoint_without_token_file_keeps_api_on_loopback(tmp_path):
    """Without a token file, the entrypoint binds the API to loopback."""
    shoald_argv = run_entrypoint(tmp_path, tmp_path / "no-tokens")
    host, token = api_binding(shoald_argv)
    assert host is not None and is_loopback(host), shoald_argv
    assert token is None, shoald_argv


def test_entrypoint_with_token_file_serves_api_with_tokens(tmp_path):
    """With a token file, the entrypoint binds the API to all interfaces and passes the file."""
    tokens = tmp_path / "tokens"
    tokens.write_text("0123 admin\n")
    shoald_argv = run_entrypoint(tmp_path, tokens, ["--capacity", "1GiB"])
    host, token = api_binding(shoald_argv)
    assert (host, token) == ("0.0.0.0", str(tokens)), shoald_argv
    assert shoald_argv[-2:] == ["--capacity", "1GiB"], "the container's arguments come last"
    assert "--path-root" in shoald_argv and "--metrics" in shoald_argv, shoald_argv
