"""The arena's free-space bookkeeping (pure): first fit, merging, and no extent handed out twice."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actorlib._store._extents import PAGE, Extents, page_round


def test_first_fit_takes_the_lowest_free_extent() -> None:
    extents = Extents(10 * PAGE)
    a, b, c = (extents.allocate(2 * PAGE) for _ in range(3))
    assert (a, b, c) == (0, 2 * PAGE, 4 * PAGE)
    extents.free(a, 2 * PAGE)
    assert extents.allocate(PAGE) == 0  # the hole at the start, not the space at the end
    assert extents.allocate(2 * PAGE) == 6 * PAGE  # the rest of the hole is too small


def test_freed_neighbours_merge_into_one_extent() -> None:
    extents = Extents(6 * PAGE)
    offsets = [extents.allocate(2 * PAGE) for _ in range(3)]
    assert extents.allocate(PAGE) is None and extents.largest() == 0
    extents.free(offsets[0], 2 * PAGE)
    extents.free(offsets[2], 2 * PAGE)
    assert extents.free_extents() == [(0, 2 * PAGE), (4 * PAGE, 2 * PAGE)]
    extents.free(offsets[1], 2 * PAGE)
    assert extents.free_extents() == [(0, 6 * PAGE)] and extents.free_bytes == 6 * PAGE


def test_enough_free_bytes_in_pieces_is_not_an_extent() -> None:
    extents = Extents(4 * PAGE)
    offsets = [extents.allocate(PAGE) for _ in range(4)]
    extents.free(offsets[0], PAGE)
    extents.free(offsets[2], PAGE)
    assert extents.free_bytes == 2 * PAGE and extents.allocate(2 * PAGE) is None


@pytest.mark.parametrize(
    ("offset", "length"),
    [(2 * PAGE, PAGE), (PAGE, 2 * PAGE), (PAGE // 2, PAGE), (0, 0), (3 * PAGE, 2 * PAGE)],
    ids=["free", "half-free", "unaligned", "empty", "past-end"],
)
def test_freeing_what_is_not_allocated_is_refused(offset: int, length: int) -> None:
    extents = Extents(4 * PAGE)
    extents.allocate(2 * PAGE)
    with pytest.raises(ValueError):
        extents.free(offset, length)
    assert extents.free_extents() == [(2 * PAGE, 2 * PAGE)]


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError):
        Extents(PAGE + 1)
    with pytest.raises(ValueError):
        Extents(4 * PAGE).allocate(100)
    assert page_round(1) == PAGE and page_round(PAGE) == PAGE and page_round(PAGE + 1) == 2 * PAGE


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(1, 8), st.integers(0, 50)), max_size=80))
def test_random_allocations_never_overlap_and_frees_restore_everything(steps: list[tuple[bool, int, int]]) -> None:
    size = 32 * PAGE
    extents = Extents(size)
    held: dict[int, int] = {}
    for allocate, pages, pick in steps:
        if allocate or not held:
            offset = extents.allocate(pages * PAGE)
            if offset is None:
                assert extents.largest() < pages * PAGE
                continue
            assert offset % PAGE == 0 and offset + pages * PAGE <= size
            assert all(offset + pages * PAGE <= o or o + n <= offset for o, n in held.items())
            held[offset] = pages * PAGE
        else:
            offset = sorted(held)[pick % len(held)]
            extents.free(offset, held.pop(offset))
        assert extents.free_bytes == size - sum(held.values())
        free = extents.free_extents()
        assert all(a + n < b for (a, n), (b, _) in zip(free, free[1:]))  # sorted, and merged when touching
    for offset, length in list(held.items()):
        extents.free(offset, length)
    assert extents.free_extents() == [(0, size)]
