"""Writes the benchmark torrents into DIR (run with /usr/bin/python3).

  pieces_100k_v1.torrent     one file, 100,000 pieces of 16 KiB (v1)
  pieces_100k_v2.torrent     the same as v2, with its 3.2 MB piece layer
  files_10k_hybrid.torrent   10,000 files in 100 directories (hybrid, pads)

The hashes are synthetic (the data is never read), so generation is fast;
both parsers verify structure, not data. The v2 pieces root is computed from
the layer so piece-layer verification runs for real.
"""
import hashlib
import os
import sys

import libtorrent as lt

PL = 16384


def merkle_root(leaves, pad_leaf):
    n = 1
    while n < len(leaves):
        n *= 2
    layer = list(leaves) + [pad_leaf] * (n - len(leaves))
    while len(layer) > 1:
        layer = [hashlib.sha256(layer[i] + layer[i + 1]).digest()
                 for i in range(0, len(layer), 2)]
    return layer[0]


def main(out):
    os.makedirs(out, exist_ok=True)
    n = 100_000
    sha1s = b"".join(hashlib.sha1(i.to_bytes(4, "big")).digest()
                     for i in range(n))
    info = {b"name": b"big.bin", b"piece length": PL, b"length": n * PL,
            b"pieces": sha1s}
    with open(os.path.join(out, "pieces_100k_v1.torrent"), "wb") as f:
        f.write(lt.bencode({b"announce": b"http://t/a", b"info": info}))

    layer = [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(n)]
    # A piece of 16 KiB is one block: the pad of the piece layer is the zero
    # hash of one block's subtree, i.e. 32 zero bytes.
    root = merkle_root(layer, b"\0" * 32)
    info2 = {b"name": b"big.bin", b"piece length": PL, b"meta version": 2,
             b"file tree": {b"big.bin": {b"": {b"length": n * PL,
                                               b"pieces root": root}}}}
    with open(os.path.join(out, "pieces_100k_v2.torrent"), "wb") as f:
        f.write(lt.bencode({b"info": info2,
                            b"piece layers": {root: b"".join(layer)}}))

    files, tree, offset = [], {}, 0
    for i in range(10_000):
        d, name = b"dir%03d" % (i // 100), b"file%05d.dat" % i
        size = 1000 + (i * 7919) % 30000
        files.append({b"length": size, b"path": [d, name]})
        root_i = hashlib.sha256(b"f%d" % i).digest()
        tree.setdefault(d, {})[name] = {b"": {b"length": size,
                                              b"pieces root": root_i}}
        offset += size
        if i != 9_999 and offset % PL:
            pad = PL - offset % PL
            files.append({b"attr": b"p", b"length": pad,
                          b"path": [b".pad", b"%d" % pad]})
            offset += pad
    pieces = (offset + PL - 1) // PL
    info3 = {b"name": b"many", b"piece length": PL, b"files": files,
             b"pieces": b"\x11" * (20 * pieces), b"meta version": 2,
             b"file tree": tree}
    with open(os.path.join(out, "files_10k_hybrid.torrent"), "wb") as f:
        f.write(lt.bencode({b"info": info3, b"piece layers": {}}))


if __name__ == "__main__":
    main(sys.argv[1])
