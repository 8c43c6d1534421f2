"""One process's mapping of a store's arena: objects are copied in through it, and read
out of it as read-only views, each pinning its extent until the last reference goes.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from ._memory import MADV_HUGEPAGE, MADV_POPULATE_READ, advise, map_shared, unmap

_IOV_MAX = os.sysconf("SC_IOV_MAX")
BIG_PIECE = 1 << 20  # pieces this large are copied by numpy, which releases the GIL
COPY_THREADS = max(1, min(len(os.sched_getaffinity(0)), 4))  # threads that copy (or map in) one large object
PARALLEL_MIN = 8 << 20  # bytes: smaller objects are copied by one thread (a thread's start is ~0.1 ms)
PARALLEL_GRAIN = 1 << 20  # each thread's share starts at a multiple of this (past the first)
LAND_AHEAD = 4 << 20  # a receive's pages are mapped in ahead of it in steps of this
WARM_CHUNK = 2 << 20
WARM_PAUSE = 0.002  # seconds between chunks: the process's own calls must not queue behind warming
CHUNK = 2 << 20  # the grain at which this process remembers which parts it has mapped in


class ArenaMap:
    """A shared, writable mapping of the arena memfd ``fd`` (which this object then owns).

    The mapping stays for the life of the object, so pages it faulted in
    stay mapped: the second object written to the same extent costs a copy
    at memory speed, not a page fault per 4 KiB. Thread-safe.
    """

    def __init__(self, fd: int, size: int, prefault: int = 0) -> None:
        self.fd = fd
        self.size = size
        self.prefault = min(prefault, size)
        self.inode = os.fstat(fd).st_ino  # tells a restarted store's arena from this one
        # Mapped where the arena's huge pages fit (the store makes its prefaulted part huge pages):
        # then mapping 100 MiB in costs 50 entries instead of 25,600, and reading it far fewer TLB
        # misses. The ctypes array is the buffer that views are made from; the memory is unmapped
        # once neither it nor any view of it is referenced.
        self._address = map_shared(fd, size)
        self._map: Any = type("ArenaBytes", (ctypes.c_ubyte * size,), {}).from_address(self._address)
        weakref.finalize(self._map, unmap, self._address, size)
        advise(self._address, size, MADV_HUGEPAGE)
        self._bytes = memoryview(self._map).cast("B")
        self._mapped_in = bytearray(-(-size // CHUNK))  # 1: that chunk's pages are in our page tables
        self._warm_lock = threading.Lock()
        self._warmed = False  # warm() has begun (it runs once)

    def write(self, offset: int, pieces: Sequence[bytes | memoryview], fresh: bool) -> None:
        """Copy ``pieces`` one after the other to ``offset``.

        Into ``fresh`` pages (never faulted in) with gathering writes, which
        fill the page cache without faulting each page through the mapping;
        otherwise through the mapping: an object of PARALLEL_MIN bytes or more
        by COPY_THREADS threads at once, each mapping its share's pages in with
        one system call and copying it with numpy (which releases the GIL).
        """
        pieces = [piece for piece in pieces if len(piece)]
        if fresh:
            _pwrite_all(self.fd, pieces, offset)
            return
        numpy = sys.modules.get("numpy")  # present whenever big buffers come from arrays
        total = sum(len(piece) for piece in pieces)
        placed, at = [], offset
        for piece in pieces:
            placed.append((at, piece))
            at += len(piece)
        threads = COPY_THREADS if numpy is not None and total >= PARALLEL_MIN else 1
        _in_parallel([lambda s=s, e=e: self._copy(placed, s, e, numpy) for s, e in _shares(offset, total, threads)])
        self._mark(offset, total)

    def _copy(self, placed: list[tuple[int, bytes | memoryview]], start: int, end: int, numpy: Any) -> None:
        """Copy the bytes of the ``placed`` pieces that fall in ``[start, end)`` of the arena."""
        if numpy is not None and end - start >= PARALLEL_MIN // 2:
            self._map_for_write(start, end - start)
        for at, piece in placed:
            lo, hi = max(at, start), min(at + len(piece), end)
            if lo >= hi:
                continue
            if numpy is not None and hi - lo >= BIG_PIECE:
                target = numpy.frombuffer(self._map, numpy.uint8, hi - lo, lo)
                numpy.copyto(target, numpy.frombuffer(piece, numpy.uint8, hi - lo, lo - at))
                del target
            else:
                self._bytes[lo:hi] = memoryview(piece).cast("B")[lo - at : hi - at]

    def _map_for_write(self, offset: int, size: int) -> None:
        """Map pages in with one system call where this process has not yet (faulting them in
        one at a time while copying costs twice as much). Failure is harmless: they fault in."""
        first, end = offset // CHUNK, -(-(offset + size) // CHUNK)
        if all(self._mapped_in[first:end]):
            return
        start = offset // 4096 * 4096
        try:
            # READ is enough: the arena's pages exist (shared memory), and a shared writable
            # mapping maps them writable; POPULATE_WRITE would dirty-track them, for nothing.
            advise(self._address + start, offset + size - start, MADV_POPULATE_READ)
        except OSError:
            pass

    def _mark(self, offset: int, size: int) -> None:
        """The chunks ``[offset, offset + size)`` covers whole are in our page tables now."""
        first, last = -(-offset // CHUNK), (offset + size) // CHUNK
        if last > first:
            self._mapped_in[first:last] = b"\x01" * (last - first)

    def view(self, offset: int, size: int, on_release: Callable[[], object]) -> memoryview:
        """A read-only view of ``size`` bytes at ``offset``; ``on_release()`` runs (in whatever
        thread drops it) once neither the view nor anything made from it is referenced.

        A large object's pages are first mapped in with one system call, unless
        this process mapped them already: half the cost of a fault per 64 KiB.
        """
        self._map_in(offset, size)
        return self.landing(offset, size, on_release).toreadonly()

    def _map_in(self, offset: int, size: int) -> None:
        first, end = -(-offset // CHUNK), (offset + size) // CHUNK  # the chunks it covers whole
        if end - first < 2 or all(self._mapped_in[first:end]):
            return
        try:
            if not advise(self._address + offset // 4096 * 4096, size + offset % 4096, MADV_POPULATE_READ):
                return
        except OSError:
            return  # out of memory or an old kernel: the pages fault in as they are read
        self._mapped_in[first:end] = b"\x01" * (end - first)

    def landing(self, offset: int, size: int, on_release: Callable[[], object], *, map_ahead: bool = False) -> memoryview:
        """Like :meth:`view`, but writable: for receiving an object from another node.

        With ``map_ahead``, a thread maps the extent's pages in, front to back,
        while the caller fills it: a receive then writes into mapped pages
        instead of faulting each 4 KiB one in (half the speed of the socket).
        """
        exporter = (ctypes.c_ubyte * size).from_buffer(self._map, offset)
        weakref.finalize(exporter, on_release)
        if map_ahead and size >= PARALLEL_MIN:
            first, end = offset // CHUNK, -(-(offset + size) // CHUNK)
            if not all(self._mapped_in[first:end]):
                _start(lambda: self._map_ahead(exporter, offset, size))
        return memoryview(exporter).cast("B")

    def _map_ahead(self, exporter: object, offset: int, size: int) -> None:
        """Map ``[offset, offset + size)`` in, LAND_AHEAD bytes at a time (``exporter`` keeps the
        mapping alive meanwhile); stops at the first failure: the rest faults in."""
        start, end = offset // 4096 * 4096, offset + size
        while start < end:
            length = min(LAND_AHEAD, end - start)
            try:
                if not advise(self._address + start, length, MADV_POPULATE_READ):
                    return
            except OSError:
                return
            self._mark(start, length)
            start += length
        del exporter

    def warm(self, stop: threading.Event) -> None:
        """Map the arena's prefaulted part into this process, in chunks, until done or ``stop``
        is set (blocking; the GIL is released while the kernel works). The pages exist
        already, and mapping them in for reading maps them writable: nothing is dirtied.
        Only the first call does it; later ones (from any thread) return at once."""
        with self._warm_lock:
            if self._warmed:
                return
            self._warmed = True
        mapping = self._map  # keeps it mapped while we advise on it, even past close()
        offset = 0 if mapping is not None else self.prefault
        while offset < self.prefault and not stop.is_set():
            length = min(WARM_CHUNK, self.prefault - offset)
            if all(self._mapped_in[offset // CHUNK : -(-(offset + length) // CHUNK)]):
                offset += length  # a put or a get mapped it in already
                continue
            try:
                if not advise(self._address + offset, length, MADV_POPULATE_READ):
                    break  # a kernel before 5.14: pages are faulted on first use
            except OSError:
                break
            self._mark(offset, length)
            offset += length
            # Populating holds the mm's lock that the process's own mmap/munmap calls need, and
            # takes a core: pausing between chunks keeps a sync call loop started right after
            # init() at its full rate (0.7x while warming in 8 MiB chunks without pauses).
            stop.wait(WARM_PAUSE)
        del mapping

    def close(self) -> None:
        """Close the fd and drop the mapping (idempotent); views of it keep it until they go."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
            self._bytes.release()
            self._map = None  # unmapped (and the fd mmap keeps closed) once no view exports it


def _shares(offset: int, size: int, parts: int) -> list[tuple[int, int]]:
    """``[offset, offset + size)`` cut into at most ``parts`` spans ``(start, end)`` of about equal
    size, each past the first starting at a multiple of PARALLEL_GRAIN."""
    end = offset + size
    step = -(-size // parts)
    cuts = [offset] + [-(-(offset + step * i) // PARALLEL_GRAIN) * PARALLEL_GRAIN for i in range(1, parts)] + [end]
    cuts = sorted({min(max(cut, offset), end) for cut in cuts})
    return [(a, b) for a, b in zip(cuts, cuts[1:]) if b > a] or [(offset, end)]


def _start(job: Callable[[], None]) -> threading.Thread | None:
    """``job`` started in a daemon thread of its own; None if no thread can be started now."""
    thread = threading.Thread(target=job, name="actorlib-store-copy", daemon=True)
    try:
        thread.start()
    except RuntimeError:  # can't start new thread: the caller does it itself
        return None
    return thread


def _in_parallel(jobs: list[Callable[[], None]]) -> None:
    """Run ``jobs``: the first in this thread, each other in a thread of its own (or here, if no
    thread can start); returns when all are done, raising the first error any of them raised."""
    errors: list[BaseException] = []

    def run(job: Callable[[], None]) -> None:
        try:
            job()
        except BaseException as exc:  # re-raised in the calling thread below
            errors.append(exc)

    started = []
    for job in jobs[1:]:
        thread = _start(lambda job=job: run(job))
        if thread is None:
            run(job)
        else:
            started.append(thread)
    try:
        if jobs:
            run(jobs[0])
    finally:
        for thread in started:
            thread.join()
    if errors:
        raise errors[0]


def _pwrite_all(fd: int, pieces: list[bytes | memoryview], offset: int) -> None:
    """Write ``pieces`` at ``offset`` with gathering writes, resuming short ones."""
    first = 0
    while first < len(pieces):
        written = os.pwritev(fd, pieces[first : first + _IOV_MAX], offset)
        if written <= 0:
            raise OSError(f"writing the object stopped at byte {offset}")
        offset += written
        while first < len(pieces) and written >= len(pieces[first]):
            written -= len(pieces[first])
            first += 1
        if written:
            pieces[first] = memoryview(pieces[first])[written:]
