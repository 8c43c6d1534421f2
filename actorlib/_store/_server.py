"""The per-node object store server: every object an extent of one arena (a memfd
handed to clients once over the Unix socket), with capacity accounting in bytes,
reader pins that keep an extent from being reused while a view of it is alive, and
spilling to disk of objects nobody reads when the arena is full (``_spilling``).
"""

from __future__ import annotations

import array
import os
import socket
import time
from collections.abc import Iterable
from typing import Any, cast

import msgspec
import trio

from .._wire import Channel, ProtocolError, serve
from .._wire._messages import StoreAttach, StoreCreate, StoreData, StoreError, StoreFd, StoreFree, StoreGet, StoreLand
from .._wire._messages import StoreMessage, StoreOk, StorePlace, StoreRead, StoreRelease, StoreSeal, StoreStats
from .._wire._messages import StoreStatsRequest
from ._arena import Arena, prefault_size
from ._extents import page_round
from ._spill import SpillFile, SpillSettings
from ._spilling import Spilling, _error

MIB = 1024 * 1024
TRIM_INTERVAL = 2.0


class _Object:
    """One object: its extent of the arena (``offset``, -1 while only on disk), its copy in
    the spill file (``disk``, -1 if none), and who still needs them.

    The extent goes back to the arena once the object is out of the index
    (freed), no reader pins it, and its creator is done writing (sealed, or
    its connection closed); or, for a sealed object with a copy on disk, when
    the store needs the room and no reader pins it. The disk copy goes once
    the object is freed and no stream or restore reads it.
    """

    __slots__ = (
        "offset", "length", "size", "owner", "creator", "sealed", "settled", "pins", "indexed", "disk",
        "disk_pins", "restored", "used",
    )  # fmt: skip

    def __init__(self, offset: int, length: int, size: int, owner: bytes, creator: _Connection | None) -> None:
        self.offset = offset
        self.length = length
        self.size = size
        self.owner = owner
        self.creator = creator  # the connection writing it, until sealed
        self.sealed = False
        self.settled = trio.Event()  # set once sealed or freed
        self.pins = 0  # views readers hold, reads streaming it to other nodes, and a spill writing it
        self.indexed = True  # gets may still find it
        self.disk = -1  # offset of its copy in the spill file
        self.disk_pins = 0  # streams and restores reading the disk copy
        self.restored: trio.Event | None = None  # set when a restore under way ends
        self.used = 0  # the store's tick when it was last created or read: least recently used spills first


class _Connection:
    """Replies on one client connection, and the pins and unsealed objects it holds."""

    def __init__(self, channel: Channel) -> None:
        self.socket = cast(trio.SocketStream, channel.stream).socket
        self.encoder = msgspec.msgpack.Encoder()
        self.send_lock = trio.Lock()
        self.pins: dict[int, int] = {}  # extent offset -> views pinned through this connection
        self.creating: dict[bytes, _Object] = {}  # created here, not yet sealed

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

    async def send_file(self, fd: int, offset: int, size: int) -> None:
        """Stream ``size`` bytes of ``fd`` from ``offset`` with sendfile (the caller holds the send lock)."""
        end = offset + size
        while offset < end:
            try:
                offset += os.sendfile(self.socket.fileno(), fd, offset, end - offset)
            except BlockingIOError:
                await trio.lowlevel.wait_writable(self.socket)


class ObjectStore(Spilling):
    """The objects of one node, served to authenticated local clients.

    Everything runs in one Trio thread; ``free``, ``free_owner``, ``stats``
    and ``close`` are synchronous and must be called from that thread.

    Args:
        capacity: bytes of objects the store holds in memory at most (its arena's size).
        prefault: bytes of the arena faulted in at start, in the background
            (default: ``$ACTORLIB_OBJECT_STORE_PREFAULT`` or 256 MiB, at most the capacity).
        spill: where objects go when the arena is full (None: nowhere, the put fails).
    """

    def __init__(self, capacity: int, prefault: int | None = None, spill: SpillSettings | None = None) -> None:
        if capacity <= 0:
            raise ValueError(f"store capacity must be positive, got {capacity}")
        self.capacity = capacity
        self.arena = Arena(capacity, prefault_size(capacity) if prefault is None else prefault)
        self.spill = SpillFile(spill or SpillSettings(directory="", limit=0))
        self._objects: dict[bytes, _Object] = {}  # the index: what gets can find
        self._held: dict[int, _Object] = {}  # every extent in use, by offset
        self._room = trio.Lock()  # one spill (or restore's search for room) at a time
        self._tick = 0
        self._spill_error = ""  # why the last spill failed, if it did
        self._waiting_gets = 0
        self.bytes_sent = 0  # object bytes streamed to readers on other nodes (StoreRead), since start

    @property
    def used(self) -> int:
        """Bytes of the arena in use: objects, and freed ones whose extents readers still pin."""
        return self.arena.used

    @property
    def spilled(self) -> int:
        """Bytes of the spill file in use (objects with a copy on disk, in memory too or not)."""
        return self.spill.used

    # ---- serving ---------------------------------------------------------

    async def serve(
        self, address: str, token: str, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Accept store clients on ``address`` until cancelled; report the bound address.

        A connection that fails the handshake or sends a malformed frame or
        message is closed; the others are unaffected. Objects a connection
        created but did not seal are freed when it closes, and its pins dropped.
        """
        self.arena.prefault_in_background()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._trim_now_and_then)
            bound = await nursery.start(serve, address, token, StoreMessage, self._handle)
            task_status.started(bound)

    async def _trim_now_and_then(self) -> None:
        while True:
            await trio.sleep(TRIM_INTERVAL)
            self.arena.trim(time.monotonic())

    async def _handle(self, channel: Channel) -> None:
        conn = _Connection(channel)
        try:
            async with trio.open_nursery() as nursery:
                while True:
                    message = await channel.receive()
                    await self._dispatch(conn, message, nursery)
        finally:
            self._disconnected(conn)

    async def _dispatch(self, conn: _Connection, message: Any, nursery: trio.Nursery) -> None:
        if isinstance(message, StoreCreate):
            await conn.reply(await self._create(conn, message))
        elif isinstance(message, StoreSeal):
            await conn.reply(self._seal(conn, message))
        elif isinstance(message, StoreGet):
            nursery.start_soon(self._get, conn, message)
        elif isinstance(message, StoreRelease):
            self._release(conn, message.offsets)
        elif isinstance(message, StoreRead):
            nursery.start_soon(self._read, conn, message)
        elif isinstance(message, StoreFree):
            self.free(message.object_ids, by=conn)
        elif isinstance(message, StoreLand):
            await conn.reply(self._land(conn, message))
        elif isinstance(message, StoreAttach):
            await self._reply_fd(conn, StoreFd(req=message.req, size=self.arena.size, prefault=self.arena.prefault), self.arena.fd)
        elif isinstance(message, StoreStatsRequest):
            used, capacity, objects = self.stats()
            await conn.reply(StoreStats(req=message.req, used=used, capacity=capacity, objects=objects))
        else:
            raise ProtocolError(f"{type(message).__name__} is not a request a store client may send")

    # ---- requests ----------------------------------------------------------

    async def _create(self, conn: _Connection, request: StoreCreate) -> StorePlace | StoreError:
        if request.size <= 0:
            return _error(request.req, "bad", f"object size must be positive, got {request.size}")
        if request.object_id in self._objects:
            return _error(request.req, "exists", f"object {request.object_id.hex()} already exists")
        placed = await self._make_room(request.req, request.size)
        if isinstance(placed, StoreError):
            return placed
        if request.object_id in self._objects:  # another connection created it while this one waited for room
            self.arena.free(placed.offset, page_round(request.size))
            return _error(request.req, "exists", f"object {request.object_id.hex()} already exists")
        obj = _Object(placed.offset, page_round(request.size), request.size, request.owner, conn)
        obj.used = self._next_tick()
        self._objects[request.object_id] = self._held[obj.offset] = conn.creating[request.object_id] = obj
        return placed

    def _land(self, conn: _Connection, request: StoreLand) -> StorePlace | StoreError:
        # Never spills: a landing is a transient copy, and the reader falls back to private memory.
        if request.size <= 0:
            return _error(request.req, "bad", f"object size must be positive, got {request.size}")
        placed = self._allocate(request.req, request.size)
        if isinstance(placed, StoreError):
            return placed
        obj = _Object(placed.offset, page_round(request.size), request.size, b"", None)
        obj.sealed, obj.indexed = True, False  # nobody else can get it; it lives while pinned
        self._held[obj.offset] = obj
        self._pin(conn, obj)
        return placed

    def _allocate(self, req: int, size: int) -> StorePlace | StoreError:
        length = page_round(size)
        if self.arena.used + length > self.arena.size:
            return _error(req, "full", self._full_message(size))
        placed = self.arena.allocate(length)
        if placed is None:
            free, largest = self.arena.extents.free_bytes, self.arena.extents.largest()
            return _error(
                req, "full",
                f"object store is full: no free extent holds an object of {size / MIB:.2f} MiB "
                f"({free / MIB:.2f} MiB are free, the largest free extent is {largest / MIB:.2f} MiB)"
                f"{self._spill_figures()}",
            )  # fmt: skip
        offset, fresh = placed
        return StorePlace(req=req, offset=offset, size=size, fresh=fresh)

    def _full_message(self, size: int) -> str:
        held = sum(obj.length for obj in self._held.values() if not obj.indexed)
        pinned = f" ({held / MIB:.2f} MiB by freed objects that readers still hold)" if held else ""
        return (
            f"object store is full: an object of {size / MIB:.2f} MiB does not fit, "
            f"{self.used / MIB:.2f} MiB of {self.capacity / MIB:.2f} MiB capacity are used{pinned}"
            f"{self._spill_figures()}"
        )

    def _spill_figures(self) -> str:
        spill = self.spill
        if not spill.enabled:
            return "; spilling to disk is off"
        pinned = sum(obj.length for obj in self._held.values() if obj.indexed and (obj.pins or not obj.sealed))
        failure = f", the last spill failed: {self._spill_error}" if self._spill_error else ""
        return (
            f"; {pinned / MIB:.2f} MiB of it are being read or written and cannot be spilled, "
            f"{spill.used / MIB:.2f} MiB of the {spill.limit / MIB:.2f} MiB spill limit are used "
            f"(in {spill.directory}){failure}"
        )

    def _seal(self, conn: _Connection, request: StoreSeal) -> StoreOk | StoreError:
        obj = conn.creating.pop(request.object_id, None)
        if obj is None:
            known = self._objects.get(request.object_id)
            if known is not None and known.sealed:
                return StoreOk(req=request.req)
            if known is not None:
                return _error(request.req, "bad", "only the connection that created an object may seal it")
            return _error(request.req, "lost", f"object {request.object_id.hex()} was freed before it was sealed")
        obj.creator = None
        if not obj.indexed:
            self._settle(obj)
            return _error(request.req, "lost", f"object {request.object_id.hex()} was freed before it was sealed")
        obj.sealed = True
        obj.settled.set()
        return StoreOk(req=request.req)

    async def _get(self, conn: _Connection, request: StoreGet) -> None:
        obj = await self._sealed(request.object_id)
        if obj is None:
            await conn.reply(_error(request.req, "lost", f"object {request.object_id.hex()} is not in this store"))
            return
        error = await self._resident(obj, request.req)
        if error is not None:
            await conn.reply(error)
            return
        obj.used = self._next_tick()
        self._pin(conn, obj)  # before the reply: a free (or a spill) meanwhile must not give the extent away
        await conn.reply(StorePlace(req=request.req, offset=obj.offset, size=obj.size))

    def _pin(self, conn: _Connection, obj: _Object) -> None:
        conn.pins[obj.offset] = conn.pins.get(obj.offset, 0) + 1
        obj.pins += 1

    def _release(self, conn: _Connection, offsets: list[int]) -> None:
        for offset in offsets:
            count = conn.pins.get(offset, 0)
            if not count:
                continue  # not pinned through this connection: nothing of ours to release
            if count == 1:
                del conn.pins[offset]
            else:
                conn.pins[offset] = count - 1
            obj = self._held[offset]
            obj.pins -= 1
            self._settle(obj)

    async def _read(self, conn: _Connection, request: StoreRead) -> None:
        """Send a remote reader the object's bytes via sendfile: from memory, or from the spill
        file if it is only there (a remote read does not restore it)."""
        obj = await self._sealed(request.object_id)
        if obj is None:
            await conn.reply(_error(request.req, "lost", f"object {request.object_id.hex()} is not in this store"))
            return
        obj.used = self._next_tick()
        in_memory = obj.offset >= 0
        fd, offset = (self.arena.fd, obj.offset) if in_memory else (self.spill.fd, obj.disk)
        if in_memory:
            obj.pins += 1  # freed or spilled while it streams, the extent waits for the stream
        else:
            obj.disk_pins += 1
        try:
            async with conn.send_lock:
                await conn.send_locked(StoreData(req=request.req, size=obj.size))
                await conn.send_file(fd, offset, obj.size)
            self.bytes_sent += obj.size
        finally:
            if in_memory:
                obj.pins -= 1
            else:
                obj.disk_pins -= 1
            self._settle(obj)

    def _drop_extent(self, obj: _Object) -> None:
        del self._held[obj.offset]
        self.arena.free(obj.offset, obj.length)
        obj.offset = -1

    def _next_tick(self) -> int:
        self._tick += 1
        return self._tick

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
        # Send a duplicate: the store may close (and its fd number be reused)
        # while the reply waits for room in the socket buffer.
        dup = os.dup(fd)
        try:
            await conn.reply(message, dup)
        finally:
            os.close(dup)

    # ---- freeing -------------------------------------------------------------

    def free(self, object_ids: Iterable[bytes], by: _Connection | None = None) -> None:
        """Drop these objects from the index; unknown ids are ignored.

        An extent is reused only once no reader pins it and its writer is
        done: views of a freed object stay valid for as long as they live.
        Freed by its own writer (``by``), an unsealed object is done at once.
        """
        for object_id in object_ids:
            obj = self._objects.pop(object_id, None)
            if obj is None:
                continue
            obj.indexed = False
            obj.settled.set()
            if by is not None and obj.creator is by:
                del by.creating[object_id]
                obj.creator = None
            self._settle(obj)

    def free_owner(self, owner: bytes) -> None:
        """Free every object whose StoreCreate named ``owner`` (sealed or not)."""
        self.free([oid for oid, obj in self._objects.items() if obj.owner == owner])

    def _disconnected(self, conn: _Connection) -> None:
        self.free(list(conn.creating), by=conn)
        for offset, count in conn.pins.items():
            obj = self._held[offset]
            obj.pins -= count
            self._settle(obj)
        conn.pins.clear()

    def _settle(self, obj: _Object) -> None:
        """Give a freed object's extent back to the arena, and its disk copy to the spill file,
        once nobody needs them any more."""
        if obj.indexed:
            return
        if obj.offset >= 0 and obj.pins == 0 and obj.creator is None and self._held.get(obj.offset) is obj:
            self._drop_extent(obj)
        if obj.disk >= 0 and obj.disk_pins == 0:
            self.spill.free(obj.disk, obj.length)
            obj.disk = -1

    def stats(self) -> tuple[int, int, int]:
        """``(used bytes, capacity bytes, number of objects)``: unsealed objects, and freed ones
        still pinned by readers, count as used; the number counts objects gets can find."""
        return self.used, self.capacity, len(self._objects)

    def objects(self) -> list[tuple[bytes, int, bytes, bool, bool]]:
        """(object id, size, owner id, sealed, spilled) of every object held (for the state API);
        spilled: only on disk, not in memory."""
        return [(oid, obj.size, obj.owner, obj.sealed, obj.offset < 0) for oid, obj in self._objects.items()]

    @property
    def waiting_gets(self) -> int:
        """How many get requests are waiting for their object to be sealed."""
        return self._waiting_gets

    def close(self) -> None:
        """Free every object and release the arena; idempotent. Waiting readers are told their
        objects are lost; processes that still map the arena keep its pages until they unmap it."""
        self.free(list(self._objects))
        self.arena.close()
        self.spill.close()
