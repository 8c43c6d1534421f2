"""Memory advice for shared mappings, called through libc so the GIL is released
(``mmap.madvise`` holds it, and faulting in 100 MiB takes tens of milliseconds).
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

_libc = ctypes.CDLL(None, use_errno=True)
_libc.madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
_libc.madvise.restype = ctypes.c_int


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
