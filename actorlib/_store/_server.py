"""The per-node object store server: one memfd per object, handed to clients over
a Unix socket with SCM_RIGHTS, with capacity accounting in bytes.
"""

from __future__ import annotations

import array
import errno
import fcntl
import os
import socket
from collections.abc import Iterable
from typing import Any, cast

import msgspec
import trio

from .._wire import Channel, ProtocolError, serve
from .._wire._messages import StoreCreate, StoreData, StoreError, StoreFd, StoreFree, StoreGet, StoreMessage, StoreOk
from .._wire._messages import StoreRead, StoreSeal, StoreStats, StoreStatsRequest

MIB = 1024 * 1024
# Sized objects may never shrink or grow, so a reader's mapping can never SIGBUS.
_SIZE_SEALS = fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW


class _Object:
    """One object: the server's fd for its memory, and whether readers may have it."""

    __slots__ = ("fd", "size", "owner", "creator", "sealed", "settled")

    def __init__(self, fd: int, size: int, owner: bytes, creator: object) -> None:
        self.fd = fd
        self.size = size
        self.owner = owner
        self.creator: object | None = creator
        self.sealed = False
        self.settled = trio.Event()  # set once sealed or freed


class _Connection:
    """Replies on one client connection; the send lock keeps each reply's bytes together."""

    def __init__(self, channel: Channel) -> None:
        self.socket = cast(trio.SocketStream, channel.stream).socket
        self.encoder = msgspec.msgpack.Encoder()
        self.send_lock = trio.Lock()

    async def reply(self, message: Any, fd: int | None = None) -> None:
        """Send one framed message, with ``fd`` attached to its first byte (the fd is not closed)."""
        async with self.send_lock:
            await self.send_locked(message, fd)

    async def send_locked(self, message: Any, fd: int | None = None) -> None:
        payload = self.encoder.encode(message)
        frame = memoryview(len(payload).to_bytes(4, "big") + payload)
        ancillary = [] if fd is None else [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))]
        while frame:
            sent = await self.socket.sendmsg([frame], ancillary, socket.MSG_NOSIGNAL)
            frame, ancillary = frame[sent:], []

    async def send_file(self, fd: int, size: int) -> None:
        """Stream ``size`` bytes of ``fd`` with sendfile (the caller holds the send lock)."""
        offset = 0
        while offset < size:
            try:
                offset += os.sendfile(self.socket.fileno(), fd, offset, size - offset)
            except BlockingIOError:
                await trio.lowlevel.wait_writable(self.socket)


class ObjectStore:
    """The objects of one node, served to authenticated local clients.

    Everything runs in one Trio thread; ``free_owner``, ``stats`` and
    ``close`` are synchronous and must be called from that thread.
    """

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError(f"store capacity must be positive, got {capacity}")
        self.capacity = capacity
        self.used = 0
        self._objects: dict[bytes, _Object] = {}
        self._waiting_gets = 0
        self.bytes_sent = 0  # object bytes streamed to readers on other nodes (StoreRead), since start

    # ---- serving ---------------------------------------------------------

    async def serve(
        self, address: str, token: str, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Accept store clients on ``address`` until cancelled; report the bound address.

        A connection that fails the handshake or sends a malformed frame or
        message is closed; the others are unaffected. Objects a connection
        created but did not seal are freed when it closes.
        """
        await serve(address, token, StoreMessage, self._handle, task_status=task_status)

    async def _handle(self, channel: Channel) -> None:
        conn = _Connection(channel)
        try:
            async with trio.open_nursery() as nursery:
                while True:
                    message = await channel.receive()
                    await self._dispatch(conn, message, nursery)
        finally:
            self._free_unsealed(conn)

    async def _dispatch(self, conn: _Connection, message: Any, nursery: trio.Nursery) -> None:
        if isinstance(message, StoreCreate):
            await self._create(conn, message)
        elif isinstance(message, StoreSeal):
            await conn.reply(self._seal(conn, message))
        elif isinstance(message, StoreGet):
            nursery.start_soon(self._get, conn, message)
        elif isinstance(message, StoreRead):
            nursery.start_soon(self._read, conn, message)
        elif isinstance(message, StoreFree):
            self.free(message.object_ids)
        elif isinstance(message, StoreStatsRequest):
            used, capacity, objects = self.stats()
            await conn.reply(StoreStats(req=message.req, used=used, capacity=capacity, objects=objects))
        else:
            raise ProtocolError(f"{type(message).__name__} is not a request a store client may send")

    # ---- requests ----------------------------------------------------------

    async def _create(self, conn: _Connection, request: StoreCreate) -> None:
        error = self._refusal(request)
        if error is not None:
            await conn.reply(error)
            return
        try:
            fd = _new_memfd(request.size)
        except OSError as exc:
            await conn.reply(_error(request.req, "full", f"cannot create object memory: {exc}"))
            return
        self._objects[request.object_id] = _Object(fd, request.size, request.owner, conn)
        self.used += request.size
        await self._reply_fd(conn, StoreFd(req=request.req, size=request.size), fd)

    def _refusal(self, request: StoreCreate) -> StoreError | None:
        """Why ``request`` cannot be granted, or None."""
        if request.size <= 0:
            return _error(request.req, "bad", f"object size must be positive, got {request.size}")
        if request.object_id in self._objects:
            return _error(request.req, "exists", f"object {request.object_id.hex()} already exists")
        if self.used + request.size > self.capacity:
            return _error(request.req, "full", self._full_message(request.size))
        return None

    def _full_message(self, size: int) -> str:
        return (
            f"object store is full: an object of {size / MIB:.2f} MiB does not fit, "
            f"{self.used / MIB:.2f} MiB of {self.capacity / MIB:.2f} MiB capacity are used"
        )

    def _seal(self, conn: _Connection, request: StoreSeal) -> StoreOk | StoreError:
        obj = self._objects.get(request.object_id)
        if obj is None:
            return _error(request.req, "lost", f"object {request.object_id.hex()} was freed before it was sealed")
        if obj.sealed:
            return StoreOk(req=request.req)
        if obj.creator is not conn:
            return _error(request.req, "bad", "only the connection that created an object may seal it")
        try:
            fcntl.fcntl(obj.fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_WRITE)
        except OSError as exc:
            if exc.errno != errno.EBUSY:
                raise
            return _error(request.req, "bad", "object is still mapped writable; unmap it before sealing")
        obj.sealed, obj.creator = True, None
        obj.settled.set()
        return StoreOk(req=request.req)

    async def _get(self, conn: _Connection, request: StoreGet) -> None:
        obj = await self._sealed(request.object_id)
        if obj is None:
            await conn.reply(_error(request.req, "lost", f"object {request.object_id.hex()} is not in this store"))
            return
        await self._reply_fd(conn, StoreFd(req=request.req, size=obj.size), obj.fd)

    async def _read(self, conn: _Connection, request: StoreRead) -> None:
        """Send a remote reader the object's bytes (a copy of its memory, via sendfile)."""
        obj = await self._sealed(request.object_id)
        if obj is None:
            await conn.reply(_error(request.req, "lost", f"object {request.object_id.hex()} is not in this store"))
            return
        fd = os.dup(obj.fd)  # the object may be freed while it streams; its memory stays
        try:
            async with conn.send_lock:
                await conn.send_locked(StoreData(req=request.req, size=obj.size))
                await conn.send_file(fd, obj.size)
            self.bytes_sent += obj.size
        finally:
            os.close(fd)

    async def _sealed(self, object_id: bytes) -> _Object | None:
        """The object once it is sealed; None if unknown or freed first."""
        obj = self._objects.get(object_id)
        if obj is not None and not obj.sealed:
            self._waiting_gets += 1
            try:
                await obj.settled.wait()
            finally:
                self._waiting_gets -= 1
        if obj is None or not obj.sealed or self._objects.get(object_id) is not obj:
            return None
        return obj

    async def _reply_fd(self, conn: _Connection, message: StoreFd, fd: int) -> None:
        # Send a duplicate: the object may be freed (and its fd number reused)
        # while the reply waits for room in the socket buffer.
        dup = os.dup(fd)
        try:
            await conn.reply(message, dup)
        finally:
            os.close(dup)

    # ---- freeing -------------------------------------------------------------

    def free(self, object_ids: Iterable[bytes]) -> None:
        """Drop these objects, releasing their capacity; unknown ids are ignored.

        Readers that already mapped an object keep its memory until they unmap it.
        """
        for object_id in object_ids:
            obj = self._objects.pop(object_id, None)
            if obj is not None:
                self._release(obj)

    def free_owner(self, owner: bytes) -> None:
        """Free every object whose StoreCreate named ``owner`` (sealed or not)."""
        self.free([oid for oid, obj in self._objects.items() if obj.owner == owner])

    def _free_unsealed(self, conn: _Connection) -> None:
        self.free([oid for oid, obj in self._objects.items() if obj.creator is conn])

    def _release(self, obj: _Object) -> None:
        self.used -= obj.size
        os.close(obj.fd)
        obj.settled.set()

    def stats(self) -> tuple[int, int, int]:
        """``(used bytes, capacity bytes, number of objects)``, unsealed objects included."""
        return self.used, self.capacity, len(self._objects)

    def objects(self) -> list[tuple[bytes, int, bytes, bool]]:
        """(object id, size, owner id, sealed) of every object held (for the state API)."""
        return [(object_id, obj.size, obj.owner, obj.sealed) for object_id, obj in self._objects.items()]

    @property
    def waiting_gets(self) -> int:
        """How many get requests are waiting for their object to be sealed."""
        return self._waiting_gets

    def close(self) -> None:
        """Free every object; idempotent. Waiting readers are told their objects are lost."""
        self.free(list(self._objects))


def _error(req: int, kind: str, message: str) -> StoreError:
    return StoreError(req=req, kind=kind, message=message)


def _new_memfd(size: int) -> int:
    """A close-on-exec memfd of ``size`` bytes whose size can no longer change."""
    fd = os.memfd_create("actorlib-obj", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        os.ftruncate(fd, size)
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, _SIZE_SEALS)
    except BaseException:
        os.close(fd)
        raise
    return fd
