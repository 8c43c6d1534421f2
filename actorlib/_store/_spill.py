"""Spilling: where a full store writes objects nobody is reading, and which ones it picks.

Each store spills into one unnamed file (``O_TMPFILE``, or created and unlinked at once)
in the spill directory, holding spilled objects as page-aligned extents. Nothing names the
file, so the kernel reclaims it when the store's process ends, however it ends
(docs/decisions/0014-spilling.md). Its methods block; the store calls them from threads.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass

from ._extents import PAGE, Extents

DIRECTORY_ENV = "ACTORLIB_OBJECT_SPILLING_DIRECTORY"
LIMIT_ENV = "ACTORLIB_OBJECT_SPILLING_LIMIT"
DISK_RESERVE = 0.05  # by default spilling stops short of the last 5% of the disk (Ray's 0.95 threshold)
MIN_BATCH = 16 << 20  # spill at least this much at a time: fewer, longer sequential writes
IO_CHUNK = 64 << 20  # bytes per system call, so a huge object's copy releases the GIL now and then

_FALLOC_FL_KEEP_SIZE = 0x01
_FALLOC_FL_PUNCH_HOLE = 0x02
_libc = ctypes.CDLL(None, use_errno=True)
_libc.fallocate.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long)
_libc.fallocate.restype = ctypes.c_int


@dataclass(frozen=True)
class SpillSettings:
    """Where a store spills and how many bytes it may put there (0: it never spills)."""

    directory: str
    limit: int


def spill_settings(session_dir: str, directory: str = "", limit: int = -1) -> SpillSettings:
    """The spill settings of a node: ``directory`` (else ``$ACTORLIB_OBJECT_SPILLING_DIRECTORY``,
    else ``<session>/spill``) and ``limit`` in bytes (negative: ``$ACTORLIB_OBJECT_SPILLING_LIMIT``,
    else the disk's free space less 5% of its size). Raises ValueError naming a bad setting."""
    directory = directory or os.environ.get(DIRECTORY_ENV, "").strip() or os.path.join(session_dir, "spill")
    if limit < 0:
        raw = os.environ.get(LIMIT_ENV, "").strip()
        try:
            limit = int(raw) if raw else -1
        except ValueError:
            raise ValueError(f"{LIMIT_ENV} must be a number of bytes, got {raw!r}") from None
    if limit < 0:
        limit = default_limit(directory)
    return SpillSettings(directory=directory, limit=limit)


def default_limit(directory: str) -> int:
    """The free space of the disk holding ``directory`` less 5% of its size (0 if unknown)."""
    probe = directory
    while probe and not os.path.isdir(probe):
        probe = os.path.dirname(probe.rstrip("/")) or "/"
    try:
        usage = shutil.disk_usage(probe or "/")
    except OSError:
        return 0
    return max(0, usage.free - int(usage.total * DISK_RESERVE))


class SpillFile:
    """The store's spilled objects on disk: an unnamed file of at most ``limit`` bytes,
    opened on first use. Not thread-safe: one spill or restore at a time."""

    def __init__(self, settings: SpillSettings) -> None:
        self.directory = settings.directory
        self.limit = settings.limit // PAGE * PAGE
        self.extents = Extents(self.limit) if self.limit > 0 else None
        self.fd = -1
        self.written = 0  # bytes spilled since start
        self.restored = 0  # bytes read back since start
        self._made_directory = False

    @property
    def enabled(self) -> bool:
        return self.extents is not None

    @property
    def used(self) -> int:
        """Bytes of the file held by spilled objects."""
        return 0 if self.extents is None else self.limit - self.extents.free_bytes

    def allocate(self, length: int) -> int | None:
        """Room for ``length`` bytes (whole pages) in the file, or None past the limit."""
        return None if self.extents is None else self.extents.allocate(length)

    def free(self, offset: int, length: int) -> None:
        """Give an extent back, and its disk blocks to the file system (where it can punch holes)."""
        assert self.extents is not None
        self.extents.free(offset, length)
        if self.fd >= 0:
            _libc.fallocate(self.fd, _FALLOC_FL_PUNCH_HOLE | _FALLOC_FL_KEEP_SIZE, offset, length)

    def write(self, source: memoryview, offset: int) -> None:
        """Write ``source`` at ``offset`` of the file (blocking; opens the file first time).
        Raises OSError (ENOSPC when the disk filled up meanwhile)."""
        fd = self._open()
        done = 0
        while done < len(source):
            done += os.pwrite(fd, source[done : done + IO_CHUNK], offset + done)
        self.written += len(source)

    def read_into(self, target: memoryview, offset: int) -> None:
        """Fill ``target`` from ``offset`` of the file (blocking)."""
        done = 0
        while done < len(target):
            got = os.preadv(self.fd, [target[done : done + IO_CHUNK]], offset + done)
            if got <= 0:
                raise OSError(f"the spill file ended at byte {offset + done}")
            done += got
        self.restored += len(target)

    def _open(self) -> int:
        if self.fd < 0:
            if not os.path.isdir(self.directory):
                os.makedirs(self.directory, mode=0o700, exist_ok=True)
                self._made_directory = True
            self.fd = _unnamed_file(self.directory)
        return self.fd

    def close(self) -> None:
        """Close the file, whose blocks the kernel then frees, and remove the directory if this
        file made it and nothing else went there (idempotent)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if self._made_directory:
            self._made_directory = False
            try:
                os.rmdir(self.directory)
            except OSError:
                pass  # someone else's files are in it, or it is gone already


def _unnamed_file(directory: str) -> int:
    """A new file in ``directory`` that no name refers to."""
    try:
        return os.open(directory, os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o600)
    except OSError:
        pass  # a file system without O_TMPFILE: create and unlink at once
    fd, path = tempfile.mkstemp(prefix="spill-", dir=directory)
    os.unlink(path)
    return fd


def pick_victims(candidates: Iterable[tuple[int, int, bool]], needed: int) -> list[int]:
    """Which objects to move out of memory to free ``needed`` bytes (pure).

    ``candidates`` are (key, length, on_disk) of the objects that may leave memory,
    least recently used first. Objects with a copy on disk go first (dropping them
    costs nothing); then others, to at least ``needed`` bytes and at least MIN_BATCH
    of writing, so that spills are few and long.
    """
    items = list(candidates)
    victims, freed = [], 0
    for key, length, on_disk in items:
        if on_disk and freed < needed:
            victims.append(key)
            freed += length
    if freed >= needed:
        return victims
    written = 0
    for key, length, on_disk in items:
        if freed >= needed and written >= MIN_BATCH:
            break
        if not on_disk:
            victims.append(key)
            freed += length
            written += length
    return victims
