"""A hostile peer for CDN content: CorruptTorrentPeer (fake_torrent_peer.py) for the torrent
whose info-hash is the content ID. It claims every piece and answers every block request with
garbage; it serves no metadata and no hashes, so a downloader can only get bad blocks from it."""
from fake_torrent_peer import CorruptTorrentPeer


class CorruptSeeder(CorruptTorrentPeer):
    def __init__(self, content_id_hex, host="127.0.0.2"):
        # The handshake of a v2 torrent carries the first 20 bytes of its info-hash.
        super().__init__(content_id_hex[:40], host=host)
