"""End-to-end: libtorrent 2.0.8 with protocol encryption (MSE/PE) forced reaches Shoal.
Shoal accepts encrypted handshakes on its peer port (RC4, or plaintext after the obfuscated
handshake, whichever the peer offers), beside plaintext ones."""
import os
import socket
import time

import pytest

from test_fetch import add_bytes, lt_session, stat, wait_seeding
from test_torrent import assert_same_files, create_torrent, make_files, shoal_seeds
from test_torrent import tracker  # noqa: F401 (a fixture the tests below use)


def lt_encrypted_session(level):
    """A libtorrent session that only speaks encrypted connections, at `level` (rc4: RC4
    only; both: RC4 or plaintext after the encrypted handshake)."""
    import libtorrent as lt
    return lt.session({
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
        "enable_incoming_utp": False, "enable_outgoing_utp": False,
        "allow_multiple_connections_per_ip": True,
        "out_enc_policy": int(lt.enc_policy.forced),
        "in_enc_policy": int(lt.enc_policy.forced),
        "allowed_enc_level": int(getattr(lt.enc_level, level)),
        "prefer_rc4": level == "rc4",
        "alert_mask": 0,
    })


# CDN content by magnet link, over an encrypted connection only.
@pytest.mark.parametrize("level", ["rc4", "both"])
def test_encrypted_libtorrent_fetches_content(level, node, tmp_dir):
    import libtorrent as lt
    data = os.urandom(3 * 1024 * 1024 + 99)
    cid = add_bytes(node, tmp_dir, data)
    ses = lt_encrypted_session(level)
    params = lt.parse_magnet_uri(f"magnet:?xt=urn:btmh:1220{cid}&x.pe={node.listen}")
    params.save_path = str(tmp_dir / "lt")
    h = ses.add_torrent(params)
    wait_seeding(h)
    assert (tmp_dir / "lt" / stat(node, cid)["pieces_root"]).read_bytes() == data


# A torrent Shoal seeds, found through the tracker, downloaded over RC4.
@pytest.mark.parametrize("kind", ["v1", "hybrid"])
def test_encrypted_libtorrent_downloads_torrent(kind, make_node, tmp_dir, tracker):  # noqa: F811
    import libtorrent as lt
    node = make_node(extra_args=["--log-level", "info"])
    files, data, _, _, _ = shoal_seeds(node, tmp_dir, tracker, kind, seed=5)
    ses = lt_encrypted_session("rc4")
    out = tmp_dir / "lt-dl"
    h = ses.add_torrent({"ti": lt.torrent_info(data), "save_path": str(out)})
    try:
        wait_seeding(h, timeout=15)
    except AssertionError:
        print(node.stderr()[-6000:])
        raise
    assert_same_files(files, out)


# Shoal downloads from a libtorrent seed that refuses plaintext: with the default policy
# (prefer: the encrypted handshake first) and with `require` (RC4 only), given the seed as a
# peer (no tracker).
# And `prefer` falls back to plaintext with a seed that refuses encrypted connections.
@pytest.mark.parametrize("policy", ["prefer", "require", "prefer-fallback"])
def test_shoal_connects_encrypted_to_libtorrent(policy, make_node, tmp_dir):
    import libtorrent as lt
    node = make_node(extra_args=["--encryption", policy.split("-")[0], "--log-level", "debug"])
    seed_root = tmp_dir / "seed"
    files = make_files(seed_root, [700_000, 3, 250_000], seed=9)
    data, ti, _, _ = create_torrent(seed_root, "hybrid", "http://127.0.0.1:9/announce")
    if policy == "prefer-fallback":
        ses = lt_session()
        ses.apply_settings({"in_enc_policy": int(lt.enc_policy.disabled),
                            "out_enc_policy": int(lt.enc_policy.disabled)})
    else:
        ses = lt_encrypted_session("rc4" if policy == "require" else "both")
    h = ses.add_torrent({"ti": ti, "save_path": str(seed_root)})
    wait_seeding(h)
    tfile = tmp_dir / "t.torrent"
    tfile.write_bytes(data)
    out = tmp_dir / "shoal-dl"
    tid = node.cli("torrent", "add", str(tfile), "--save-path", str(out), "--peer",
                   f"127.0.0.1:{ses.listen_port()}").stdout.decode().strip()
    node.cli("torrent", "wait", tid, "--timeout", "60")
    assert_same_files(files, out)
    # Only the fallback's first attempt fails.
    assert ("encrypted handshake with" in node.stderr()) == (policy == "prefer-fallback")


# Bytes that are neither handshake: a public key that forces a known secret, and a key
# followed by padding with no sync hash. Each connection is closed; the node serves on.
def test_hostile_encrypted_handshakes_are_closed(node, tmp_dir):
    host, port = node.listen.rsplit(":", 1)
    for junk in (b"\0" * 96, os.urandom(96) + os.urandom(700)):
        s = socket.create_connection((host, int(port)), timeout=10)
        try:
            s.sendall(junk)
            deadline = time.monotonic() + 10
            closed = False
            while time.monotonic() < deadline and not closed:
                try:
                    closed = s.recv(4096) == b""
                except ConnectionResetError:
                    closed = True
            assert closed, "the node kept a connection that sent no handshake"
        finally:
            s.close()
    data = b"still serving"
    cid = add_bytes(node, tmp_dir, data)
    assert node.cli("cat", cid).stdout == data
