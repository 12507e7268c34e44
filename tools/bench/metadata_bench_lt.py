"""Times libtorrent's torrent_info on each file given (run with
/usr/bin/python3). Prints mean and min microseconds per parse."""
import sys
import time

import libtorrent as lt

for path in sys.argv[1:]:
    data = open(path, "rb").read()
    ti = lt.torrent_info(data)  # warm up, and check it loads
    times = []
    deadline = time.perf_counter() + 2.0
    while time.perf_counter() < deadline or len(times) < 5:
        t0 = time.perf_counter()
        lt.torrent_info(data)
        times.append(time.perf_counter() - t0)
    name = path.rsplit("/", 1)[-1]
    print(f"libtorrent torrent_info/{name:28s} mean {1e6 * sum(times) / len(times):10.1f} us"
          f"   min {1e6 * min(times):10.1f} us   ({len(times)} runs, "
          f"{ti.num_pieces()} pieces, {ti.num_files()} files)")
