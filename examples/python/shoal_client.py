"""A small Python client of a Shoal node's gRPC API: publish bytes, fetch them by ID from any
node (with progress), list what a node stores, and follow its events.

It wraps the stubs that protoc generates from proto/shoal/v1/shoal.proto (see README.md here):

    from shoal_client import Shoal
    node = Shoal("127.0.0.1:7080")                   # token="..." if the node has a token file
    cid = node.add_file("report.pdf", pin=True)      # the content ID (64 hex characters)
    node.fetch(cid, "copy.pdf", peers=["10.0.0.5:6881"],
               progress=lambda done, total: print(done, "/", total))
    for c in node.list():
        print(c.id, c.length, c.name)
    for event in node.watch(replay=True):            # until you break out of the loop
        print(event.kind, event.id, event.progress)

Errors are grpc.RpcError with the node's status code (NOT_FOUND for unknown content,
INVALID_ARGUMENT for a malformed ID, UNAUTHENTICATED / PERMISSION_DENIED for tokens...).
"""
import os

import grpc

from shoal.v1 import shoal_pb2, shoal_pb2_grpc

CHUNK = 1 << 20  # bytes per Add message


class Shoal:
    """One node's API. `address` is "host:port"; `token` is an API token (the node's
    --api-token-file); `ca_file` (PEM) turns TLS on."""

    def __init__(self, address="127.0.0.1:7080", token=None, ca_file=None):
        if ca_file:
            with open(ca_file, "rb") as f:
                creds = grpc.ssl_channel_credentials(root_certificates=f.read())
            self._channel = grpc.secure_channel(address, creds)
        else:
            self._channel = grpc.insecure_channel(address)
        self._metadata = [("authorization", f"Bearer {token}")] if token else []
        self._content = shoal_pb2_grpc.ContentServiceStub(self._channel)
        self._node = shoal_pb2_grpc.NodeServiceStub(self._channel)

    def close(self):
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def add_bytes(self, data, name="", pin=False):
        """Publishes `data`; returns its content ID."""
        return self._add(iter([data]), len(data), name, pin)

    def add_file(self, path, name=None, pin=False):
        """Publishes a file's bytes, streamed from this process (the node need not see the
        file); returns its content ID."""
        size = os.path.getsize(path)

        def chunks():
            with open(path, "rb") as f:
                while block := f.read(CHUNK):
                    yield block
        return self._add(chunks(), size, os.path.basename(path) if name is None else name, pin)

    def _add(self, chunks, length, name, pin):
        def requests():
            yield shoal_pb2.AddRequest(
                header=shoal_pb2.AddHeader(name=name, length=length, pin=pin))
            for block in chunks:
                for i in range(0, len(block), CHUNK):
                    yield shoal_pb2.AddRequest(data=block[i:i + CHUNK])
        return self._content.Add(requests(), metadata=self._metadata).content.id

    def fetch(self, content_id, out_path, peers=(), progress=None):
        """Writes the content to `out_path` (through a temporary file beside it, renamed once
        complete). With `peers` ("host:port" peer addresses), a node that lacks the content
        fetches it from them first, streaming the bytes as they verify, and keeps it.
        `progress(done, total)` is called after each message. Returns the byte count."""
        tmp = f"{out_path}.part"
        done = 0
        try:
            with open(tmp, "wb") as f:
                for msg in self._content.Read(
                        shoal_pb2.ReadRequest(id=content_id, peers=list(peers)),
                        metadata=self._metadata):
                    if msg.offset != done:
                        raise IOError(f"stream out of order: offset {msg.offset}, "
                                      f"expected {done}")
                    f.write(msg.data)
                    done += len(msg.data)
                    if progress:
                        progress(done, msg.content_length)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, out_path)
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise
        return done

    def read(self, content_id, peers=()):
        """The content's bytes, in memory (for small contents)."""
        return b"".join(m.data for m in self._content.Read(
            shoal_pb2.ReadRequest(id=content_id, peers=list(peers)), metadata=self._metadata))

    def stat(self, content_id):
        """The content's description (shoal.v1.ContentInfo)."""
        return self._content.Stat(shoal_pb2.StatRequest(id=content_id),
                                  metadata=self._metadata).content

    def list(self):
        """Every content the node stores (shoal.v1.ContentInfo), ordered by ID."""
        return list(self._content.List(shoal_pb2.ListRequest(),
                                       metadata=self._metadata).contents)

    def info(self):
        """The node's identity, addresses and storage figures (shoal.v1.NodeInfo)."""
        return self._node.GetInfo(shoal_pb2.GetInfoRequest(), metadata=self._metadata)

    def watch(self, replay=False):
        """The node's events (shoal.v1.Event), as they happen, until the caller stops
        iterating (which cancels the stream). `replay` first sends the recent ones."""
        stream = self._node.Events(shoal_pb2.EventsRequest(replay=replay),
                                   metadata=self._metadata)
        try:
            yield from stream
        finally:
            stream.cancel()
