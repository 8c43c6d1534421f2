"""Framed, authenticated message connections over blocking sockets, for threads without Trio."""

from __future__ import annotations

import socket
import threading
from typing import Any

import msgspec
import trio

from . import _auth, _receive
from ._framing import DEFAULT_MAX_FRAME, HANDSHAKE_MAX_FRAME, FrameReader, ProtocolError
from ._messages import PROTOCOL_VERSION, Auth, Handshake, Hello, Refused, Welcome, decoder_for

RECEIVE_CHUNK = 1 << 18


class BlockingChannel:
    """One connection's messages on a blocking socket; sends are thread-safe.

    Has the sending half of :class:`Channel`'s interface (``send_threadsafe``,
    ``closed``), so code that replies to a call need not care which it has.
    """

    def __init__(self, sock: socket.socket, decode_type: Any, *, peer: str, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.sock = sock
        self.peer = peer
        self._reader = FrameReader(max_frame)
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder = decoder_for(decode_type)
        self._lock = threading.Lock()
        self.closed = False
        self._token = ""  # the handshake's, server side
        self._challenge = b""
        self._max_frame = max_frame

    def fileno(self) -> int:
        return self.sock.fileno()

    def send_threadsafe(self, message: Any) -> None:
        """Send one message. Raises trio.ClosedResourceError if the peer is gone."""
        payload = self._encoder.encode(message)
        with self._lock:
            if self.closed:
                raise trio.ClosedResourceError(f"connection to {self.peer} is closed")
            try:
                self.sock.sendall(len(payload).to_bytes(4, "big") + payload, socket.MSG_NOSIGNAL)
            except OSError as exc:
                self.closed = True
                raise trio.ClosedResourceError(f"connection to {self.peer} lost: {exc}") from exc

    send_nowait = send_threadsafe

    def receive_available(self) -> list[Any]:
        """The messages in what one ``recv`` returns (call when the socket is readable).

        Raises EOFError at the end of the stream, ProtocolError on garbage.
        """
        frames = _receive.recv_into(self.sock, RECEIVE_CHUNK, self._reader.feed)
        if frames is None:
            raise EOFError(f"{self.peer} closed the connection")
        try:
            return [self._decoder.decode(frame) for frame in frames]
        except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as exc:
            raise ProtocolError(f"bad message from {self.peer}: {exc}") from None

    def start_handshake(self, token: str) -> None:
        """Server side, on a fresh connection: send the challenge (mutual HMAC, as Channel does).

        The socket is non-blocking until :meth:`continue_handshake` completes, so a
        server can hold many half-done handshakes in one select loop and serve its
        callers meanwhile: a stranger that says nothing stalls nobody.
        """
        self._token = token
        self._challenge = _auth.nonce()
        self._max_frame, self._reader.max_frame = self._reader.max_frame, HANDSHAKE_MAX_FRAME
        self.sock.setblocking(False)
        self._send_frame(Hello(version=PROTOCOL_VERSION, nonce=self._challenge))  # a fresh socket takes 50 bytes

    def continue_handshake(self) -> str | None:
        """When the socket is readable: the peer's name once it has proved the token, None until
        its Auth is complete. Raises EOFError, ProtocolError, AuthenticationError (after
        telling the peer why), or OSError."""
        try:
            data = self.sock.recv(4096)
        except BlockingIOError:
            return None
        if not data:
            raise EOFError(f"{self.peer} closed the connection during the handshake")
        try:
            frames = self._reader.feed(data)
        except ProtocolError as exc:
            raise ProtocolError(f"during the handshake with {self.peer}: {exc}") from None
        if not frames:
            return None
        if len(frames) > 1 or self._reader.pending:
            raise ProtocolError(f"{self.peer} sent messages before the handshake completed")
        try:
            reply = decoder_for(Handshake).decode(frames[0])
        except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as exc:
            raise ProtocolError(f"bad handshake from {self.peer}: {exc}") from None
        if not isinstance(reply, Auth):
            raise ProtocolError(f"expected auth from {self.peer}, got {type(reply).__name__}")
        if reply.version != PROTOCOL_VERSION or not _auth.check(_auth.client_proof(self._token, self._challenge), reply.proof):
            self._send_frame(Refused(reason="invalid cluster token or protocol version"))
            raise _auth.AuthenticationError(f"refused {self.peer}")
        self._send_frame(Welcome(proof=_auth.server_proof(self._token, reply.nonce)))
        self.sock.setblocking(True)
        self._reader.max_frame = self._max_frame
        self.peer = reply.peer
        return reply.peer

    def _send_frame(self, message: Any) -> None:
        payload = self._encoder.encode(message)
        self.sock.sendall(len(payload).to_bytes(4, "big") + payload, socket.MSG_NOSIGNAL)

    def close(self) -> None:
        with self._lock:
            self.closed = True
        self.sock.close()
