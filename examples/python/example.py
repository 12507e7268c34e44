"""Publishes FILE on the node at API_ADDRESS, reads it back through a second node if one is
given (fetching it from the first by ID, with progress), and lists both nodes.

    /usr/bin/python3 example.py API_ADDRESS FILE [SECOND_API_ADDRESS]
"""
import sys

from shoal_client import Shoal


def main():
    api, path = sys.argv[1], sys.argv[2]
    second = sys.argv[3] if len(sys.argv) > 3 else None
    with Shoal(api) as node:
        cid = node.add_file(path)
        print(f"added {cid}")
        source = node.info().listen_address
        print(f"listed {len(node.list())} contents on the first node")
        if second:
            with Shoal(second) as other:
                out = path + ".fetched"
                seen = []
                n = other.fetch(cid, out, peers=[source],
                                progress=lambda done, total: seen.append(done * 100 // total))
                print(f"fetched {n} bytes into {out} ({len(seen)} progress calls, "
                      f"last {seen[-1] if seen else 0}%)")
                print(f"listed {len(other.list())} contents on the second node")


if __name__ == "__main__":
    main()
