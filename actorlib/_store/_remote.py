"""Reading an object that lives in another node's store, straight from that store (blocking)."""

from __future__ import annotations

import itertools
import socket
import threading
from typing import Any

import msgspec

from .._wire import AuthenticationError, ProtocolError, parts, reachable, split_host_port
from .._wire import _auth
from .._wire._messages import PROTOCOL_VERSION, Auth, Handshake, Hello, Refused, StoreData, StoreError
from .._wire._messages import StoreMessage, StoreRead, Welcome
from ..exceptions import ObjectLostError
from ._layout import read_object

CONNECT_TIMEOUT = 10.0


class RemoteReader:
    """One connection per remote store, reused; thread-safe (one read at a time per store)."""

    def __init__(self, token: str, name: str) -> None:
        self._token = token
        self._name = name
        self._sockets: dict[str, socket.socket] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self._reqs = itertools.count(1)
        self._encoder = msgspec.msgpack.Encoder()
        self._replies = msgspec.msgpack.Decoder(StoreMessage)

    def read(self, address: str, object_id: bytes) -> Any:
        """The value of ``object_id`` in the store at ``address`` (a read-only copy here).

        Raises ObjectLostError if that store does not have it or cannot be reached.
        """
        with self._lock:
            lock = self._locks.setdefault(address, threading.Lock())
        with lock:
            try:
                return self._read(address, object_id)
            except (OSError, EOFError, ProtocolError) as exc:
                self._drop(address)
                raise ObjectLostError(f"cannot read object {object_id.hex()} from the store at {address}: {exc}") from exc

    def _read(self, address: str, object_id: bytes) -> Any:
        sock = self._connection(address)
        self._send(sock, StoreRead(req=next(self._reqs), object_id=object_id))
        reply = self._replies.decode(_frame(sock))
        if isinstance(reply, StoreError):
            raise ObjectLostError(f"object {object_id.hex()} is not in the store at {address}: {reply.message}")
        if not isinstance(reply, StoreData):
            raise ProtocolError(f"the store at {address} answered {type(reply).__name__}")
        buffer = bytearray(reply.size)
        _receive_into(sock, memoryview(buffer))
        return read_object(memoryview(buffer).toreadonly())

    def _connection(self, address: str) -> socket.socket:
        sock = self._sockets.get(address)
        if sock is None:
            sock = self._sockets[address] = self._connect(address)
        return sock

    def _connect(self, address: str) -> socket.socket:
        error: OSError | None = None
        for part in reachable(address) or parts(address):
            try:
                sock = _open(part)
            except OSError as exc:
                error = exc
                continue
            try:
                self._handshake(sock)
            except BaseException:
                sock.close()
                raise
            return sock
        raise error or OSError(f"no address in {address!r}")

    def _handshake(self, sock: socket.socket) -> None:
        decoder = msgspec.msgpack.Decoder(Handshake)
        hello = decoder.decode(_frame(sock))
        if not isinstance(hello, Hello):
            raise ProtocolError(f"expected hello, got {type(hello).__name__}")
        mine = _auth.nonce()
        self._send(sock, Auth(version=PROTOCOL_VERSION, proof=_auth.client_proof(self._token, hello.nonce), nonce=mine, peer=self._name))
        answer = decoder.decode(_frame(sock))
        if isinstance(answer, Refused):
            raise AuthenticationError(f"a store refused this reader: {answer.reason}")
        if not isinstance(answer, Welcome) or not _auth.check(_auth.server_proof(self._token, mine), answer.proof):
            raise AuthenticationError("a store could not prove it holds the cluster token")
        sock.settimeout(None)

    def _send(self, sock: socket.socket, message: Any) -> None:
        payload = self._encoder.encode(message)
        sock.sendall(len(payload).to_bytes(4, "big") + payload, socket.MSG_NOSIGNAL)

    def _drop(self, address: str) -> None:
        sock = self._sockets.pop(address, None)
        if sock is not None:
            sock.close()

    def close(self) -> None:
        for address in list(self._sockets):
            self._drop(address)


def _open(address: str) -> socket.socket:
    if address.startswith("unix:"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        target: Any = address[len("unix:") :]
    else:
        host, port = split_host_port(address)
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        target = (host, port)
    sock.settimeout(CONNECT_TIMEOUT)
    try:
        sock.connect(target)
    except BaseException:
        sock.close()
        raise
    return sock


def _frame(sock: socket.socket) -> bytes:
    size = int.from_bytes(_exactly(sock, 4), "big")
    if size > 1 << 20:
        raise ProtocolError(f"a store reply of {size} bytes")
    return _exactly(sock, size)


def _exactly(sock: socket.socket, count: int) -> bytes:
    buffer = bytearray(count)
    _receive_into(sock, memoryview(buffer))
    return bytes(buffer)


def _receive_into(sock: socket.socket, view: memoryview) -> None:
    while view:
        received = sock.recv_into(view)
        if not received:
            raise EOFError("the store closed the connection")
        view = view[received:]
