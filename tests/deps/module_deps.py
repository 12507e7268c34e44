#!/usr/bin/env python3
"""Checks that each module includes only headers of the modules it may depend on.

Includes resolve from the repository root, so the compiler cannot refuse a wrong arrow between
modules: this check does. The allowed arrows are the block in docs/ARCHITECTURE.md between the
lines `<!-- module-deps begin -->` and `<!-- module-deps end -->`, one module a line:

    wire: codec base
    tracker: codec base chunk(info_hash.h)

`module: deps...` lets files under module/ include "dep/..." headers; `dep(a.h b.h)` allows only
those headers of dep. A module always includes its own headers. Includes whose first path part
is not a module of the map (absl/, gtest/, spdlog/...) are not checked; "shoal/v1/..." is the
generated code of proto/.

    module_deps.py [ROOT]      exit 0 if every include is allowed, else 1 with one line each
    module_deps.py --self-test the checker refuses a planted wrong arrow and accepts a right one
"""
import os
import re
import sys
import tempfile

BEGIN = "<!-- module-deps begin -->"
END = "<!-- module-deps end -->"
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
SOURCES = (".h", ".cc")
ALIASES = {"shoal": "proto"}  # generated gRPC/protobuf headers live under shoal/v1/


def parse_map(text):
    """{module: {dep: None (any header) or set of allowed headers}}."""
    if BEGIN not in text or END not in text:
        raise ValueError(f"no {BEGIN} ... {END} block")
    block = text.split(BEGIN, 1)[1].split(END, 1)[0]
    rules = {}
    for line in block.splitlines():
        line = line.strip()
        if not line or line.startswith("```"):
            continue
        if ":" not in line:
            raise ValueError(f"bad line in the module map: {line!r}")
        module, deps = line.split(":", 1)
        allowed = {}
        for dep in re.findall(r"[\w/]+(?:\([^)]*\))?", deps):
            m = re.fullmatch(r"([\w/]+)(?:\(([^)]*)\))?", dep)
            name, files = m.group(1), m.group(2)
            allowed[name] = set(files.split()) if files is not None else None
        rules[module.strip()] = allowed
    return rules


def check(root, rules):
    """Lines 'file: includes "x" (module -> dep is not in the map)' for each wrong include."""
    errors = []
    for module in sorted(rules):
        top = os.path.join(root, module)
        if not os.path.isdir(top):
            errors.append(f"{module}/: in the module map but not in the tree")
            continue
        for dirpath, _, names in os.walk(top):
            for name in sorted(names):
                if not name.endswith(SOURCES):
                    continue
                path = os.path.join(dirpath, name)
                with open(path, encoding="utf-8", errors="replace") as f:
                    text = f.read()
                for inc in INCLUDE.findall(text):
                    first = inc.split("/", 1)[0]
                    dep = ALIASES.get(first, first)
                    if "/" not in inc or dep not in rules or dep == module:
                        continue
                    allowed = rules[module]
                    rel = os.path.relpath(path, root)
                    if dep not in allowed:
                        errors.append(f'{rel}: includes "{inc}" ({module} -> {dep} is not in the '
                                      f"module map)")
                    elif allowed[dep] is not None and inc.split("/", 1)[1] not in allowed[dep]:
                        errors.append(f'{rel}: includes "{inc}" ({module} may include only '
                                      f"{', '.join(sorted(allowed[dep]))} of {dep})")
    return errors


def self_test():
    rules = parse_map(f"{BEGIN}\nbase:\ncodec: base\nwire: codec base\n"
                      f"tracker: codec chunk(info_hash.h)\nchunk: codec base\n{END}\n")
    with tempfile.TemporaryDirectory() as root:
        def put(path, text):
            os.makedirs(os.path.dirname(os.path.join(root, path)), exist_ok=True)
            with open(os.path.join(root, path), "w") as f:
                f.write(text)
        for m in ("base", "codec", "chunk"):
            put(f"{m}/x.h", "")
        put("wire/ok.cc", '#include "codec/sha.h"\n#include "wire/ok.h"\n#include "absl/a.h"\n')
        put("tracker/ok.cc", '#include "chunk/info_hash.h"\n')
        assert check(root, rules) == [], check(root, rules)
        put("wire/bad.cc", '#include "chunk/metainfo.h"\n')
        put("tracker/bad.cc", '#  include "chunk/metainfo.h"\n')
        errors = check(root, rules)
        assert len(errors) == 2, errors
        assert "wire -> chunk is not in the module map" in errors[1], errors
        assert "may include only info_hash.h of chunk" in errors[0], errors
    print("module_deps: self-test passed")
    return 0


def main(argv):
    if argv[1:] == ["--self-test"]:
        return self_test()
    root = argv[1] if len(argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..")
    root = os.path.abspath(root)
    with open(os.path.join(root, "docs", "ARCHITECTURE.md"), encoding="utf-8") as f:
        rules = parse_map(f.read())
    errors = check(root, rules)
    for e in errors:
        print(f"module_deps: {e}", file=sys.stderr)
    if errors:
        print(f"module_deps: {len(errors)} include(s) against the module map in "
              "docs/ARCHITECTURE.md", file=sys.stderr)
        return 1
    print(f"module_deps: {len(rules)} modules, every include allowed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
