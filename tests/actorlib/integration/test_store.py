"""The object store over real Unix sockets: a Trio server in the test, blocking clients in threads."""

from __future__ import annotations

import hashlib
import mmap
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from functools import partial
from typing import Any

import msgspec
import numpy as np
import psutil
import pytest
import trio

from actorlib._serial import serialize
from actorlib._store import ObjectExistsError, ObjectStore, StoreClient, default_capacity, object_size, write_object
from actorlib._store._client import _Connection
from actorlib._store._extents import page_round
from actorlib._wire import (
    AuthenticationError,
    StoreAttach,
    StoreCreate,
    StoreFd,
    StoreOk,
    StorePlace,
    StoreSeal,
    unix_address,
)
from actorlib.exceptions import GetTimeoutError, ObjectLostError, ObjectStoreFullError

TOKEN = "store-test-token"
OWNER = b"owner-1"
MIB = 1024 * 1024


@asynccontextmanager
async def running_store(capacity: int = 256 * MIB, prefault: int = 0) -> AsyncIterator[tuple[ObjectStore, str]]:
    store = ObjectStore(capacity, prefault=prefault)
    with tempfile.TemporaryDirectory(prefix="alstore") as tmp:
        async with trio.open_nursery() as nursery:
            address = await nursery.start(store.serve, unix_address(os.path.join(tmp, "store.sock")), TOKEN)
            try:
                yield store, address
            finally:
                nursery.cancel_scope.cancel()
    store.close()


@contextmanager
def client(address: str, token: str = TOKEN, name: str = "test") -> Iterator[StoreClient]:
    c = StoreClient(address, token, name)
    try:
        yield c
    finally:
        c.close()


async def run(fn: Callable[..., Any], *args: Any) -> Any:
    return await trio.to_thread.run_sync(partial(fn, *args))


async def poll_until(predicate: Callable[[], bool], deadline: float = 10.0) -> None:
    with trio.fail_after(deadline):
        while not predicate():
            await trio.sleep(0.005)


def memfd_mappings() -> list[tuple[int, int]]:
    spans = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            if "memfd:actorlib" in line:
                start, end = line.split()[0].split("-")
                spans.append((int(start, 16), int(end, 16)))
    return spans


def data_pointer(arr: np.ndarray) -> int:
    return arr.__array_interface__["data"][0]


@asynccontextmanager
async def raw_connection(address: str) -> AsyncIterator[tuple[_Connection, mmap.mmap]]:
    """An authenticated connection driven message by message, and its map of the arena (closed on exit)."""
    conn = await run(_Connection, address, TOKEN, "raw")
    try:
        conn.send(StoreAttach(req=100))
        reply, fd = await run(conn.receive, 100, None)
        assert isinstance(reply, StoreFd) and fd is not None
        with mmap.mmap(fd, reply.size) as arena:
            os.close(fd)
            yield conn, arena
    finally:
        conn.close()


def create(conn: _Connection, object_id: bytes, size: int) -> StorePlace:
    """Send StoreCreate on a raw connection; return where to write the object."""
    conn.send(StoreCreate(req=1, object_id=object_id, size=size, owner=OWNER))
    reply, fd = conn.receive(1, None)
    assert isinstance(reply, StorePlace) and fd is None
    return reply


def create_unsealed(raw: tuple[_Connection, mmap.mmap], object_id: bytes, value: Any) -> int:
    """Create and write (but do not seal) ``object_id`` on a raw connection; return its size."""
    conn, arena = raw
    serialized = serialize(value)
    size = object_size(serialized)
    place = create(conn, object_id, size)
    write_object(memoryview(arena)[place.offset : place.offset + size], serialized)
    return size


def seal(raw: tuple[_Connection, mmap.mmap], object_id: bytes, req: int = 2) -> None:
    conn, _ = raw
    conn.send(StoreSeal(req=req, object_id=object_id))
    assert isinstance(conn.receive(req, None)[0], StoreOk)


def is_closed_by_peer(sock: socket.socket) -> bool:
    sock.settimeout(10)
    return sock.recv(1) == b""


# ---- values ------------------------------------------------------------------


async def test_put_get_round_trip() -> None:
    value = {"array": np.arange(100_000, dtype=np.int32), "nested": [1, "two", (3.0, None)]}
    async with running_store() as (store, address):
        with client(address) as c:
            size = await run(c.put, b"obj-1", serialize(value), OWNER)
            back = await run(c.get, b"obj-1")
            stats = await run(c.stats)
    assert size == object_size(serialize(value))
    assert np.array_equal(back["array"], value["array"]) and back["nested"] == value["nested"]
    assert (stats.used, stats.objects) == (page_round(size), 1)


async def test_large_array_is_read_zero_copy_and_read_only() -> None:
    arr = np.random.default_rng(0).random(50 * MIB // 8)
    async with running_store() as (store, address):
        with client(address, name="writer") as writer, client(address, name="reader") as reader:
            await run(writer.put, b"big", serialize(arr), OWNER)
            back = await run(reader.get, b"big")
    pointer = data_pointer(back)
    assert any(start <= pointer and pointer + back.nbytes <= end for start, end in memfd_mappings())
    assert not back.flags.writeable
    with pytest.raises(ValueError):
        back[0] = 1.0
    with pytest.raises(ValueError):
        back.setflags(write=True)
    assert np.array_equal(back, arr)


async def test_value_outlives_free_and_store_close() -> None:
    async with running_store() as (store, address):
        with client(address) as c:
            await run(c.put, b"x", serialize(np.arange(200_000)), OWNER)
            back = await run(c.get, b"x")
            await run(c.free, [b"x"])
            assert (await run(c.stats)).objects == 0
    assert back[-1] == 199_999


READER_SCRIPT = """
import hashlib, os, sys
from actorlib._store import StoreClient
client = StoreClient(sys.argv[1], os.environ["ACTORLIB_TOKEN"], "reader-process")
arr = client.get(bytes.fromhex(sys.argv[2]))
print(hashlib.sha256(memoryview(arr)).hexdigest(), arr.flags.writeable, flush=True)
client.close()
"""


async def test_another_process_reads_an_object() -> None:
    arr = np.arange(2 * MIB, dtype=np.int64)
    async with running_store() as (store, address):
        with client(address) as c:
            await run(c.put, b"shared", serialize(arr), OWNER)
        argv = [sys.executable, "-c", READER_SCRIPT, address, b"shared".hex()]
        env = {**os.environ, "ACTORLIB_TOKEN": TOKEN}
        async with trio.open_nursery() as nursery:
            proc = await nursery.start(partial(trio.run_process, argv, stdout=subprocess.PIPE, env=env))
            output = b""
            async for chunk in proc.stdout:
                output += chunk
    assert proc.returncode == 0
    assert not psutil.pid_exists(proc.pid)
    assert output.decode().split() == [hashlib.sha256(memoryview(arr)).hexdigest(), "False"]


# ---- capacity and freeing -------------------------------------------------------


async def test_capacity_exceeded_names_sizes_and_smaller_object_still_fits() -> None:
    async with running_store(capacity=10 * MIB) as (store, address):
        with client(address) as c:
            await run(c.put, b"a", serialize(np.zeros(6 * MIB, dtype=np.uint8)), OWNER)
            with pytest.raises(ObjectStoreFullError) as info:
                await run(c.put, b"b", serialize(np.zeros(6 * MIB, dtype=np.uint8)), OWNER)
            await run(c.put, b"c", serialize(np.zeros(MIB, dtype=np.uint8)), OWNER)
            stats = await run(c.stats)
    assert "6.00 MiB" in str(info.value) and "10.00 MiB capacity" in str(info.value)
    assert stats.objects == 2 and stats.capacity == 10 * MIB


async def test_putting_an_existing_id_is_refused() -> None:
    async with running_store() as (store, address):
        with client(address) as c:
            size = await run(c.put, b"same", serialize(np.zeros(MIB)), OWNER)
            with pytest.raises(ObjectExistsError):
                await run(c.put, b"same", serialize(np.ones(MIB)), OWNER)
            assert (await run(c.get, b"same"))[0] == 0.0
    assert size > MIB * 8


async def test_free_releases_capacity() -> None:
    async with running_store() as (store, address):
        with client(address) as c:
            first = await run(c.put, b"a", serialize(np.zeros(MIB, dtype=np.uint8)), OWNER)
            second = await run(c.put, b"b", serialize(np.zeros(2 * MIB, dtype=np.uint8)), OWNER)
            assert (await run(c.stats)).used == page_round(first) + page_round(second)
            await run(c.free, [b"a", b"never-stored"])
            stats = await run(c.stats)
            assert (stats.used, stats.objects) == (page_round(second), 1)
            with pytest.raises(ObjectLostError):
                await run(c.get, b"a")
    assert store.stats() == (0, 256 * MIB, 0)  # close() freed the rest


async def test_free_owner_frees_only_that_owners_objects() -> None:
    async with running_store() as (store, address):
        with client(address) as c:
            await run(c.put, b"a1", serialize(np.zeros(MIB)), b"A")
            await run(c.put, b"a2", serialize(np.zeros(MIB)), b"A")
            kept = await run(c.put, b"b1", serialize(np.zeros(MIB)), b"B")
            store.free_owner(b"A")
            assert store.stats()[0::2] == (page_round(kept), 1)
            with pytest.raises(ObjectLostError):
                await run(c.get, b"a1")
            assert (await run(c.get, b"b1")).shape == (MIB,)


async def test_disconnect_frees_unsealed_objects() -> None:
    async with running_store() as (store, address):
        async with raw_connection(address) as raw:
            size = await run(create_unsealed, raw, b"half", [1, 2, 3])
            assert store.stats()[0::2] == (page_round(size), 1)
        await poll_until(lambda: store.stats()[2] == 0)
        assert store.stats()[0] == 0


# ---- waiting and losing ----------------------------------------------------------


async def test_get_waits_until_sealed() -> None:
    got: list[Any] = []
    done = trio.Event()
    async with running_store() as (store, address), raw_connection(address) as raw:
        await run(create_unsealed, raw, b"later", {"v": 7})
        with client(address) as c:
            async with trio.open_nursery() as nursery:

                async def reader() -> None:
                    got.append(await run(c.get, b"later"))
                    done.set()

                nursery.start_soon(reader)
                await poll_until(lambda: store.waiting_gets == 1)
                assert not done.is_set()
                await run(seal, raw, b"later")
    assert got == [{"v": 7}]


async def test_freeing_an_awaited_object_makes_get_lost() -> None:
    errors: list[BaseException] = []
    async with running_store() as (store, address), raw_connection(address) as raw:
        await run(create_unsealed, raw, b"doomed", 1)
        with client(address) as c:
            async with trio.open_nursery() as nursery:

                async def reader() -> None:
                    with pytest.raises(ObjectLostError) as info:
                        await run(c.get, b"doomed")
                    errors.append(info.value)

                nursery.start_soon(reader)
                await poll_until(lambda: store.waiting_gets == 1)
                store.free([b"doomed"])
    assert len(errors) == 1


async def test_get_timeout_gives_up_and_server_forgets_the_wait() -> None:
    async with running_store() as (store, address), raw_connection(address) as raw:
        await run(create_unsealed, raw, b"slow", 1)
        with client(address) as c:
            with pytest.raises(GetTimeoutError):
                await run(partial(c.get, b"slow", timeout=0.2))
            await poll_until(lambda: store.waiting_gets == 0)
            await run(seal, raw, b"slow")
            assert await run(c.get, b"slow") == 1  # the client reconnects after a timeout


async def test_get_unknown_id_is_lost() -> None:
    async with running_store() as (store, address):
        with client(address) as c:
            with pytest.raises(ObjectLostError, match=b"nope".hex()):
                await run(c.get, b"nope")


async def test_readers_get_read_only_values_and_the_arena_cannot_be_resized() -> None:
    async with running_store() as (store, address):
        with client(address) as c:
            await run(c.put, b"fixed", serialize(np.arange(1000)), OWNER)
            back = await run(c.get, b"fixed")
        with pytest.raises(ValueError):
            back[0] = 5
        with pytest.raises(ValueError):
            back.setflags(write=True)
        with pytest.raises(TypeError):
            memoryview(back.base).cast("B")[0] = 1  # the buffer under the array is read-only too
        for change in (store.arena.size - 4096, store.arena.size + 4096):
            with pytest.raises(PermissionError):  # sealed: no mapping of it can ever SIGBUS
                os.ftruncate(store.arena.fd, change)


async def test_object_larger_than_one_gathering_write() -> None:
    arrays = [np.full(10, i, dtype=np.int32) for i in range(os.sysconf("SC_IOV_MAX"))]
    async with running_store() as (store, address):
        with client(address) as c:
            await run(c.put, b"many", serialize(arrays), OWNER)
            back = await run(c.get, b"many")
    assert all(np.array_equal(a, b) for a, b in zip(back, arrays, strict=True))


async def test_short_writes_are_resumed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Into memory never faulted in (nothing is prefaulted here) a put writes with pwritev."""
    real_pwritev = os.pwritev

    def short_pwritev(fd: int, pieces: list[Any], offset: int) -> int:
        return real_pwritev(fd, [memoryview(pieces[0])[:1000]], offset)

    monkeypatch.setattr(os, "pwritev", short_pwritev)
    value = [np.arange(5000, dtype=np.int16), b"x" * 3000, np.ones((3, 7))]
    async with running_store() as (store, address):
        with client(address) as c:
            await run(c.put, b"short", serialize(value), OWNER)
            back = await run(c.get, b"short")
    assert np.array_equal(back[0], value[0]) and back[1] == value[1] and np.array_equal(back[2], value[2])


# ---- connections ---------------------------------------------------------------------


async def test_wrong_token_is_refused_and_server_keeps_serving() -> None:
    async with running_store() as (store, address):
        with client(address, token="wrong") as bad:
            with pytest.raises(AuthenticationError):
                await run(bad.stats)
        with client(address) as good:
            assert (await run(good.stats)).objects == 0


def framed(payload: bytes) -> bytes:
    return len(payload).to_bytes(4, "big") + payload


@pytest.mark.parametrize(
    "garbage",
    [framed(b"hello"), b"\xff\xff\xff\xff", framed(msgspec.msgpack.encode(StoreOk(req=1)))],
    ids=["not-a-message", "oversized-length", "server-only-message"],
)
async def test_malformed_frame_closes_only_that_connection(garbage: bytes) -> None:
    async with running_store() as (store, address):
        with client(address) as good:
            await run(good.put, b"kept", serialize(np.zeros(MIB)), OWNER)
            async with raw_connection(address) as (raw, _):
                raw._sock.sendall(garbage)
                assert await run(is_closed_by_peer, raw._sock)
            assert (await run(good.get, b"kept")).shape == (MIB,)
            assert (await run(good.stats)).objects == 1


async def test_client_reconnects_after_the_store_restarts() -> None:
    with tempfile.TemporaryDirectory(prefix="alstore") as tmp:
        address = unix_address(os.path.join(tmp, "store.sock"))
        with client(address) as c:
            for _ in range(2):
                store = ObjectStore(16 * MIB)
                async with trio.open_nursery() as nursery:
                    await nursery.start(store.serve, address, TOKEN)
                    # A put is resent only if the store cannot have seen it: here the send fails.
                    await run(c.put, b"again", serialize(np.arange(1000)), OWNER)
                    assert (await run(c.get, b"again"))[-1] == 999
                    nursery.cancel_scope.cancel()
                store.close()


async def test_threads_share_one_client() -> None:
    async with running_store() as (store, address):
        with client(address) as c:

            def work(thread: int) -> None:
                for i in range(5):
                    object_id = f"t{thread}-{i}".encode()
                    arr = np.full(30_000, thread * 100 + i, dtype=np.int64)
                    c.put(object_id, serialize(arr), OWNER)
                    assert np.array_equal(c.get(object_id), arr)
                    if i % 2:
                        c.free([object_id])

            async with trio.open_nursery() as nursery:
                for thread in range(8):
                    nursery.start_soon(run, work, thread)
            stats = await run(c.stats)
    assert stats.objects == 8 * 3


async def test_no_file_descriptor_is_left_open() -> None:
    before = len(os.listdir("/proc/self/fd"))
    async with running_store() as (store, address):
        with client(address) as c:
            for i in range(20):
                object_id = f"fd-{i}".encode()
                await run(c.put, object_id, serialize(np.arange(30_000)), OWNER)
                await run(c.get, object_id)
                await run(c.free, [object_id])
            with pytest.raises(ObjectLostError):
                await run(c.get, b"fd-0")
    assert len(os.listdir("/proc/self/fd")) == before


# ---- the arena: reuse, pins, full ---------------------------------------------------


def arena_offset(store: ObjectStore, object_id: bytes) -> int:
    return store._objects[object_id].offset


async def test_a_freed_objects_memory_is_not_reused_while_a_view_of_it_lives() -> None:
    async with running_store() as (store, address):
        with client(address) as c:
            await run(c.put, b"a", serialize(np.full(MIB, 1, dtype=np.uint8)), OWNER)
            first = arena_offset(store, b"a")
            view = await run(c.get, b"a")
            await run(c.free, [b"a"])
            await run(c.put, b"b", serialize(np.full(MIB, 2, dtype=np.uint8)), OWNER)
            assert arena_offset(store, b"b") != first  # "a"'s extent is still pinned by the view
            assert (view == 1).all()
            del view
            await run(c.flush)  # the view's release goes out
            await poll_until(lambda: store.used == page_round(object_size(serialize(np.zeros(MIB, np.uint8)))))
            await run(c.put, b"c", serialize(np.full(MIB, 3, dtype=np.uint8)), OWNER)
            assert arena_offset(store, b"c") == first  # first fit: the lowest free extent, now free again
            assert ((await run(c.get, b"c")) == 3).all()


async def test_a_view_taken_before_the_free_survives_many_new_objects() -> None:
    async with running_store(capacity=8 * MIB) as (store, address):
        with client(address) as c:
            await run(c.put, b"kept", serialize(np.arange(MIB // 8, dtype=np.int64)), OWNER)
            kept = await run(c.get, b"kept")
            await run(c.free, [b"kept"])
            for i in range(20):  # more than the arena holds at once: extents are reused around the pin
                object_id = f"churn-{i}".encode()
                await run(c.put, object_id, serialize(np.full(MIB, i, dtype=np.uint8)), OWNER)
                assert ((await run(c.get, object_id)) == i).all()
                await run(c.free, [object_id])
            assert np.array_equal(kept, np.arange(MIB // 8, dtype=np.int64))


async def test_views_keep_their_extent_after_the_client_closes() -> None:
    async with running_store() as (store, address):
        c = StoreClient(address, TOKEN, "closing")
        size = await run(c.put, b"x", serialize(np.ones(MIB)), OWNER)
        view = await run(c.get, b"x")
        await run(c.free, [b"x"])
        c.close()
        await trio.sleep(0.05)  # nothing to wait for: the store must still hold the extent
        assert store.used == page_round(size) and view.sum() == MIB
        del view  # the connection that pinned it closes with its last view
        await poll_until(lambda: store.used == 0)


async def test_a_reader_killed_while_holding_a_view_releases_it() -> None:
    script = """
import os, sys
from actorlib._store import StoreClient
client = StoreClient(sys.argv[1], os.environ["ACTORLIB_TOKEN"], "doomed-reader")
held = client.get(b"held")
print("holding", flush=True)
sys.stdin.read()
"""
    async with running_store() as (store, address):
        with client(address) as c:
            size = await run(c.put, b"held", serialize(np.ones(2 * MIB)), OWNER)
        env = {**os.environ, "ACTORLIB_TOKEN": TOKEN}
        proc = await trio.lowlevel.open_process(
            [sys.executable, "-c", script, address], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
        )
        try:
            assert proc.stdout is not None
            assert (await proc.stdout.receive_some(100)).startswith(b"holding")
            store.free([b"held"])
            assert store.used == page_round(size)  # pinned by the reader
            proc.kill()
            await proc.wait()
            await poll_until(lambda: store.used == 0)
        finally:
            proc.kill()
            with trio.CancelScope(shield=True):
                await proc.wait()
                for stream in (proc.stdin, proc.stdout):
                    if stream is not None:
                        await stream.aclose()
    assert not psutil.pid_exists(proc.pid)


async def test_full_arena_error_names_the_sizes_and_what_readers_hold() -> None:
    async with running_store(capacity=4 * MIB) as (store, address):
        with client(address) as c:
            await run(c.put, b"a", serialize(np.zeros(3 * MIB // 2, dtype=np.uint8)), OWNER)
            view = await run(c.get, b"a")
            await run(c.free, [b"a"])
            with pytest.raises(ObjectStoreFullError) as info:
                await run(c.put, b"b", serialize(np.zeros(3 * MIB, dtype=np.uint8)), OWNER)
            del view
    message = str(info.value)
    assert "3.00 MiB does not fit" in message and "of 4.00 MiB capacity" in message
    assert "1.50 MiB by freed objects that readers still hold" in message


async def test_a_fragmented_arena_says_so() -> None:
    piece = np.zeros(MIB - 4096, dtype=np.uint8)  # with its header: one MiB of pages
    async with running_store(capacity=4 * MIB) as (store, address):
        with client(address) as c:
            for name in (b"a", b"b", b"c"):
                await run(c.put, name, serialize(piece), OWNER)
            await run(c.free, [b"b"])  # free: 1 MiB between a and c, and 1 MiB after c
            with pytest.raises(ObjectStoreFullError) as info:
                await run(c.put, b"d", serialize(np.zeros(MIB + MIB // 2, dtype=np.uint8)), OWNER)
            await run(c.put, b"e", serialize(piece), OWNER)  # what does fit still goes in
    assert "no free extent holds an object of 1.50 MiB" in str(info.value)
    assert "2.00 MiB are free, the largest free extent is 1.00 MiB" in str(info.value)


async def test_landing_room_is_pinned_until_its_view_goes() -> None:
    async with running_store() as (store, address):
        with client(address) as c:
            room = await run(c.land, 3 * MIB)
            room[:5] = b"hello"
            assert store.used == 3 * MIB and store.stats()[2] == 0  # not an object anyone can get
            value = room.toreadonly()[:5]
            del room
            await run(c.flush)
            assert store.used == 3 * MIB and bytes(value) == b"hello"
            del value
            await run(c.flush)
            await poll_until(lambda: store.used == 0)


async def test_prefaulted_arena_is_written_through_the_mapping() -> None:
    arr = np.arange(4 * MIB // 8, dtype=np.int64)
    async with running_store(prefault=8 * MIB) as (store, address):
        await poll_until(lambda: store.arena.faulted == 8 * MIB)
        with client(address) as c:
            await run(c.warm)
            await run(c.put, b"warm", serialize(arr), OWNER)
            assert np.array_equal(await run(c.get, b"warm"), arr)


def test_prefault_size_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from actorlib._store._arena import PREFAULT_ENV, prefault_size

    monkeypatch.delenv(PREFAULT_ENV, raising=False)
    assert prefault_size(10 * 2**30) == 256 * MIB and prefault_size(10 * MIB) == 10 * MIB
    monkeypatch.setenv(PREFAULT_ENV, "0")
    assert prefault_size(10 * 2**30) == 0
    monkeypatch.setenv(PREFAULT_ENV, "lots")
    with pytest.raises(ValueError, match=PREFAULT_ENV):
        prefault_size(10 * MIB)


def test_default_capacity_is_30_percent_of_physical_memory() -> None:
    assert default_capacity() == pytest.approx(0.3 * psutil.virtual_memory().total, rel=0.01)
