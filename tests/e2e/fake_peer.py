"""A hostile BitTorrent peer for tests: it claims to have every piece of a content and answers
every block request with garbage. It serves nothing else (no metadata, no hashes), so a
downloader can only get the bad blocks from it. Runs in a thread; loopback only."""
import socket
import struct
import threading


class CorruptSeeder:
    def __init__(self, content_id_hex, host="127.0.0.2"):
        self.info_hash = bytes.fromhex(content_id_hex)[:20]
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(8)
        self.sock.settimeout(0.5)
        self.address = f"{host}:{self.sock.getsockname()[1]}"
        self.blocks_sent = 0
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def close(self):
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()

    def _accept(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
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

    def _serve(self, conn):
        conn.settimeout(20)
        try:
            hs = self._read(conn, 68)
            if hs[28:48] != self.info_hash:
                return
            reserved = bytes([0, 0, 0, 0, 0, 0x10, 0, 0x04])  # extensions, fast
            conn.sendall(b"\x13BitTorrent protocol" + reserved + self.info_hash + b"-FK0001-" +
                         b"x" * 12)
            conn.sendall(struct.pack(">IB", 1, 14))  # have all
            while not self._stop.is_set():
                length = struct.unpack(">I", self._read(conn, 4))[0]
                if length == 0:
                    continue
                body = self._read(conn, length)
                msg_id = body[0]
                if msg_id == 2:  # interested
                    conn.sendall(struct.pack(">IB", 1, 1))  # unchoke
                elif msg_id == 6:  # request: answer with garbage of the right size
                    piece, begin, size = struct.unpack(">III", body[1:13])
                    payload = struct.pack(">BII", 7, piece, begin) + bytes([0xAB]) * size
                    conn.sendall(struct.pack(">I", len(payload)) + payload)
                    self.blocks_sent += 1
        except (OSError, ConnectionError):
            pass
        finally:
            conn.close()
