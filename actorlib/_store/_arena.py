"""The store's arena: one memfd holding every object of the node, its first bytes
faulted in ahead of use (as huge pages where the kernel gives them), the rest faulted on
first use and given back when idle.

The memfd's size is sealed, so no mapping of it can ever SIGBUS; the kernel
frees its memory once the store has closed it and no process maps it any
more, so nothing outlives the node's processes.
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
import threading
import time
from collections.abc import Iterator

from ._extents import PAGE, Extents
from ._memory import MADV_DONTNEED, MADV_HUGEPAGE, MADV_POPULATE_WRITE, MADV_REMOVE, HUGE_PAGE, address_of, advise, make_huge

PREFAULT_ENV = "ACTORLIB_OBJECT_STORE_PREFAULT"
DEFAULT_PREFAULT = 256 << 20
PREFAULT_CHUNK = 4 << 20
IDLE_TRIM = 10.0  # seconds without a new extent past the prefaulted part before it is given back


def prefault_size(capacity: int) -> int:
    """How much of an arena of ``capacity`` bytes to fault in at start: ``$ACTORLIB_OBJECT_STORE_PREFAULT``
    bytes (default 256 MiB), at most the capacity. Raises ValueError naming a bad setting."""
    raw = os.environ.get(PREFAULT_ENV, "").strip()
    try:
        wanted = int(raw) if raw else DEFAULT_PREFAULT
    except ValueError:
        raise ValueError(f"{PREFAULT_ENV} must be a number of bytes, got {raw!r}") from None
    if wanted < 0:
        raise ValueError(f"{PREFAULT_ENV} must not be negative, got {wanted}")
    return min(wanted, capacity) // PAGE * PAGE


class Arena:
    """The node's object memory: a sealed memfd of ``capacity`` bytes (rounded down to pages)
    and the extents allocated in it.

    ``prefault`` bytes at its start are faulted in by :meth:`prefault_in_background`;
    extents past them are faulted on first use and returned to the kernel by
    :meth:`trim` once nothing new went there for ``IDLE_TRIM`` seconds.
    """

    def __init__(self, capacity: int, prefault: int) -> None:
        size = capacity // PAGE * PAGE
        if size <= 0:
            raise ValueError(f"store capacity must be at least one page ({PAGE} bytes), got {capacity}")
        self.size = size
        self.prefault = min(prefault, size) // PAGE * PAGE
        self.extents = Extents(size)
        self.fd = os.memfd_create("actorlib-arena", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        try:
            os.ftruncate(self.fd, size)
            fcntl.fcntl(self.fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL)
            self._mapping = mmap.mmap(self.fd, size, flags=mmap.MAP_SHARED)
        except BaseException:
            os.close(self.fd)
            raise
        self._address = address_of(self._mapping)
        advise(self._address, size, MADV_HUGEPAGE)  # where the kernel gives shared memory huge pages
        self.faulted = 0  # bytes at the start known to be faulted in (the prefault's progress)
        self._touched_end = 0  # end of the furthest extent handed out since the last trim
        self._last_far = 0.0  # when an extent past the prefaulted part was last handed out
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- extents -------------------------------------------------------------

    def allocate(self, length: int) -> tuple[int, bool] | None:
        """An extent of ``length`` bytes (whole pages): its offset and whether any of it is fresh
        (never faulted in, so writing it with a system call beats faulting it through a mapping)."""
        offset = self.extents.allocate(length)
        if offset is None:
            return None
        end = offset + length
        fresh = end > max(self._touched_end, self.faulted)
        self._touched_end = max(self._touched_end, end)
        if end > self.prefault:
            self._last_far = time.monotonic()
        return offset, fresh

    def free(self, offset: int, length: int) -> None:
        self.extents.free(offset, length)

    @contextlib.contextmanager
    def pages(self, offset: int, size: int) -> Iterator[memoryview]:
        """``size`` bytes at ``offset`` through the store's own mapping, for spilling and restoring
        (blocking use, in a thread). Afterwards the store drops its page tables for them again:
        the memory stays, in no resident set of the store's but the one it was already in."""
        whole = memoryview(self._mapping)
        try:
            with whole[offset : offset + size] as view:
                yield view
        finally:
            whole.release()
            start = offset // PAGE * PAGE
            advise(self._address + start, offset + size - start, MADV_DONTNEED)

    @property
    def used(self) -> int:
        return self.size - self.extents.free_bytes

    def trim(self, now: float) -> int:
        """Give the memory of free extents past the prefaulted part back to the kernel, if no
        extent went there for IDLE_TRIM seconds; returns the bytes given back."""
        if self._touched_end <= self.prefault or now - self._last_far < IDLE_TRIM:
            return 0
        removed = 0
        for offset, length in self.extents.free_extents():
            start, end = max(offset, self.prefault), min(offset + length, self._touched_end)
            if start < end:
                advise(self._address + start, end - start, MADV_REMOVE)
                removed += end - start
        live_end = max((o + n for o, n in self._allocated_spans()), default=0)
        self._touched_end = max(self.prefault, live_end)
        return removed

    def _allocated_spans(self) -> list[tuple[int, int]]:
        spans, cursor = [], 0
        for offset, length in self.extents.free_extents():
            if offset > cursor:
                spans.append((cursor, offset - cursor))
            cursor = offset + length
        if cursor < self.size:
            spans.append((cursor, self.size - cursor))
        return spans

    # ---- faulting in -----------------------------------------------------------

    def prefault_in_background(self) -> None:
        """Fault in the first ``prefault`` bytes from a low-priority thread; returns at once.

        Populating for write never changes what a page holds, so objects may
        be written there meanwhile. The store's own page tables are dropped
        again: the pages stay, in no process's resident set until mapped.
        """
        if self.prefault and self._thread is None:
            self._thread = threading.Thread(target=self._prefault, name="actorlib-store-prefault", daemon=True)
            self._thread.start()

    def _prefault(self) -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        except OSError:
            pass
        offset = 0
        while offset < self.prefault and not self._stop.is_set():
            length = min(PREFAULT_CHUNK, self.prefault - offset)
            # Huge pages where the kernel gives them: faster to allocate, mapped in at a 512th of
            # the cost, read with far fewer TLB misses. Else (or for a tail) 4 KiB pages. Not
            # where an extent was handed out already: collapsing copies pages that are in use.
            untouched = self._touched_end <= offset
            huge = untouched and make_huge(self.fd, self._address, offset, length) and length % HUGE_PAGE == 0
            try:
                if not huge and not advise(self._address + offset, length, MADV_POPULATE_WRITE):
                    return  # a kernel before 5.14: pages are faulted on first use
            except OSError:
                return  # out of memory: the rest is faulted on first use
            advise(self._address + offset, length, MADV_DONTNEED)
            offset += length
            self.faulted = offset

    def close(self) -> None:
        """Stop faulting in and close the store's hold on the memory (idempotent); mappings
        other processes still have keep their pages until they unmap them."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self.fd >= 0:
            self._mapping.close()
            os.close(self.fd)
            self.fd = -1
