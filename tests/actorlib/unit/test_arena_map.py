"""One process's mapping of the arena: what it writes reads back (large objects copied by
several threads), it remembers which of its pages it mapped in so that a get of what it
just put does not map them in again, and it sits where the arena's huge pages fit."""

import ctypes
import mmap
import os
import socket
import threading
import time

import numpy as np
import pytest

from actorlib._store import _mapping
from actorlib._store._mapping import CHUNK, PARALLEL_GRAIN, PARALLEL_MIN, ArenaMap, _in_parallel, _shares
from actorlib._store._memory import HUGE_PAGE, address_of, collapse, make_huge, map_shared, unmap
from actorlib._store._remote import _receive_into

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


# ---- large objects: copied by several threads, received into pages mapped ahead ----------

BIG = 4 * PARALLEL_MIN  # room for a parallel copy at an odd offset


def _big_arena() -> ArenaMap:
    fd = os.memfd_create("test-arena")
    os.ftruncate(fd, BIG)
    return ArenaMap(fd, BIG)


def _counting_threads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    started: list[int] = []
    real = _mapping._start

    def start(job):
        started.append(1)
        return real(job)

    monkeypatch.setattr(_mapping, "_start", start)
    return started


def test_a_large_object_is_copied_by_several_threads_byte_for_byte(monkeypatch: pytest.MonkeyPatch):
    started = _counting_threads(monkeypatch)
    rng = np.random.default_rng(1)
    big = rng.integers(0, 256, PARALLEL_MIN + 12345, dtype=np.uint8)  # odd size, straddles every cut
    pieces = [b"H" * 40, bytes(range(123)), bytes(29), memoryview(big), b"", b"tail"]
    offset = 4096 + 3 * 64 + 5  # not page-aligned
    arena = _big_arena()
    try:
        arena.write(offset, pieces, fresh=False)
        expected = b"".join(bytes(p) for p in pieces)
        view = arena.view(offset, len(expected), lambda: None)
        assert bytes(view) == expected
        del view
        assert len(started) == _mapping.COPY_THREADS - 1
    finally:
        arena.close()


def test_many_pieces_across_the_threads_shares_land_in_order():
    rng = np.random.default_rng(2)
    pieces = [memoryview(rng.integers(0, 256, 3 * PARALLEL_GRAIN + n, dtype=np.uint8)) for n in (17, 1, 4095, 0, 333)]
    pieces += [b"x" * (PARALLEL_GRAIN - 1)]
    arena = _big_arena()
    try:
        arena.write(PARALLEL_GRAIN - 1, pieces, fresh=False)  # a cut falls inside almost every piece
        expected = b"".join(bytes(p) for p in pieces)
        view = arena.view(PARALLEL_GRAIN - 1, len(expected), lambda: None)
        assert bytes(view) == expected
        del view
        first, last = -(-(PARALLEL_GRAIN - 1) // CHUNK), (PARALLEL_GRAIN - 1 + len(expected)) // CHUNK
        assert all(arena._mapped_in[first:last])
    finally:
        arena.close()


def test_a_share_is_copied_right_without_numpy_too():
    arena = _big_arena()
    try:
        pieces = [bytes(range(256)) * 20, b"abc" * 1000]
        placed = [(100, pieces[0]), (100 + len(pieces[0]), pieces[1])]
        arena._copy(placed, 3000, 6000, None)  # from inside the first piece to inside the second
        whole = b"".join(pieces)
        assert bytes(arena._bytes[3000:6000]) == whole[2900:5900]
        assert bytes(arena._bytes[2990:3000]) == bytes(10)  # nothing outside the share
    finally:
        arena.close()


@pytest.mark.parametrize(
    "offset, size, parts",
    [(0, 1, 2), (0, PARALLEL_MIN, 2), (5, 3 * PARALLEL_GRAIN + 7, 3), (PARALLEL_GRAIN - 1, 2 * PARALLEL_GRAIN, 4),
     (123, PARALLEL_GRAIN // 2, 4), (0, 10 * PARALLEL_GRAIN, 1)],
)
def test_shares_cover_the_span_exactly_once(offset: int, size: int, parts: int):
    shares = _shares(offset, size, parts)
    assert shares[0][0] == offset and shares[-1][1] == offset + size
    assert all(a < b for a, b in shares) and len(shares) <= parts
    assert all(prev[1] == nxt[0] for prev, nxt in zip(shares, shares[1:]))
    assert all(start % PARALLEL_GRAIN == 0 for start, _ in shares[1:])


def test_in_parallel_runs_every_job_and_raises_a_threads_error():
    done = []
    barrier = threading.Barrier(2, timeout=10)

    def fails():
        barrier.wait()  # both jobs were running at once
        raise ValueError("boom in a thread")

    def waits():
        barrier.wait()
        done.append("first")

    with pytest.raises(ValueError, match="boom in a thread"):
        _in_parallel([waits, fails])
    assert done == ["first"]


def test_in_parallel_runs_jobs_here_when_no_thread_starts(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(_mapping, "_start", lambda job: None)
    ran = []
    _in_parallel([lambda: ran.append(threading.get_ident()), lambda: ran.append(threading.get_ident())])
    assert ran == [threading.get_ident()] * 2


def test_a_receive_into_a_landing_mapped_ahead_gets_every_byte():
    size = PARALLEL_MIN + 3 * 4097  # odd: the last step is short
    data = np.random.default_rng(3).integers(0, 256, size, dtype=np.uint8).tobytes()
    arena = _big_arena()
    released = threading.Event()
    a, b = socket.socketpair()
    try:
        sender = threading.Thread(target=a.sendall, args=(data,))
        sender.start()
        room = arena.landing(CHUNK, size, released.set, map_ahead=True)
        _receive_into(b, room)
        sender.join()
        assert bytes(room) == data
        del room
        deadline = time.monotonic() + 10  # the thread mapping ahead ends, then the room goes
        while not released.is_set():
            assert time.monotonic() < deadline, "the landing was never released"
            time.sleep(0.01)
        assert all(arena._mapped_in[1 : (CHUNK + size) // CHUNK])
    finally:
        a.close()
        b.close()
        arena.close()


def test_a_receive_cut_short_raises_and_releases_the_landing():
    arena = _big_arena()
    released = threading.Event()
    a, b = socket.socketpair()
    try:
        a.sendall(b"x" * 1000)
        a.close()
        room = arena.landing(0, PARALLEL_MIN, released.set, map_ahead=True)
        with pytest.raises(EOFError):
            _receive_into(b, room)
        assert bytes(room[:1000]) == b"x" * 1000
        del room
        assert released.wait(10)
    finally:
        b.close()
        arena.close()


def test_warming_maps_the_prefaulted_part_in_once(monkeypatch: pytest.MonkeyPatch):
    fd = os.memfd_create("test-arena")
    os.ftruncate(fd, SIZE)
    arena = ArenaMap(fd, SIZE, prefault=SIZE // 2 + 4096)  # ends inside a chunk
    calls = []
    real = _mapping.advise
    monkeypatch.setattr(_mapping, "advise", lambda *a: calls.append(a) or real(*a))
    monkeypatch.setattr(_mapping, "WARM_PAUSE", 0)
    try:
        arena.write(CHUNK, [np.ones(CHUNK, np.uint8)], fresh=False)  # chunk 1 is mapped: skipped
        calls.clear()
        arena.warm(threading.Event())
        assert list(arena._mapped_in) == [1, 1, 1, 1, 0, 0, 0, 0]
        assert [length for _, length, _ in calls] == [CHUNK, CHUNK, CHUNK, 4096]  # 0, 2, 3 and the last page
        calls.clear()
        arena.warm(threading.Event())
        assert calls == []
    finally:
        arena.close()


def test_warming_stops_when_told():
    fd = os.memfd_create("test-arena")
    os.ftruncate(fd, SIZE)
    arena = ArenaMap(fd, SIZE, prefault=SIZE)
    stop = threading.Event()
    stop.set()
    try:
        arena.warm(stop)
        assert not any(arena._mapped_in)
    finally:
        arena.close()


# ---- huge pages: mappings placed where they fit, the prefaulted part collapsed ----------------


def _pmd_mapped_kib(address: int) -> int:
    """ShmemPmdMapped of this process's mapping that starts at ``address``."""
    with open("/proc/self/smaps") as smaps:
        inside = False
        for line in smaps:
            if "-" in line.split(" ", 1)[0]:
                inside = int(line.split("-", 1)[0], 16) == address
            elif inside and line.startswith("ShmemPmdMapped:"):
                return int(line.split()[1])
    raise AssertionError(f"no mapping at {address:#x}")


@pytest.mark.parametrize("offset", [0, 4096, HUGE_PAGE + 8192])
def test_map_shared_places_the_mapping_where_the_files_huge_pages_fit(offset: int):
    fd = os.memfd_create("test-arena")
    try:
        os.ftruncate(fd, 3 * HUGE_PAGE)
        os.pwrite(fd, b"at the offset", offset)
        address = map_shared(fd, HUGE_PAGE, offset)
        try:
            assert (address - offset) % HUGE_PAGE == 0
            assert ctypes.string_at(address, 13) == b"at the offset"
            ctypes.memmove(address + 100, b"written", 7)
            assert os.pread(fd, 7, offset + 100) == b"written"
        finally:
            unmap(address, HUGE_PAGE)
    finally:
        os.close(fd)


def test_collapsing_keeps_every_byte_and_a_mapping_then_maps_huge_pages():
    size = 3 * HUGE_PAGE + 3 * 4096  # the last, partial huge page stays small
    data = np.random.default_rng(4).integers(0, 256, size, dtype=np.uint8).tobytes()
    fd = os.memfd_create("test-arena")
    os.ftruncate(fd, 4 * HUGE_PAGE)
    os.pwrite(fd, data, 0)
    collapsed = collapse(fd, 0, size)
    assert not collapse(fd, 4096, HUGE_PAGE)  # no whole huge page in it: nothing to do
    arena = ArenaMap(fd, 4 * HUGE_PAGE)
    try:
        view = arena.view(0, size, lambda: None)
        assert bytes(view) == data
        if collapsed:  # Linux 6.1+, and a free huge page: three of them mapped whole
            assert _pmd_mapped_kib(arena._address) == 3 * HUGE_PAGE // 1024
        del view
    finally:
        arena.close()


def test_collapse_of_a_bad_fd_is_false():
    assert collapse(-1, 0, HUGE_PAGE) is False


def test_an_arena_map_unmaps_once_closed_and_its_last_view_is_gone():
    arena = _arena()
    address = arena._address
    view = arena.view(0, 3 * CHUNK, lambda: None)
    arena.close()
    assert _pmd_mapped_kib(address) >= 0  # still mapped: the view refers to it
    assert bytes(view[:4]) == bytes(4)
    del view
    with open("/proc/self/maps") as maps:
        assert not any(line.startswith(f"{address:x}-") for line in maps)


def test_make_huge_keeps_what_the_file_holds_and_zeroes_the_rest():
    fd = os.memfd_create("test-arena")
    os.ftruncate(fd, 3 * HUGE_PAGE)
    os.pwrite(fd, b"kept", HUGE_PAGE + 5000)  # a page already there, in the middle of a huge page
    whole = mmap.mmap(fd, 3 * HUGE_PAGE)
    try:
        huge = make_huge(fd, address_of(whole), 0, 2 * HUGE_PAGE + 4096)  # the partial third is left
        contents = bytes(whole)
        assert contents[HUGE_PAGE + 5000 : HUGE_PAGE + 5004] == b"kept"
        assert contents.count(0) == len(contents) - 4
        arena = ArenaMap(os.dup(fd), 3 * HUGE_PAGE)
        try:
            view = arena.view(0, 2 * HUGE_PAGE, lambda: None)
            if huge:
                assert _pmd_mapped_kib(arena._address) == 2 * HUGE_PAGE // 1024
            del view
        finally:
            arena.close()
    finally:
        whole.close()
        os.close(fd)


def test_the_stores_prefaulted_arena_is_read_through_huge_pages_where_the_kernel_allows():
    from actorlib._store._arena import Arena

    store = Arena(16 * HUGE_PAGE, prefault=8 * HUGE_PAGE)
    try:
        store._prefault()  # what its background thread does
        assert store.faulted == 8 * HUGE_PAGE
        reader = ArenaMap(os.dup(store.fd), store.size)
        try:
            reader.write(0, [np.full(8 * HUGE_PAGE, 7, np.uint8)], fresh=False)
            view = reader.view(0, 8 * HUGE_PAGE, lambda: None)
            assert np.all(np.frombuffer(view, np.uint8) == 7)
            if collapse(store.fd, 0, HUGE_PAGE):  # the kernel makes huge pages (Linux 6.1+)
                assert _pmd_mapped_kib(reader._address) == 8 * HUGE_PAGE // 1024
            del view
        finally:
            reader.close()
    finally:
        store.close()


def test_prefaulting_leaves_memory_handed_out_in_small_pages():
    from actorlib._store._arena import Arena

    store = Arena(16 * HUGE_PAGE, prefault=8 * HUGE_PAGE)
    try:
        placed = store.allocate(3 * HUGE_PAGE)  # an object is written there before prefaulting gets to it
        assert placed == (0, True)
        os.pwrite(store.fd, b"in use", HUGE_PAGE)
        store._prefault()
        assert store.faulted == 8 * HUGE_PAGE and os.pread(store.fd, 6, HUGE_PAGE) == b"in use"
        reader = ArenaMap(os.dup(store.fd), store.size)
        try:
            view = reader.view(0, 8 * HUGE_PAGE, lambda: None)
            assert bytes(view[HUGE_PAGE : HUGE_PAGE + 6]) == b"in use"
            assert _pmd_mapped_kib(reader._address) in (0, 4 * HUGE_PAGE // 1024)  # only the untouched 4 MiB chunks
            del view
        finally:
            reader.close()
    finally:
        store.close()
