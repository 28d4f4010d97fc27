"""A loopback TCP transport for secagg, with authenticated channels and timeouts.

This is the transport of docs/embedding.md. The server listens on 127.0.0.1
only; each client holds one TCP connection to it. Channels are authenticated
with a per-client key the deployment hands out in advance (in production you
would use mutual TLS and take the client id from the peer certificate):

- hello: the client sends its id and a random nonce, MAC'd with its key; the
  server accepts the connection as that client only if the MAC verifies;
- every frame: 4-byte length, 32-byte HMAC-SHA256 over (direction, sequence
  number, payload), then the payload; a frame whose MAC fails closes the
  connection, which the server sees as the client vanishing.

It implements ``secagg.testing.Transport`` so that ``run_schedule`` can drive
a whole session through it; the same class shape works for a real deployment
where the server and each client run in different processes.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import selectors
import socket
import struct
import time

__all__ = ["LoopbackTCPTransport"]

_LEN = struct.Struct("!I")
_MAC = 32
_MAX_FRAME = 1 << 28  # refuse frames over 256 MiB before reading them


def _mac(key: bytes, direction: bytes, seq: int, payload: bytes) -> bytes:
    return hmac.new(key, direction + seq.to_bytes(8, "big") + payload, hashlib.sha256).digest()


class _Channel:
    """One end of one client's connection: frames out, frames in, MACs both ways."""

    def __init__(self, sock: socket.socket, key: bytes, send_dir: bytes, recv_dir: bytes) -> None:
        self.sock, self.key = sock, key
        self.send_dir, self.recv_dir = send_dir, recv_dir
        self.send_seq = self.recv_seq = 0
        self.buffer = b""
        self.closed = False

    def send(self, payload: bytes) -> None:
        if self.closed:
            return
        mac = _mac(self.key, self.send_dir, self.send_seq, payload)
        self.send_seq += 1
        try:
            self.sock.sendall(_LEN.pack(len(payload)) + mac + payload)
        except OSError:
            self.close()

    def feed(self) -> bool:
        """Read what the socket has (it is readable); False once the peer closed."""
        try:
            chunk = self.sock.recv(1 << 20)
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:
            chunk = b""
        if not chunk:
            self.close()
            return False
        self.buffer += chunk
        return True

    def frames(self) -> list[bytes]:
        """Complete, authenticated frames received so far; a bad MAC closes the channel."""
        out = []
        while len(self.buffer) >= _LEN.size + _MAC:
            (length,) = _LEN.unpack_from(self.buffer)
            if length > _MAX_FRAME:
                self.close()
                break
            end = _LEN.size + _MAC + length
            if len(self.buffer) < end:
                break
            mac, payload = self.buffer[_LEN.size:_LEN.size + _MAC], self.buffer[_LEN.size + _MAC:end]
            self.buffer = self.buffer[end:]
            if not hmac.compare_digest(mac, _mac(self.key, self.recv_dir, self.recv_seq, payload)):
                self.close()
                break
            self.recv_seq += 1
            out.append(payload)
        return out

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                self.sock.close()
            except OSError:
                pass


class LoopbackTCPTransport:
    """``secagg.testing.Transport`` over TCP on 127.0.0.1, one connection per client."""

    def __init__(self, connect_timeout: float = 5.0) -> None:
        self.connect_timeout = connect_timeout
        self._listener: socket.socket | None = None
        self._server: dict[int, _Channel] = {}  # client id -> the server's end
        self._client: dict[int, _Channel] = {}  # client id -> the client's end
        self._selector = selectors.DefaultSelector()
        self._pending: list[tuple[int, bytes | None]] = []

    # --- set-up: listen, connect, authenticate -------------------------------------

    def open(self, num_clients: int) -> None:
        keys = {i: os.urandom(32) for i in range(num_clients)}  # handed out in advance
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(self.connect_timeout)
        port = self._listener.getsockname()[1]
        for i in range(num_clients):
            sock = socket.create_connection(("127.0.0.1", port), timeout=self.connect_timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            nonce = os.urandom(16)
            hello = struct.pack("!I", i) + nonce
            sock.sendall(hello + hmac.new(keys[i], b"hello" + hello, hashlib.sha256).digest())
            self._client[i] = _Channel(sock, keys[i], b"up", b"down")
            conn, _ = self._listener.accept()
            self._server_accept(conn, keys)
        for channel in self._client.values():
            channel.sock.setblocking(False)

    def _server_accept(self, conn: socket.socket, keys: dict[int, bytes]) -> None:
        conn.settimeout(self.connect_timeout)
        hello = b""
        while len(hello) < 4 + 16 + 32:
            chunk = conn.recv(4 + 16 + 32 - len(hello))
            if not chunk:
                conn.close()
                return
            hello += chunk
        (client,) = struct.unpack_from("!I", hello)
        mac = hmac.new(keys.get(client, b""), b"hello" + hello[:20], hashlib.sha256).digest()
        if client not in keys or client in self._server or not hmac.compare_digest(mac, hello[20:]):
            conn.close()  # not who it claims to be
            return
        conn.setblocking(False)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._server[client] = _Channel(conn, keys[client], b"down", b"up")
        self._selector.register(conn, selectors.EVENT_READ, client)

    # --- the client side -------------------------------------------------------------

    def client_send(self, client: int, data: bytes) -> None:
        self._client[client].send(data)

    def client_disconnect(self, client: int) -> None:
        self._client[client].close()

    def client_receive(self, client: int, timeout: float) -> list[bytes]:
        channel = self._client[client]
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            if channel.closed:
                return []
            sel.register(channel.sock, selectors.EVENT_READ)
            while True:
                frames = channel.frames()
                if frames or channel.closed:
                    return frames
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    return []
                if not channel.feed():
                    return channel.frames()

    # --- the server side -------------------------------------------------------------

    def server_send(self, client: int, data: bytes) -> None:
        if client in self._server:
            self._server[client].send(data)

    def server_receive(self, timeout: float) -> list[tuple[int, bytes | None]]:
        deadline = time.monotonic() + timeout
        while not self._pending:
            left = deadline - time.monotonic()
            if left <= 0 or not self._selector.get_map():
                break
            for key, _ in self._selector.select(left):
                client = key.data
                channel = self._server[client]
                alive = channel.feed()
                self._pending.extend((client, frame) for frame in channel.frames())
                if not alive or channel.closed:
                    self._selector.unregister(key.fileobj)
                    self._pending.append((client, None))
        out, self._pending = self._pending, []
        return out

    def close(self) -> None:
        for channel in [*self._client.values(), *self._server.values()]:
            channel.close()
        self._selector.close()
        self._selector = selectors.DefaultSelector()
        self._server.clear()
        self._client.clear()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
