#!/usr/bin/env bash
# Parses a 100,000-piece torrent (v1 and v2) and a 10,000-file hybrid torrent
# with Shoal (Google Benchmark) and with libtorrent 2.0.8's torrent_info, in
# one run. Usage: tools/bench/metadata_bench.sh BUILD_DIR [WORK_DIR]
# (BUILD_DIR holds tools/bench/metadata_bench; configure with
# -DSHOAL_BUILD_BENCH=ON.) Not part of ctest.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${1:?usage: metadata_bench.sh BUILD_DIR [WORK_DIR]}"
work="${2:-$(mktemp -d)}"
bench="$(find "$build" -name metadata_bench -type f -perm -u+x | head -1)"
[ -n "$bench" ] || { echo "metadata_bench not found under $build" >&2; exit 1; }
/usr/bin/python3 "$here/metadata_bench_gen.py" "$work"
files=("$work/pieces_100k_v1.torrent" "$work/pieces_100k_v2.torrent"
       "$work/files_10k_hybrid.torrent")
ls -l "${files[@]}"
echo "== Shoal (ParseMetainfo: bdecode + validation + hashes; Bdecode alone)"
"$bench" --benchmark_min_time=1 "${files[@]}"
echo "== libtorrent 2.0.8 (lt.torrent_info from bytes, via Python)"
/usr/bin/python3 "$here/metadata_bench_lt.py" "${files[@]}"
