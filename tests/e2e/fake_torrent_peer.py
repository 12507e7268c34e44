"""Hostile BitTorrent peers for public-torrent tests. Both run in threads and bind on 127.0.0.2
(loopback only).

CorruptTorrentPeer completes the handshake for a given 20-byte info-hash (fast extension bit set),
sends have_all and unchoke, and answers every block request with garbage of the requested length.
It serves nothing else (no metadata, no hashes).

SplitPieceLiar forces pieces with blocks from several peers (for BEP 52 exact blame): it answers
the first block request of each piece with garbage and rejects (BEP 6 reject request) every
other request for that piece, so the downloader fetches the rest of the piece elsewhere."""
import socket
import struct
import threading

MSG_UNCHOKE = 1
MSG_INTERESTED = 2
MSG_REQUEST = 6
MSG_PIECE = 7
MSG_SUGGEST = 0x0D
MSG_HAVE_ALL = 0x0E
MSG_REJECT = 0x10  # BEP 6: same payload as the request (index, begin, length)
MSG_HASH_REQUEST = 21  # BEP 52


class CorruptTorrentPeer:
    """info_hashes: one or more 20-byte info-hashes (bytes or hex) this peer claims to seed; a
    hybrid torrent has two (v1 and the truncated v2)."""

    def __init__(self, *info_hashes, host="127.0.0.2"):
        self.info_hashes = [bytes.fromhex(h)[:20] if isinstance(h, str) else bytes(h)[:20]
                            for h in info_hashes]
        assert self.info_hashes and all(len(h) == 20 for h in self.info_hashes)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.address = f"{host}:{self.sock.getsockname()[1]}"
        self.lock = threading.Lock()
        self.connections = 0
        self.handshakes = 0
        self.requests = 0
        self.blocks_sent = 0
        self.hash_requests = 0
        self._stop = threading.Event()
        self._conns = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def close(self):
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()
        with self.lock:
            for c in self._conns:
                try:
                    c.close()
                except OSError:
                    pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _accept(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with self.lock:
                self.connections += 1
                self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    @staticmethod
    def _read(conn, n):
        buf = b""
        while len(buf) < n:
            chunk = conn.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk
        return buf

    @staticmethod
    def _msg(msg_id, payload=b""):
        return struct.pack(">IB", 1 + len(payload), msg_id) + payload

    # Reserved handshake bytes: fast extension (BEP 6, byte 7 bit 0x04).
    RESERVED = bytes([0, 0, 0, 0, 0, 0, 0, 0x04])

    @staticmethod
    def _garbage(piece, begin, size):
        return bytes([(piece * 31 + begin // 16384 + 0x5A) & 0xFF]) * size

    def _on_request(self, conn, piece, begin, size):
        """Answers a block request: garbage of the requested length."""
        conn.sendall(self._msg(MSG_PIECE, struct.pack(">II", piece, begin) +
                               self._garbage(piece, begin, size)))
        with self.lock:
            self.blocks_sent += 1

    def _greet(self, conn):
        """What follows the handshake: have_all and unchoke."""
        conn.sendall(self._msg(MSG_HAVE_ALL) + self._msg(MSG_UNCHOKE))

    def _serve(self, conn):
        conn.settimeout(30)
        try:
            hs = self._read(conn, 68)
            if hs[:20] != b"\x13BitTorrent protocol" or hs[28:48] not in self.info_hashes:
                return
            info_hash = hs[28:48]
            conn.sendall(b"\x13BitTorrent protocol" + self.RESERVED + info_hash + b"-FK0001-" +
                         b"y" * 12)
            with self.lock:
                self.handshakes += 1
            self._greet(conn)
            while not self._stop.is_set():
                length = struct.unpack(">I", self._read(conn, 4))[0]
                if length == 0:
                    continue  # keep-alive
                body = self._read(conn, length)
                msg_id = body[0]
                if msg_id == MSG_INTERESTED:
                    conn.sendall(self._msg(MSG_UNCHOKE))
                elif msg_id == MSG_REQUEST and len(body) >= 13:
                    piece, begin, size = struct.unpack(">III", body[1:13])
                    with self.lock:
                        self.requests += 1
                    self._on_request(conn, piece, begin, size)
                elif msg_id == MSG_HASH_REQUEST:
                    with self.lock:
                        self.hash_requests += 1  # never answered
        except (OSError, ConnectionError):
            pass
        finally:
            conn.close()


class SplitPieceLiar(CorruptTorrentPeer):
    """For each piece, the first block request (from any connection) gets garbage; every other
    request for that piece is rejected (BEP 6), so the downloader takes the piece's other blocks
    from another peer and the piece fails its hash check with blocks from several senders.

    max_lies bounds the pieces it lies about (None: every piece); past it every request is
    rejected. v2=True also sets the BEP 52 bit (byte 7, 0x10) in the handshake: a downloader
    may then ask this peer for block hashes, which it never answers."""

    def __init__(self, *info_hashes, host="127.0.0.2", max_lies=None, v2=False):
        self.RESERVED = bytes([0, 0, 0, 0, 0, 0, 0, 0x04 | (0x10 if v2 else 0)])
        self.max_lies = max_lies
        self.lied = {}  # piece -> the block offset answered with garbage
        self.rejects = 0
        super().__init__(*info_hashes, host=host)

    def _on_request(self, conn, piece, begin, size):
        with self.lock:
            lie = piece not in self.lied and (self.max_lies is None or
                                              len(self.lied) < self.max_lies)
            if lie:
                self.lied[piece] = begin
            else:
                self.rejects += 1
        if lie:
            return super()._on_request(conn, piece, begin, size)
        conn.sendall(self._msg(MSG_REJECT, struct.pack(">III", piece, begin, size)))


class SuggestingSeed(CorruptTorrentPeer):
    """An honest seed of a single-file v1 torrent (`data`, `piece_length`) that suggests some
    pieces (BEP 6 suggest piece, id 0x0D) right after have_all, before unchoking, and records
    the order in which pieces are first requested."""

    def __init__(self, info_hash, data, piece_length, suggest, host="127.0.0.2"):
        self.data = data
        self.piece_length = piece_length
        self.suggest = list(suggest)
        self.first_requests = []  # pieces, in the order first requested
        super().__init__(info_hash, host=host)

    def _greet(self, conn):
        out = self._msg(MSG_HAVE_ALL)
        for piece in self.suggest:
            out += self._msg(MSG_SUGGEST, struct.pack(">I", piece))
        conn.sendall(out + self._msg(MSG_UNCHOKE))

    def _on_request(self, conn, piece, begin, size):
        with self.lock:
            if piece not in self.first_requests:
                self.first_requests.append(piece)
        start = piece * self.piece_length + begin
        conn.sendall(self._msg(MSG_PIECE, struct.pack(">II", piece, begin) +
                               self.data[start:start + size]))
        with self.lock:
            self.blocks_sent += 1
