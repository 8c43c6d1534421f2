"""The blocking object store client, called from user threads: put copies an object
into the node's arena, get rebuilds a sealed one from a read-only view of it, zero-copy.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections import deque
from typing import Any

import msgspec

from .._serial import Serialized
from .._wire import AuthenticationError, FrameReader, ProtocolError, _auth, _receive, unix_path
from .._wire._messages import PROTOCOL_VERSION, Auth, Handshake, Hello, Refused, StoreAttach, StoreCreate, StoreError
from .._wire._messages import StoreFd, StoreFree, StoreGet, StoreLand, StoreMessage, StorePlace, StoreRelease, StoreSeal
from .._wire._messages import StoreStats, StoreStatsRequest, Welcome
from ..exceptions import ActorlibError, GetTimeoutError, ObjectLostError, ObjectStoreFullError
from ._layout import object_pieces, object_size, read_object
from ._mapping import ArenaMap

HANDSHAKE_TIMEOUT = 10.0
MAX_REPLY_FRAME = 1 << 20
RECEIVE_CHUNK = 1 << 16
_MAX_FDS = 4  # more than one fd with a reply is a protocol error, but must still be received to be closed


class ObjectExistsError(ActorlibError, ValueError):
    """The store already holds an object with this id."""


class _Lost(ConnectionError):
    """The connection ended; ``delivered`` says whether the request may have reached the store."""

    def __init__(self, message: str, *, delivered: bool) -> None:
        super().__init__(message)
        self.delivered = delivered


class _Connection:
    """One authenticated blocking connection on which at most one reply is outstanding,
    so every fd received belongs to the frame being read.

    The store pins an extent for the connection that got it, so a connection
    is closed only once every view pinned through it is gone: ``live`` views
    were handed out and not yet released to the store, ``released`` holds the
    extents whose views died since (appended from any thread). An orphaned
    connection (broken, or its client closed) sends nothing more and closes
    itself when its last view goes.
    """

    def __init__(self, address: str, token: str, name: str) -> None:
        self._address = address
        self.live = 0
        self.released: deque[int] = deque()
        self.orphaned = False
        self._reader = FrameReader(MAX_REPLY_FRAME)
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder = msgspec.msgpack.Decoder(StoreMessage)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._sock.settimeout(HANDSHAKE_TIMEOUT)
            self._sock.connect(unix_path(address))
            self._handshake(token, name)
            self._sock.settimeout(None)
        except BaseException:
            self._sock.close()
            raise

    def _handshake(self, token: str, name: str) -> None:
        decoder = msgspec.msgpack.Decoder(Handshake)
        hello, _ = self._receive_frame(decoder, None)
        if not isinstance(hello, Hello):
            raise ProtocolError(f"expected hello from the store at {self._address}, got {type(hello).__name__}")
        mine = _auth.nonce()
        proof = _auth.client_proof(token, hello.nonce)
        self.send(Auth(version=PROTOCOL_VERSION, proof=proof, nonce=mine, peer=name))
        answer, _ = self._receive_frame(decoder, None)
        if isinstance(answer, Refused):
            raise AuthenticationError(f"the store at {self._address} refused the connection: {answer.reason}")
        if not isinstance(answer, Welcome) or not _auth.check(_auth.server_proof(token, mine), answer.proof):
            raise AuthenticationError(f"the store at {self._address} could not prove it holds the cluster token")

    def send(self, message: Any) -> None:
        """Send one frame. Raises _Lost (not delivered) if the store closed the connection."""
        payload = self._encoder.encode(message)
        try:
            self._sock.sendall(len(payload).to_bytes(4, "big") + payload, socket.MSG_NOSIGNAL)
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise _Lost(f"store connection lost: {exc}", delivered=False) from exc

    def receive(self, req: int, deadline: float | None) -> tuple[Any, int | None]:
        """The reply to ``req`` and the fd that came with it (StoreFd only).

        Raises _Lost (delivered), TimeoutError past ``deadline``, ProtocolError.
        """
        reply, fds = self._receive_frame(self._decoder, deadline)
        wanted = 1 if isinstance(reply, StoreFd) else 0
        if getattr(reply, "req", None) != req or len(fds) != wanted:
            _close_all(fds)
            raise ProtocolError(f"store sent {type(reply).__name__} with {len(fds)} fds in answer to request {req}")
        return reply, (fds[0] if fds else None)

    def _receive_frame(self, decoder: msgspec.msgpack.Decoder[Any], deadline: float | None) -> tuple[Any, list[int]]:
        fds: list[int] = []
        try:
            frames = self._fill(fds, deadline)
            if len(frames) != 1 or self._reader.pending:
                raise ProtocolError(f"store at {self._address} sent data nobody asked for")
            return decoder.decode(frames[0]), fds
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            _close_all(fds)
            raise ProtocolError(f"bad message from the store at {self._address}: {exc}") from None
        except BaseException:
            _close_all(fds)
            raise

    def _fill(self, fds: list[int], deadline: float | None) -> list[bytes | bytearray]:
        """Receive until a frame is complete, collecting the fds that arrive in ``fds``."""
        while True:
            if deadline is not None:
                self._sock.settimeout(max(deadline - time.monotonic(), 0.0) or 1e-6)
            try:
                data, new_fds, flags = _receive.recv_fds(self._sock, RECEIVE_CHUNK, _MAX_FDS, socket.MSG_CMSG_CLOEXEC)
            except ConnectionResetError as exc:
                raise _Lost(f"store connection lost: {exc}", delivered=True) from exc
            finally:
                if deadline is not None:
                    self._sock.settimeout(None)
            fds.extend(new_fds)
            if flags & socket.MSG_CTRUNC:
                raise ProtocolError("store sent more file descriptors than a reply may carry")
            if not data:
                raise _Lost(f"the store at {self._address} closed the connection", delivered=True)
            frames = self._reader.feed(data)
            if frames:
                return frames

    def release(self, offset: int) -> None:
        """A view of the extent at ``offset`` is gone (called from any thread, even mid-GC)."""
        self.released.append(offset)
        if self.orphaned and len(self.released) >= self.live:
            self.close()

    def take_released(self) -> list[int]:
        """The extents released since the last call (their views count as released from now)."""
        offsets = []
        while self.released:
            offsets.append(self.released.popleft())
        self.live -= len(offsets)
        return offsets

    def orphan(self) -> None:
        """Stop using this connection; it closes now, or when its last pinned view goes."""
        self.orphaned = True
        if len(self.released) >= self.live:
            self.close()

    def close(self) -> None:
        self._sock.close()


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)
    fds.clear()


class StoreClient:
    """A blocking, thread-safe client of one node's object store.

    Connects on first use and maps the store's arena; if the connection
    turns out to be lost, it reconnects once and retries — a create or seal
    only if the store cannot have received it. Requests are serialized by
    one lock, so a ``get`` waiting for an unsealed object holds up this
    client's other callers.
    """

    def __init__(self, address: str, token: str, name: str) -> None:
        self.address = address
        self._token = token
        self._name = name
        self._lock = threading.Lock()
        self._conn: _Connection | None = None
        self._arena: ArenaMap | None = None
        self._next_req = 0
        self._closed = False
        self._stop_warming = threading.Event()

    # ---- public ----------------------------------------------------------

    def put(self, object_id: bytes, serialized: Serialized, owner: bytes) -> int:
        """Store ``serialized`` as a sealed object and return its size in bytes.

        One copy: the buffers go straight from the value into the arena.
        Blocks until the store has sealed it; readers may get it from then on.

        Raises:
            ObjectStoreFullError: the store's capacity cannot take it (message names the sizes).
            ObjectExistsError: an object with this id is already stored.
            ConnectionError, OSError: the store is unreachable.
        """
        size = object_size(serialized)
        with self._lock:
            create = StoreCreate(req=self._req(), object_id=object_id, size=size, owner=owner)
            place, _ = self._request(create, idempotent=False)
            assert isinstance(place, StorePlace) and self._arena is not None
            try:
                self._arena.write(place.offset, object_pieces(serialized), place.fresh)
            except BaseException:
                self._send_quietly(StoreFree(object_ids=[object_id]))
                raise
            self._request(StoreSeal(req=self._req(), object_id=object_id), idempotent=False)
        return size

    def get(self, object_id: bytes, timeout: float | None = None) -> Any:
        """The object's value, waiting until it is sealed; arrays in it share the store's memory.

        The value is read-only where it is backed by the store (numpy arrays
        come back with ``writeable=False``) and stays valid after the object
        is freed, for as long as it is referenced: the store does not reuse
        the memory until then.

        Raises:
            ObjectLostError: the store does not hold the object (or it was freed while waiting).
            GetTimeoutError: it was not sealed within ``timeout`` seconds.
            SerializationError: the value cannot be rebuilt in this process.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            try:
                request = StoreGet(req=self._req(), object_id=object_id)
                place, _ = self._request(request, idempotent=True, deadline=deadline)
            except TimeoutError:
                raise GetTimeoutError(f"object {object_id.hex()} was not sealed within {timeout} s") from None
            view = self._pinned_view(place)
        return read_object(view)

    def land(self, size: int) -> memoryview:
        """``size`` writable bytes of the arena to receive another node's object into.

        The extent is pinned as by a get: the store reuses it once the
        returned view, and every view made from it, is gone.

        Raises:
            ObjectStoreFullError: the arena has no room for it now.
        """
        with self._lock:
            place, _ = self._request(StoreLand(req=self._req(), size=size), idempotent=False)
            conn, arena = self._conn, self._arena
            assert isinstance(place, StorePlace) and conn is not None and arena is not None
            conn.live += 1
            try:
                return arena.landing(place.offset, size, lambda: conn.release(place.offset), map_ahead=True)
            except BaseException:
                conn.release(place.offset)
                raise

    def free(self, object_ids: list[bytes]) -> None:
        """Ask the store to drop these objects; returns without waiting. Unknown ids are ignored."""
        if not object_ids:
            return
        with self._lock:
            message = StoreFree(object_ids=list(object_ids))
            try:
                self._connection().send(message)
            except _Lost:
                self._orphan()
                self._connection().send(message)

    def flush(self) -> None:
        """Tell the store which pinned extents no view refers to any more, if nobody else is
        using this client right now (then its next request does it). Never blocks for long."""
        if self._lock.acquire(blocking=False):
            try:
                if self._conn is not None and self._conn.released:
                    self._send_releases(self._conn)
            finally:
                self._lock.release()

    def warm(self) -> None:
        """Map the arena's prefaulted part into this process (blocking, GIL released), so that
        the first puts copy at memory speed and gets map nothing in. Stops early on close();
        does nothing if warming began already."""
        with self._lock:
            self._connection()
            arena = self._arena
        if arena is not None:
            arena.warm(self._stop_warming)

    def stats(self) -> StoreStats:
        """The store's used bytes, capacity and object count (unsealed objects included)."""
        with self._lock:
            reply, _ = self._request(StoreStatsRequest(req=self._req()), idempotent=True)
        return reply

    def close(self) -> None:
        """Close the connection; idempotent. Later calls raise RuntimeError. Values already read
        stay valid: the connection that pinned them closes when the last of them goes."""
        self._stop_warming.set()
        with self._lock:
            self._closed = True
            if self._conn is not None and self._conn.released:
                self._send_releases(self._conn)
            self._orphan()
            if self._arena is not None:
                self._arena.close()
                self._arena = None

    def __enter__(self) -> StoreClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---- requests --------------------------------------------------------

    def _req(self) -> int:
        self._next_req += 1
        return self._next_req

    def _pinned_view(self, place: StorePlace) -> memoryview:
        conn, arena = self._conn, self._arena
        assert conn is not None and arena is not None
        conn.live += 1
        try:
            return arena.view(place.offset, place.size, lambda: conn.release(place.offset))
        except BaseException:
            conn.release(place.offset)
            raise

    def _connection(self) -> _Connection:
        if self._closed:
            raise RuntimeError("this StoreClient is closed")
        if self._conn is None:
            conn = _Connection(self.address, self._token, self._name)
            try:
                self._attach(conn)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _attach(self, conn: _Connection) -> None:
        """Map the arena of the store at the other end of ``conn`` (unless it is the one mapped)."""
        request = StoreAttach(req=self._req())
        conn.send(request)
        reply, fd = conn.receive(request.req, None)
        if not isinstance(reply, StoreFd) or fd is None:
            raise ProtocolError(f"the store at {self.address} answered {type(reply).__name__} to StoreAttach")
        if self._arena is not None and self._arena.inode == os.fstat(fd).st_ino:
            os.close(fd)
            return
        try:
            arena = ArenaMap(fd, reply.size, reply.prefault)
        except BaseException:
            os.close(fd)
            raise
        if self._arena is not None:
            self._arena.close()  # a restarted store's: its views keep their own mapping
        self._arena = arena

    def _orphan(self) -> None:
        if self._conn is not None:
            self._conn.orphan()
            self._conn = None

    def _send_releases(self, conn: _Connection) -> None:
        offsets = conn.take_released()
        try:
            conn.send(StoreRelease(offsets=offsets))
        except _Lost:
            self._orphan()  # the store is gone, and its pins with it

    def _request(self, message: Any, *, idempotent: bool, deadline: float | None = None) -> tuple[Any, int | None]:
        """Send ``message`` and return its reply and fd; StoreError replies are raised."""
        try:
            reply, fd = self._exchange(message, deadline)
        except _Lost as lost:
            if lost.delivered and not idempotent:
                raise
            reply, fd = self._exchange(message, deadline)
        if isinstance(reply, StoreError):
            raise _error(reply)
        return reply, fd

    def _exchange(self, message: Any, deadline: float | None) -> tuple[Any, int | None]:
        conn = self._connection()
        if conn.released:
            self._send_releases(conn)
            conn = self._connection()
        try:
            conn.send(message)
            return conn.receive(message.req, deadline)
        except BaseException:
            # A reply may still come (or half a frame went out): a fresh connection keeps it
            # from being taken for the next request's; this one stays open while its views live.
            self._orphan()
            raise

    def _send_quietly(self, message: Any) -> None:
        try:
            self._connection().send(message)
        except OSError:
            self._orphan()


def _error(reply: StoreError) -> Exception:
    if reply.kind == "full":
        return ObjectStoreFullError(reply.message)
    if reply.kind == "lost":
        return ObjectLostError(reply.message)
    if reply.kind == "exists":
        return ObjectExistsError(reply.message)
    return ValueError(f"the store refused the request ({reply.kind}): {reply.message}")
