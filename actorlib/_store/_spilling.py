"""The store's spilling half: making room in a full arena by moving objects nobody reads
into the spill file, and bringing them back when they are read (docs/decisions/0014-spilling.md).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import trio

from .._wire._messages import StoreError, StorePlace
from ._arena import Arena
from ._extents import page_round
from ._spill import SpillFile, pick_victims

if TYPE_CHECKING:
    from ._server import _Object

log = logging.getLogger("actorlib.store")


class Spilling:
    """Mixed into ObjectStore: everything here runs in its Trio thread, but the copies."""

    arena: Arena
    spill: SpillFile
    _held: dict[int, _Object]
    _room: trio.Lock  # one spill (or restore's search for room) at a time
    _spill_error: str  # why the last spill failed, if it did

    if TYPE_CHECKING:  # ObjectStore's

        def _allocate(self, req: int, size: int) -> StorePlace | StoreError: ...

        def _full_message(self, size: int) -> str: ...

        def _drop_extent(self, obj: _Object) -> None: ...

        def _settle(self, obj: _Object) -> None: ...

    async def _make_room(self, req: int, size: int) -> StorePlace | StoreError:
        """An extent for ``size`` bytes, spilling objects nobody reads to disk if need be."""
        placed = self._allocate(req, size)
        if not isinstance(placed, StoreError) or not self.spill.enabled or page_round(size) > self.arena.size:
            return placed
        async with self._room:
            while True:
                placed = self._allocate(req, size)
                if not isinstance(placed, StoreError):
                    return placed
                victims = self._victims(page_round(size))
                if not victims or not await self._evict(victims):
                    return _error(req, "full", self._full_message(size))

    def _victims(self, length: int) -> list[_Object]:
        """Objects to move out of memory to make room for ``length`` bytes, least recently used first."""
        movable = sorted(
            (obj for obj in self._held.values() if obj.indexed and obj.sealed and obj.pins == 0 and obj.creator is None),
            key=lambda obj: obj.used,
        )  # fmt: skip
        needed = max(length - self.arena.extents.free_bytes, 1)
        chosen = pick_victims(((index, obj.length, obj.disk >= 0) for index, obj in enumerate(movable)), needed)
        return [movable[index] for index in chosen]

    async def _evict(self, victims: list[_Object]) -> bool:
        """Drop the victims' extents, writing those without a copy on disk first; whether any went."""
        progress = False
        writes = []
        for obj in victims:
            if obj.disk >= 0:
                self._drop_extent(obj)
                progress = True
                continue
            disk = self.spill.allocate(obj.length)
            if disk is not None:
                obj.pins += 1  # the extent stays while it is written, even if freed meanwhile
                writes.append((obj, disk))
        if writes:
            progress = await self._spill_out(writes) or progress
        return progress

    async def _spill_out(self, writes: list[tuple[_Object, int]]) -> bool:
        jobs = [(obj.offset, obj.size, disk) for obj, disk in writes]
        with trio.CancelScope(shield=True):  # the thread runs to the end anyway; account for what it did
            done, error = await trio.to_thread.run_sync(self._write_all, jobs)
        self._spill_error = "" if error is None else str(error)
        if error is not None:
            log.warning("spilling objects to %s failed: %s", self.spill.directory, error)
        progress = False
        for index, (obj, disk) in enumerate(writes):
            obj.pins -= 1
            if index >= done:
                self.spill.free(disk, obj.length)
                continue
            obj.disk = disk
            if obj.indexed and obj.pins == 0:
                self._drop_extent(obj)
                progress = True
            self._settle(obj)  # freed while it was written: both copies go
        return progress

    def _write_all(self, jobs: list[tuple[int, int, int]]) -> tuple[int, OSError | None]:
        """Copy objects from the arena into the spill file (in a thread): how many went, and why not the rest."""
        for index, (offset, size, disk) in enumerate(jobs):
            try:
                with self.arena.pages(offset, size) as view:
                    self.spill.write(view, disk)
            except OSError as exc:
                return index, exc
        return len(jobs), None

    async def _resident(self, obj: _Object, req: int) -> StoreError | None:
        """Wait until the object is in memory, restoring it from disk; an error if it cannot be."""
        while obj.offset < 0:
            if not obj.indexed:
                return _error(req, "lost", "the object was freed while it was being read back from disk")
            if obj.restored is not None:
                await obj.restored.wait()
                continue
            error = await self._restore(obj, req)
            if error is not None:
                return error
        return None

    async def _restore(self, obj: _Object, req: int) -> StoreError | None:
        obj.restored = done = trio.Event()
        obj.disk_pins += 1
        try:
            placed = await self._make_room(req, obj.size)
            if isinstance(placed, StoreError):
                return placed
            try:
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(self._read_back, placed.offset, obj.size, obj.disk)
            except BaseException as exc:
                self.arena.free(placed.offset, obj.length)
                if isinstance(exc, OSError):
                    return _error(req, "lost", f"the object could not be read back from the spill file: {exc}")
                raise
            obj.offset = placed.offset
            self._held[obj.offset] = obj
            return None
        finally:
            obj.disk_pins -= 1
            obj.restored = None
            done.set()
            self._settle(obj)

    def _read_back(self, offset: int, size: int, disk: int) -> None:
        with self.arena.pages(offset, size) as view:
            self.spill.read_into(view, disk)


def _error(req: int, kind: str, message: str) -> StoreError:
    return StoreError(req=req, kind=kind, message=message)
