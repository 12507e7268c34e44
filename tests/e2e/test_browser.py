"""A real browser opens a static site through an edge that fetched it from the cluster on
miss: the page's script runs, fetches a JSON file of the site, and sees its stylesheet applied
(Chromium applies a stylesheet only when it is served as text/css)."""
import os
import shutil
import subprocess

import pytest

from test_directory import make_site

CHROMIUM = shutil.which("chromium")

SITE = {
    "index.html": b"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>shoal site</title>
<link rel="stylesheet" href="css/site.css">
<script src="js/app.js"></script></head>
<body><p id="status">loading</p></body></html>
""",
    "css/site.css": b"body { color: rgb(1, 2, 3); }\n",
    "js/app.js": b"""
window.addEventListener('load', async () => {
  const out = document.getElementById('status');
  try {
    const res = await fetch('data/info.json');
    const info = await res.json();
    const color = getComputedStyle(document.body).color;
    out.textContent = 'script-ran json=' + info.answer + ' color=' + color;
  } catch (e) {
    out.textContent = 'error ' + e;
  }
});
""",
    "data/info.json": b'{"answer": 42}',
}


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (scripts/setup.sh "
                                             "installs it)")
def test_chromium_renders_a_site_fetched_on_miss(make_node, tmp_dir):
    seed = make_node("seed")
    edge = make_node("edge", ["--bootstrap", seed.listen, "--gateway", "127.0.0.1:0"])
    did = seed.cli("add", str(make_site(tmp_dir / "site", SITE))).stdout.decode().strip()
    url = f"http://{edge.gateway}/content/{did}"  # the 301 to the folder is followed
    profile = tmp_dir / "chromium-profile"
    args = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
        "--virtual-time-budget=20000",
        # Hermetic: no background traffic, and no name resolution at all.
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-default-apps", "--disable-extensions", "--no-first-run",
        "--disable-domain-reliability", "--disable-client-side-phishing-detection",
        "--no-default-browser-check", "--metrics-recording-only",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        f"--user-data-dir={profile}", url,
    ]
    env = dict(os.environ, HOME=str(tmp_dir))
    res = subprocess.run(args, capture_output=True, timeout=90, env=env)
    dom = res.stdout.decode(errors="replace")
    assert "script-ran json=42 color=rgb(1, 2, 3)" in dom, (dom, res.stderr[-2000:])
    # The edge fetched each file from the seed, and now holds them.
    for path in SITE:
        assert edge.cli("cat", f"{did}/{path}").stdout == SITE[path]
