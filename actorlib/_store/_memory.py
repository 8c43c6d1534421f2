"""Memory advice for shared mappings, called through libc so the GIL is released
(``mmap.madvise`` holds it, and faulting in 100 MiB takes tens of milliseconds), and
mappings placed where huge pages fit.
"""

from __future__ import annotations

import ctypes
import mmap
import os

MADV_DONTNEED = 4
MADV_REMOVE = 9  # free the pages and their backing store (shared memory: punch a hole)
MADV_HUGEPAGE = 14
MADV_POPULATE_READ = 22  # Linux 5.14
MADV_POPULATE_WRITE = 23
MADV_COLLAPSE = 25  # Linux 6.1
HUGE_PAGE = 2 << 20
PAGE = mmap.PAGESIZE

_libc = ctypes.CDLL(None, use_errno=True)
_libc.madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
_libc.madvise.restype = ctypes.c_int
_libc.mmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long)
_libc.mmap.restype = ctypes.c_void_p
_libc.munmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t)
_libc.munmap.restype = ctypes.c_int
_MAP_FAILED = ctypes.c_void_p(-1).value
_PROT_NONE = 0
_MAP_FIXED = 0x10
_MAP_NORESERVE = 0x4000


def address_of(mapping: mmap.mmap) -> int:
    """The address where ``mapping`` starts (valid while it is mapped)."""
    first = ctypes.c_char.from_buffer(mapping)
    try:
        return ctypes.addressof(first)
    finally:
        del first  # releases the export, so the mapping can still be closed


def advise(address: int, length: int, advice: int) -> bool:
    """``madvise`` over ``length`` bytes at ``address`` (page-aligned), without the GIL.

    Returns False if the kernel does not know this advice (EINVAL: older
    kernels lack POPULATE_*, some configurations HUGEPAGE); raises OSError
    for other failures (ENOMEM when populating past available memory).
    """
    if length <= 0:
        return True
    if _libc.madvise(address, length, advice) == 0:
        return True
    error = ctypes.get_errno()
    if error == 22:  # EINVAL
        return False
    raise OSError(error, f"madvise({advice}) over {length} bytes: {os.strerror(error)}")


def map_shared(fd: int, size: int, offset: int = 0) -> int:
    """Map ``size`` bytes of ``fd`` from ``offset`` (page-aligned) shared and writable, at an
    address congruent to ``offset`` modulo 2 MiB, so that huge pages of the file are mapped
    whole (one entry per 2 MiB instead of 512); returns the address. Undo with :func:`unmap`.

    Raises OSError if the kernel refuses the mapping.
    """
    span = size + HUGE_PAGE
    reserved = _libc.mmap(None, span, _PROT_NONE, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | _MAP_NORESERVE, -1, 0)
    if reserved is None or reserved == _MAP_FAILED:
        error = ctypes.get_errno()
        raise OSError(error, f"reserving {span} bytes of address space: {os.strerror(error)}")
    start = reserved + (offset - reserved) % HUGE_PAGE
    address = _libc.mmap(start, size, mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_SHARED | _MAP_FIXED, fd, offset)
    if address is None or address == _MAP_FAILED:
        error = ctypes.get_errno()
        _libc.munmap(reserved, span)
        raise OSError(error, f"mapping {size} bytes of fd {fd}: {os.strerror(error)}")
    if start > reserved:
        _libc.munmap(reserved, start - reserved)  # the reservation's unused head and tail
    if reserved + span > start + size:
        _libc.munmap(start + size, reserved + span - start - size)
    return start


def unmap(address: int, size: int) -> None:
    """Undo :func:`map_shared` (any thread)."""
    _libc.munmap(address, size)


def collapse(fd: int, offset: int, length: int) -> bool:
    """Make the whole 2 MiB pieces of ``fd``'s ``[offset, offset + length)``, whose pages exist,
    huge pages (``MADV_COLLAPSE``, even where the system's THP setting for shared memory is
    "never"). Best effort: False if the kernel cannot (too old, no huge page free)."""
    start = -(-offset // HUGE_PAGE) * HUGE_PAGE
    end = (offset + length) // HUGE_PAGE * HUGE_PAGE
    if end <= start:
        return False
    try:
        address = map_shared(fd, end - start, start)
    except OSError:
        return False
    try:
        advise(address, end - start, MADV_HUGEPAGE)
        return advise(address, end - start, MADV_COLLAPSE)
    except OSError:
        return False  # EAGAIN/ENOMEM: no huge page to be had now
    finally:
        unmap(address, end - start)


def make_huge(fd: int, address: int, offset: int, length: int) -> bool:
    """Allocate the whole 2 MiB pieces of ``fd``'s ``[offset, offset + length)`` as huge pages:
    one page of each is faulted in through the mapping of ``fd`` at ``address`` (the whole
    file), then :func:`collapse` fills the rest with zeroes (4x faster here than faulting
    every 4 KiB page in). Best effort: False if some stayed small."""
    first = -(-offset // HUGE_PAGE) * HUGE_PAGE
    try:
        for piece in range(first, offset + length - HUGE_PAGE + 1, HUGE_PAGE):
            if not advise(address + piece, PAGE, MADV_POPULATE_WRITE):
                return False
    except OSError:
        return False
    return collapse(fd, offset, length)
