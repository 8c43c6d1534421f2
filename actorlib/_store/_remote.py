"""Reading an object that lives in another node's store, straight from that store into
this node's arena (blocking)."""

from __future__ import annotations

import itertools
import mmap
import sys
import time
import socket
import threading
from collections.abc import Callable
from typing import Any

import msgspec

from .._wire import AuthenticationError, ProtocolError, parts, reachable, split_host_port
from .._wire import _auth
from .._wire._messages import PROTOCOL_VERSION, Auth, Handshake, Hello, Refused, StoreData, StoreError
from .._wire._messages import StoreMessage, StoreRead, Welcome
from ..exceptions import ObjectLostError, ObjectStoreFullError
from ._layout import read_object

CONNECT_TIMEOUT = 10.0


class RemoteReader:
    """One connection per remote store, reused; thread-safe (one read at a time per store)."""

    def __init__(self, token: str, name: str, land: Callable[[int], memoryview] | None = None) -> None:
        self._token = token
        self._name = name
        self._sockets: dict[str, socket.socket] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self._reqs = itertools.count(1)
        self._encoder = msgspec.msgpack.Encoder()
        self._replies = msgspec.msgpack.Decoder(StoreMessage)
        self._land = land  # room in this node's arena, pinned while the value lives
        self._landing = Landing()  # private memory, when the arena has no room

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
        view = self._room(reply.size)
        _receive_into(sock, view)
        return read_object(view.toreadonly())

    def _room(self, size: int) -> memoryview:
        """Memory to receive an object of ``size`` bytes into: the local arena's, else private."""
        if self._land is not None and size >= Landing.MIN:
            try:
                return self._land(size)
            except (ObjectStoreFullError, OSError, RuntimeError):
                pass  # full, or the local store is unreachable or closed: receive into private memory
        return self._landing.take(size)

    def trim(self) -> None:
        """Unmap receive buffers that have not been reused for a while (call now and then)."""
        self._landing.trim()

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


class Landing:
    """Memory that remote objects are received into, reused once nothing refers to it.

    Fresh memory is what a transfer costs most here: the kernel faults and zeroes
    every page of a new mapping on first write (about 0.5-0.7 ms per MiB on a
    small VM, as much as the copy off the socket). So large receive buffers are
    anonymous mappings kept in a small pool: when the values read into one are
    gone (no memoryview or array refers to the mapping any more), the next read
    of a similar size reuses its already-faulted pages. At most POOL_BYTES are
    kept, and a buffer unused for IDLE seconds is unmapped.
    """

    MIN = 1 << 20  # smaller objects get a bytearray
    POOL_BYTES = 512 << 20
    IDLE = 10.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: list[tuple[mmap.mmap, float]] = []  # (buffer, last handed out)

    def take(self, size: int) -> memoryview:
        if size < self.MIN:
            return memoryview(bytearray(size))
        now = time.monotonic()
        with self._lock:
            for index, (buffer, _) in enumerate(self._held):
                # Free if only this list, the loop and getrefcount hold it: no view is alive.
                if size <= len(buffer) <= 2 * size and sys.getrefcount(buffer) <= 3:
                    self._held[index] = (buffer, now)
                    return memoryview(buffer)[:size]
            # MAP_POPULATE faults the pages in one batch, about twice as fast as on first touch.
            buffer = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | _POPULATE)
            self._held.append((buffer, now))
            self._evict(now)
            return memoryview(buffer)

    def trim(self) -> None:
        with self._lock:
            self._evict(time.monotonic())

    def _evict(self, now: float) -> None:
        total = sum(len(buffer) for buffer, _ in self._held)
        kept = []
        for buffer, used in reversed(self._held):  # newest first
            idle = sys.getrefcount(buffer) <= 3  # the list, the loop, getrefcount
            if idle and (now - used > self.IDLE or total > self.POOL_BYTES):
                total -= len(buffer)
                continue  # dropped: unmapped once the last reference goes
            kept.append((buffer, used))
        self._held = kept[::-1]


_POPULATE = getattr(mmap, "MAP_POPULATE", 0)


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
