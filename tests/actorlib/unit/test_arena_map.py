"""One process's mapping of the arena: what it writes reads back, and it remembers which of
its pages it mapped in so that a get of what it just put does not map them in again."""

import os

import numpy as np

from actorlib._store._mapping import CHUNK, ArenaMap

SIZE = 8 * CHUNK


def _arena() -> ArenaMap:
    fd = os.memfd_create("test-arena")
    os.ftruncate(fd, SIZE)
    return ArenaMap(fd, SIZE)


def test_a_write_through_the_mapping_marks_the_chunks_it_covered_whole():
    arena = _arena()
    try:
        data = np.arange(3 * CHUNK, dtype=np.uint8)
        offset = CHUNK // 2  # covers chunk 1 and 2 whole, halves of 0 and 3
        arena.write(offset, [memoryview(data)], fresh=False)
        assert list(arena._mapped_in) == [0, 1, 1, 0, 0, 0, 0, 0]
        view = arena.view(offset, len(data), lambda: None)
        assert np.array_equal(np.frombuffer(view, np.uint8), data)
        del view
    finally:
        arena.close()


def test_a_write_into_fresh_pages_maps_nothing_in():
    arena = _arena()
    try:
        data = bytes(range(256)) * (2 * CHUNK // 256)
        arena.write(0, [data], fresh=True)  # gathering writes to the fd, not through the mapping
        assert not any(arena._mapped_in)
        view = arena.view(0, len(data), lambda: None)
        assert bytes(view) == data
        del view
        assert all(arena._mapped_in[:2])  # the read mapped them in
    finally:
        arena.close()
