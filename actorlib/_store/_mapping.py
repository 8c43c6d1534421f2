"""One process's mapping of a store's arena: objects are copied in through it, and read
out of it as read-only views, each pinning its extent until the last reference goes.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import sys
import threading
import weakref
from collections.abc import Callable, Sequence

from ._memory import MADV_HUGEPAGE, MADV_POPULATE_READ, MADV_POPULATE_WRITE, address_of, advise

_IOV_MAX = os.sysconf("SC_IOV_MAX")
BIG_PIECE = 1 << 20  # pieces this large are copied by numpy, which releases the GIL
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
        self._map: mmap.mmap | None = mmap.mmap(fd, size, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ | mmap.PROT_WRITE)
        self._address = address_of(self._map)
        advise(self._address, size, MADV_HUGEPAGE)
        self._bytes = memoryview(self._map)
        self._mapped_in = bytearray(-(-size // CHUNK))  # 1: that chunk's pages are in our page tables

    def write(self, offset: int, pieces: Sequence[bytes | memoryview], fresh: bool) -> None:
        """Copy ``pieces`` one after the other to ``offset``.

        Into ``fresh`` pages (never faulted in) with gathering writes, which
        fill the page cache without faulting each page through the mapping;
        otherwise through the mapping, big pieces by numpy (GIL released).
        """
        pieces = [piece for piece in pieces if len(piece)]
        if fresh:
            _pwrite_all(self.fd, pieces, offset)
            return
        numpy = sys.modules.get("numpy")  # present whenever big buffers come from arrays
        start = offset
        for piece in pieces:
            end = offset + len(piece)
            if numpy is not None and len(piece) >= BIG_PIECE:
                target = numpy.frombuffer(self._map, numpy.uint8, len(piece), offset)
                numpy.copyto(target, numpy.frombuffer(piece, numpy.uint8))
                del target
            else:
                self._bytes[offset:end] = piece
            offset = end
        # Written through the mapping: those pages are in our page tables now, and a get of
        # what we just put need not map them in again (~8 ms for 100 MiB here).
        first, last = -(-start // CHUNK), offset // CHUNK
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

    def landing(self, offset: int, size: int, on_release: Callable[[], object]) -> memoryview:
        """Like :meth:`view`, but writable: for receiving an object from another node."""
        exporter = (ctypes.c_ubyte * size).from_buffer(self._map, offset)
        weakref.finalize(exporter, on_release)
        return memoryview(exporter).cast("B")

    def warm(self, stop: threading.Event) -> None:
        """Fault the arena's prefaulted part into this mapping for writing, in chunks, until
        done or ``stop`` is set (blocking; the GIL is released while the kernel works)."""
        mapping = self._map  # keeps it mapped while we advise on it, even past close()
        offset = 0 if mapping is not None else self.prefault
        while offset < self.prefault and not stop.is_set():
            length = min(WARM_CHUNK, self.prefault - offset)
            try:
                if not advise(self._address + offset, length, MADV_POPULATE_WRITE):
                    break  # a kernel before 5.14: pages are faulted on first use
            except OSError:
                break
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
