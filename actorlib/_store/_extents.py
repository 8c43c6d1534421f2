"""Free space of the store's arena (sans-I/O): first-fit allocation of page-aligned
extents, with neighbouring free extents merged when one is freed.
"""

from __future__ import annotations

import bisect

PAGE = 4096


def page_round(size: int) -> int:
    """``size`` rounded up to a whole number of pages."""
    return -(-size // PAGE) * PAGE


class Extents:
    """The free extents of a region of ``size`` bytes, all of it free at first.

    Allocation is first fit from the lowest offset, so objects gather at the
    start of the region, where memory is already faulted in. Not thread-safe.
    """

    def __init__(self, size: int) -> None:
        if size <= 0 or size % PAGE:
            raise ValueError(f"an arena must be a positive number of pages, got {size} bytes")
        self.size = size
        self.free_bytes = size
        self._starts = [0]  # sorted offsets of free extents
        self._length = {0: size}  # free extent: offset -> length
        self._by_end = {size: 0}  # free extent: end -> offset

    def allocate(self, length: int) -> int | None:
        """The offset of a fresh extent of ``length`` bytes (a positive multiple of PAGE), or None."""
        if length <= 0 or length % PAGE:
            raise ValueError(f"extents are whole pages, got {length} bytes")
        if length > self.free_bytes:
            return None
        for index, start in enumerate(self._starts):
            have = self._length[start]
            if have >= length:
                self._take(index, start, have, length)
                return start
        return None

    def free(self, offset: int, length: int) -> None:
        """Return an allocated extent; merges it with free neighbours."""
        if length <= 0 or offset % PAGE or length % PAGE or offset + length > self.size:
            raise ValueError(f"not an extent of this arena: {offset}+{length}")
        end = offset + length
        index = bisect.bisect_left(self._starts, offset)
        if (index < len(self._starts) and self._starts[index] < end) or (
            index and self._starts[index - 1] + self._length[self._starts[index - 1]] > offset
        ):
            raise ValueError(f"extent {offset}+{length} is already free")
        self.free_bytes += length
        before = self._by_end.pop(offset, None)
        if before is not None:  # merge with the free extent that ends where this one starts
            del self._length[before]
            self._starts.pop(index - 1)
            index -= 1
            offset = before
        after = self._length.pop(end, None)
        if after is not None:  # ... and with the one that starts where it ends
            del self._by_end[end + after]
            self._starts.pop(index)
            end += after
        self._starts.insert(index, offset)
        self._length[offset] = end - offset
        self._by_end[end] = offset

    def largest(self) -> int:
        """The length of the largest free extent (0 if none)."""
        return max(self._length.values(), default=0)

    def free_extents(self) -> list[tuple[int, int]]:
        """Every free extent as (offset, length), by offset."""
        return [(start, self._length[start]) for start in self._starts]

    def _take(self, index: int, start: int, have: int, length: int) -> None:
        del self._by_end[start + have]
        del self._length[start]
        self.free_bytes -= length
        if have == length:
            self._starts.pop(index)
            return
        rest = start + length
        self._starts[index] = rest
        self._length[rest] = have - length
        self._by_end[rest + have - length] = rest
