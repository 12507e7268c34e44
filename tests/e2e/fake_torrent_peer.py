"""A hostile BitTorrent peer for public-torrent tests: it completes the handshake for a given
20-byte info-hash (fast extension bit set), sends have_all and unchoke, and answers every block
request with garbage of the requested length. It serves nothing else (no metadata, no hashes).
Runs in threads; binds on 127.0.0.2 (loopback only)."""
import socket
import struct
import threading

MSG_UNCHOKE = 1
MSG_INTERESTED = 2
MSG_REQUEST = 6
MSG_PIECE = 7
MSG_HAVE_ALL = 0x0E


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

    def _serve(self, conn):
        conn.settimeout(30)
        try:
            hs = self._read(conn, 68)
            if hs[:20] != b"\x13BitTorrent protocol" or hs[28:48] not in self.info_hashes:
                return
            info_hash = hs[28:48]
            reserved = bytes([0, 0, 0, 0, 0, 0, 0, 0x04])  # fast extension (BEP 6)
            conn.sendall(b"\x13BitTorrent protocol" + reserved + info_hash + b"-FK0001-" +
                         b"y" * 12)
            with self.lock:
                self.handshakes += 1
            conn.sendall(self._msg(MSG_HAVE_ALL) + self._msg(MSG_UNCHOKE))
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
                    garbage = bytes([(piece * 31 + begin // 16384 + 0x5A) & 0xFF]) * size
                    conn.sendall(self._msg(MSG_PIECE, struct.pack(">II", piece, begin) +
                                           garbage))
                    with self.lock:
                        self.blocks_sent += 1
        except (OSError, ConnectionError):
            pass
        finally:
            conn.close()
