#!/usr/bin/python3
"""The table (or JSON) of tools/bench/gateway_bench.sh, from the files its runs left in WORK.

  gateway_bench_report.py --work DIR --duration S --threads N [--meta KEY=VALUE]... [--json]

Reads WORK/wrk_<scenario>_<target>.txt (wrk's output, with the WRK_JSON line of the done()
hook) and WORK/slow_<target>.json (gateway_bench_slow.py hold). From wrk's text it parses
Requests/sec, Transfer/sec, the "Socket errors" line (absent means zero), "Non-2xx or 3xx
responses" (wrk counts statuses >= 400 there) and the latency distribution; the exact figures
of the done() hook are used where present (wrk rounds its text, e.g. 1.50GB).
"""
import argparse
import json
import os
import re
import sys

SCENARIOS = [  # name, object bytes, connections, figure the target is on, minimum ratio
    ("64k_50", 64 * 1024, 50, "req_per_s", 0.8),
    ("64k_2000", 64 * 1024, 2000, "req_per_s", 0.8),
    ("10m_10", 10 * 1024 * 1024, 10, "bytes_per_s", 0.9),
]
TARGETS = ("gateway", "nginx")
SLOW_MAX_MS = 100.0

BIN = {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40, "PB": 1 << 50}
TIME_S = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_wrk(path):
    """wrk's figures from its output file; None when the file is missing or has no result."""
    try:
        text = open(path, errors="replace").read()
    except OSError:
        return None
    r = {"socket_errors": {"connect": 0, "read": 0, "write": 0, "timeout": 0}, "non_2xx": 0}
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if not m:
        return {"error": (text.strip().splitlines() or ["no output"])[-1][:200]}
    r["req_per_s"] = float(m.group(1))
    m = re.search(r"Transfer/sec:\s+([\d.]+)([KMGTP]?B)", text)
    r["bytes_per_s"] = float(m.group(1)) * BIN[m.group(2)] if m else 0.0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        r["socket_errors"] = dict(zip(("connect", "read", "write", "timeout"),
                                      map(int, m.groups())))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        r["non_2xx"] = int(m.group(1))
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m|h), ([\d.]+)([KMGTP]?B) read", text)
    if m:
        r["requests"] = int(m.group(1))
        r["duration_s"] = float(m.group(2)) * TIME_S[m.group(3)]
        r["bytes"] = int(float(m.group(4)) * BIN[m.group(5)])
    lat = {}
    for pct in ("50", "75", "90", "99"):
        m = re.search(r"^\s+" + pct + r"%\s+([\d.]+)(us|ms|s|m|h)", text, re.M)
        if m:
            lat["p" + pct] = float(m.group(1)) * TIME_S[m.group(2)] * 1000
    r["latency_ms"] = lat
    m = re.search(r"^WRK_JSON (\{.*\})$", text, re.M)
    if m:  # exact figures from the done() hook
        j = json.loads(m.group(1))
        dur = j["duration_us"] / 1e6
        r.update(requests=j["requests"], bytes=j["bytes"], duration_s=dur,
                 req_per_s=j["requests"] / dur if dur else 0.0,
                 bytes_per_s=j["bytes"] / dur if dur else 0.0,
                 non_2xx=j["status"])
        r["socket_errors"] = {k: j[k] for k in ("connect", "read", "write", "timeout")}
        r["latency_ms"] = {"mean": j["lat_mean_us"] / 1000, "p50": j["lat_p50_us"] / 1000,
                           "p90": j["lat_p90_us"] / 1000, "p99": j["lat_p99_us"] / 1000,
                           "max": j["lat_max_us"] / 1000}
    r["socket_errors_total"] = sum(r["socket_errors"].values())
    return r


def load_slow(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def meta_value(v):
    if v in ("true", "false"):
        return v == "true"
    if re.fullmatch(r"\d+", v):
        return int(v)
    return float(v) if re.fullmatch(r"\d+\.\d+", v) else v


def rounded(x):
    """The JSON's floats to 3 decimals (the figures are not more precise than that)."""
    if isinstance(x, float):
        return round(x, 3)
    if isinstance(x, dict):
        return {k: rounded(v) for k, v in x.items()}
    if isinstance(x, list):
        return [rounded(v) for v in x]
    return x


def ratio(a, b):
    if a is None or b is None or not b:
        return None
    return a / b


def build(args):
    work = args.work
    result = {"benchmark": "gateway_bench", "duration_s": args.duration,
              "wrk_threads": args.threads, "cores": os.cpu_count(),
              **{k: meta_value(v) for k, v in (kv.split("=", 1) for kv in args.meta)}}
    checks = []

    def check(name, gw, ng, target, ok, rat=None):
        checks.append({"name": name, "gateway": gw, "nginx": ng, "ratio": rat,
                       "target": target, "pass": bool(ok)})

    scen = {}
    for name, size, conns, figure, minimum in SCENARIOS:
        runs = {t: parse_wrk(os.path.join(work, f"wrk_{name}_{t}.txt")) for t in TARGETS}
        gw, ng = runs["gateway"] or {}, runs["nginx"] or {}
        entry = {"object_bytes": size, "connections": conns, **runs}
        rat = ratio(gw.get(figure), ng.get(figure))
        entry["ratio"] = rat
        entry["target_figure"] = figure
        entry["target_ratio"] = minimum
        scen[name] = entry
        check(f"{name} {figure}", gw.get(figure), ng.get(figure), f">= {minimum:.2f}x nginx",
              rat is not None and rat >= minimum, rat)
        check(f"{name} socket_errors", gw.get("socket_errors_total"),
              ng.get("socket_errors_total"), "== 0", gw.get("socket_errors_total") == 0)
        check(f"{name} non_2xx", gw.get("non_2xx"), ng.get("non_2xx"), "== 0",
              gw.get("non_2xx") == 0)
    result["scenarios"] = scen

    slow = {t: load_slow(os.path.join(work, f"slow_{t}.json")) for t in TARGETS}
    result["slow"] = slow
    gs, ns = slow["gateway"] or {}, slow["nginx"] or {}
    gp, np_ = gs.get("probe") or {}, ns.get("probe") or {}
    check("slow answered", gp.get("answered"), np_.get("answered"),
          f"== {gp.get('requests', 20)}",
          gp.get("requests") is not None and gp.get("answered") == gp.get("requests"))
    check("slow max_ms", gp.get("max_ms"), np_.get("max_ms"), f"< {SLOW_MAX_MS:.0f} ms",
          gp.get("max_ms") is not None and gp.get("answered") == gp.get("requests")
          and gp["max_ms"] < SLOW_MAX_MS, ratio(gp.get("max_ms"), np_.get("max_ms")))
    result["checks"] = checks
    result["passed"] = sum(c["pass"] for c in checks)
    result["pass"] = all(c["pass"] for c in checks)
    return result


# --- the table -------------------------------------------------------------------------------

def n(x, fmt="{:,.0f}"):
    return "-" if x is None else fmt.format(x)


def mbps(x):
    return "-" if x is None else f"{x / 1e6:,.1f} MB/s"


def ms(x):
    return "-" if x is None else f"{x:,.1f} ms"


def table(r):
    rows = []  # scenario, figure, gateway, nginx, ratio, target, result

    def row(scn, fig, g, ng, rat=None, target="", res="info"):
        rows.append((scn, fig, g, ng, "" if rat is None else f"{rat:.2f}x", target, res))

    def res(name):
        c = next(c for c in r["checks"] if c["name"] == name)
        return "PASS" if c["pass"] else "FAIL"

    labels = {"64k_50": "64 KiB, 50 conns", "64k_2000": "64 KiB, 2,000 conns",
              "10m_10": "10 MiB, 10 conns"}
    for name, _, _, figure, minimum in SCENARIOS:
        s = r["scenarios"][name]
        gw, ng = s["gateway"] or {}, s["nginx"] or {}
        label = labels[name]
        for t, d in (("gateway", gw), ("nginx", ng)):
            if "error" in d or not d:
                row(label, f"{t}: wrk failed", d.get("error", "no output"), "")
        rs = ratio(gw.get("req_per_s"), ng.get("req_per_s"))
        rb = ratio(gw.get("bytes_per_s"), ng.get("bytes_per_s"))
        if figure == "req_per_s":
            row(label, "requests/s", n(gw.get("req_per_s")), n(ng.get("req_per_s")), rs,
                f">= {minimum:.2f}x", res(f"{name} req_per_s"))
            row("", "bytes/s", mbps(gw.get("bytes_per_s")), mbps(ng.get("bytes_per_s")), rb)
        else:
            row(label, "bytes/s", mbps(gw.get("bytes_per_s")), mbps(ng.get("bytes_per_s")), rb,
                f">= {minimum:.2f}x", res(f"{name} bytes_per_s"))
            row("", "requests/s", n(gw.get("req_per_s"), "{:,.1f}"),
                n(ng.get("req_per_s"), "{:,.1f}"), rs)

        def errs(d):
            if "socket_errors" not in d:
                return "-"
            e = d["socket_errors"]
            return (f"{d['socket_errors_total']:,}" if not d["socket_errors_total"] else
                    f"{d['socket_errors_total']:,} (c{e['connect']} r{e['read']} "
                    f"w{e['write']} t{e['timeout']})")
        row("", "socket errors", errs(gw), errs(ng), None, "== 0", res(f"{name} socket_errors"))
        row("", "non-2xx responses", n(gw.get("non_2xx")), n(ng.get("non_2xx")), None, "== 0",
            res(f"{name} non_2xx"))
        gl, nl = gw.get("latency_ms", {}), ng.get("latency_ms", {})
        row("", "latency p50 / p99",
            f"{n(gl.get('p50'), '{:.2f}')} / {n(gl.get('p99'), '{:.2f}')} ms",
            f"{n(nl.get('p50'), '{:.2f}')} / {n(nl.get('p99'), '{:.2f}')} ms")

    gs, ns = r["slow"]["gateway"] or {}, r["slow"]["nginx"] or {}
    label = "4,000 slow clients"
    if not gs or not ns:
        for t, d in (("gateway", gs), ("nginx", ns)):
            if not d:
                row(label, f"{t}: helper failed", "no result", "")
    gp, np_ = gs.get("probe") or {}, ns.get("probe") or {}
    gb, nb = gs.get("baseline") or {}, ns.get("baseline") or {}

    def held(d):
        return "-" if not d else f"{d['held_at_probe']:,} of {d['attempted']:,}"
    row(label, "held open, probes start", held(gs), held(ns))
    row("", "held open, probes end", n(gs.get("held_at_end")), n(ns.get("held_at_end")))
    def closed(d):
        if not d:
            return "-"
        after = d.get("closed_after_s")
        return f"{d['closed_by_server']:,}" + (
            f" after {after['min']:.1f}-{after['max']:.1f} s" if after else "")
    row("", "closed by server", closed(gs), closed(ns))
    row("", "connect failed/t.o.",
        "-" if not gs else f"{gs['connect_failed']:,} / {gs['connect_timeout']:,}",
        "-" if not ns else f"{ns['connect_failed']:,} / {ns['connect_timeout']:,}")

    def answered(p):
        return "-" if not p else f"{p['answered']} of {p['requests']}"
    row("", "real requests answered", answered(gp), answered(np_), None,
        f"== {gp.get('requests', 20)}", res("slow answered"))
    row("", "real request max", ms(gp.get("max_ms")), ms(np_.get("max_ms")),
        ratio(gp.get("max_ms"), np_.get("max_ms")), f"< {SLOW_MAX_MS:.0f} ms",
        res("slow max_ms"))
    row("", "real request median", ms(gp.get("median_ms")), ms(np_.get("median_ms")),
        ratio(gp.get("median_ms"), np_.get("median_ms")))
    def both(p):
        return "-" if not p else f"{ms(p.get('median_ms'))} / {ms(p.get('max_ms'))}"
    row("", "no slow clients: med / max", both(gb), both(nb))

    head = ("scenario", "figure", "gateway", "nginx", "ratio", "target", "result")
    widths = [max(len(str(x[i])) for x in rows + [head]) for i in range(len(head))]
    out = [f"== Shoal HTTP gateway vs nginx {r.get('nginx_version', '')} on 127.0.0.1: "
           f"{r['cores']} cores, wrk {r['wrk_threads']} threads, {r['duration_s']} s per run",
           f"   gateway {r.get('gateway')} (shoald {r.get('shoald')}, built "
           f"{r.get('shoald_mtime')}), nginx {r.get('nginx')}; load average "
           f"{r.get('loadavg_start')} before, {r.get('loadavg_end')} after"]
    fmt = "  ".join(f"{{:<{w}}}" if i < 2 else f"{{:>{w}}}" if i < 5 else f"{{:<{w}}}"
                    for i, w in enumerate(widths))
    out.append(fmt.format(*head).rstrip())
    out.append("  ".join("-" * w for w in widths))
    for x in rows:
        out.append(fmt.format(*x).rstrip())
    out.append("")
    for name, d in (("gateway", gp), ("nginx", np_)):
        errs = d.get("errors") or []
        if errs:
            kinds = {}
            for e in errs:  # "closed before a response after 0.4 ms" -> by kind
                kinds.setdefault(e.split(" after ")[0], []).append(e)
            shown = "; ".join(f"{len(v)}x {k}" + (f" (first {v[0].split(' after ')[1]})"
                                                   if " after " in v[0] else "")
                              for k, v in kinds.items())
            out.append(f"{name}: {len(errs)} of {d.get('requests')} real requests failed "
                       f"under slow clients: {shown}")
    load = r.get("loadavg_start")
    if isinstance(load, (int, float)) and load > 0.5 * r["cores"]:
        out.append(f"note: the load average was {load} before the run on {r['cores']} cores: "
                   "other processes compete for the CPU, so the figures are noisy")
    if r.get("shoald_alive_at_end") is False:
        out.append("shoald was no longer running at the end of the benchmark")
    out.append(f"targets: {r['passed']} of {len(r['checks'])} met -> "
               f"{'PASS' if r['pass'] else 'FAIL'}")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--duration", type=int, required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--meta", action="append", default=[])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    r = build(args)
    if args.json:
        print(json.dumps(rounded(r)))
    else:
        print(table(r))


if __name__ == "__main__":
    sys.exit(main())
