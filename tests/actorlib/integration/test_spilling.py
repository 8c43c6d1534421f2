"""Spilling to disk: a store with a small arena and a spill file, real Unix sockets, blocking
clients in threads (the cluster-level tests are in multinode/test_spilling.py)."""

from __future__ import annotations

import mmap
import os
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import numpy as np
import pytest
import trio

from actorlib._serial import serialize
from actorlib._store import ObjectStore, RemoteReader, object_size, write_object
from actorlib._store._client import _Connection
from actorlib._store._spill import SpillSettings, pick_victims
from actorlib._wire import StoreAttach, StoreCreate, StoreFd, StorePlace, StoreSeal, unix_address
from actorlib.exceptions import ObjectStoreFullError

from .conftest import poll
from .test_store import TOKEN, client, run  # the store tests' client and thread helper

OWNER = b"owner-1"
MIB = 1024 * 1024
CAPACITY = 16 * MIB
PIECE = MIB - 4096  # with its header, one MiB of pages


@asynccontextmanager
async def spilling_store(
    limit: int = 256 * MIB, tcp: bool = False, directory: str = ""
) -> AsyncIterator[tuple[ObjectStore, str]]:
    with tempfile.TemporaryDirectory(prefix="alspill") as tmp:
        spill = SpillSettings(directory=directory or os.path.join(tmp, "spill"), limit=limit)
        store = ObjectStore(CAPACITY, prefault=0, spill=spill)
        address = unix_address(os.path.join(tmp, "store.sock")) + (";127.0.0.1:0" if tcp else "")
        async with trio.open_nursery() as nursery:
            bound = await nursery.start(store.serve, address, TOKEN)
            try:
                yield store, bound
            finally:
                nursery.cancel_scope.cancel()
        if os.path.exists(spill.directory):  # made on the first spill
            assert os.listdir(spill.directory) == []  # the spill file never had a name
        store.close()
        assert store.spill.fd == -1
        assert not os.path.exists(spill.directory)  # the store made it, the store removed it


def oid(i: int) -> bytes:
    return b"obj-%04d" % i


def value(i: int) -> np.ndarray:
    return np.full(PIECE, i % 251, dtype=np.uint8)


def where(store: ObjectStore) -> dict[bytes, bool]:
    """Object id -> whether it is only on disk."""
    return {object_id: spilled for object_id, _, _, _, spilled in store.objects()}


def disk_blocks(store: ObjectStore) -> int:
    """Bytes of disk the spill file holds (its blocks, not its size)."""
    return os.fstat(store.spill.fd).st_blocks * 512 if store.spill.fd >= 0 else 0


async def test_three_times_the_capacity_is_put_read_back_and_the_disk_freed() -> None:
    count = 3 * CAPACITY // MIB
    async with spilling_store() as (store, address):
        with client(address) as c:
            for i in range(count):
                await run(c.put, oid(i), serialize(value(i)), OWNER)
            spilled = [object_id for object_id, only_on_disk in where(store).items() if only_on_disk]
            assert len(spilled) >= count - CAPACITY // MIB  # at most a store's worth is in memory
            assert store.spilled >= len(spilled) * MIB and disk_blocks(store) >= len(spilled) * MIB
            for i in range(count):  # every one, spilled or not, in order and again in reverse
                array = await run(c.get, oid(i))
                assert array.shape == (PIECE,) and (array == i % 251).all()
                del array
            for i in reversed(range(count)):
                array = await run(c.get, oid(i))
                assert (array == i % 251).all()
                del array
            await run(c.free, [oid(i) for i in range(count)])
            stats = await run(c.stats)  # after the free on the same connection
            assert stats.objects == 0 and stats.used == 0
            assert store.spilled == 0
            assert disk_blocks(store) == 0  # the file's blocks went back to the file system
            assert store.spill.written >= len(spilled) * MIB and store.spill.restored > 0


async def test_an_object_being_read_is_never_spilled_from_under_the_reader() -> None:
    async with spilling_store() as (store, address):
        with client(address) as c:
            await run(c.put, b"pinned", serialize(np.arange(PIECE // 8, dtype=np.int64)), OWNER)
            view = await run(c.get, b"pinned")  # zero-copy: a view of the arena, pinned
            for i in range(3 * CAPACITY // MIB):
                await run(c.put, oid(i), serialize(value(i)), OWNER)
            assert where(store)[b"pinned"] is False  # in memory all along, while everything else moved
            assert sum(where(store).values()) >= 2 * CAPACITY // MIB
            assert (view == np.arange(PIECE // 8, dtype=np.int64)).all()  # not overwritten by others
            del view
            await run(c.put, b"after", serialize(value(7)), OWNER)  # the release goes with this request
            for i in range(3 * CAPACITY // MIB):
                await run(c.put, b"more-%d" % i, serialize(value(i)), OWNER)
            assert where(store)[b"pinned"] is True  # unpinned, it may go like any other
            again = await run(c.get, b"pinned")
            assert (again == np.arange(PIECE // 8, dtype=np.int64)).all()


async def test_an_unsealed_object_is_not_spilled() -> None:
    async with spilling_store() as (store, address):
        conn = await run(_Connection, address, TOKEN, "raw")
        try:
            conn.send(StoreAttach(req=1))
            reply, fd = await run(conn.receive, 1, None)
            assert isinstance(reply, StoreFd) and fd is not None
            with mmap.mmap(fd, reply.size) as arena, client(address) as c:
                os.close(fd)
                serialized = serialize(value(99))
                size = object_size(serialized)
                conn.send(StoreCreate(req=2, object_id=b"unsealed", size=size, owner=OWNER))
                place, _ = await run(conn.receive, 2, None)
                assert isinstance(place, StorePlace)
                for i in range(3 * CAPACITY // MIB):  # the writer is slow: others come and go meanwhile
                    await run(c.put, oid(i), serialize(value(i)), OWNER)
                assert where(store)[b"unsealed"] is False
                write_object(memoryview(arena)[place.offset : place.offset + size], serialized)
                conn.send(StoreSeal(req=3, object_id=b"unsealed"))
                await run(conn.receive, 3, None)
                array = await run(c.get, b"unsealed")
                assert (array == 99).all()
                del array
        finally:
            conn.close()


async def test_full_disk_limit_raises_naming_both_figures() -> None:
    async with spilling_store(limit=8 * MIB) as (store, address):
        with client(address) as c:
            with pytest.raises(ObjectStoreFullError) as info:
                for i in range(64):
                    await run(c.put, oid(i), serialize(value(i)), OWNER)
            assert i >= (CAPACITY + 8 * MIB) // MIB - 1  # the memory and the disk were both used first
            message = str(info.value)
            assert "of 16.00 MiB capacity are used" in message
            assert "of the 8.00 MiB spill limit are used" in message
            on_disk = where(store)
            reader = RemoteReader(TOKEN, "local")  # how a runtime reads what the full store cannot restore
            try:
                for j in range(i):  # what went in reads back
                    read = reader.read if on_disk[oid(j)] else c.get
                    array = await run(read, address, oid(j)) if on_disk[oid(j)] else await run(c.get, oid(j))
                    assert (array == j % 251).all()
                    del array
            finally:
                reader.close()
            with pytest.raises(ObjectStoreFullError, match="spill limit"):
                await run(c.get, next(object_id for object_id, spilled in on_disk.items() if spilled))


async def test_a_spill_that_fails_is_named_in_the_error_and_the_store_keeps_serving() -> None:
    async with spilling_store(directory="/dev/null/spill") as (store, address):  # not a directory
        with client(address) as c:
            with pytest.raises(ObjectStoreFullError) as info:
                for i in range(CAPACITY // MIB + 1):
                    await run(c.put, oid(i), serialize(value(i)), OWNER)
            assert "the last spill failed" in str(info.value) and "Not a directory" in str(info.value)
            assert store.spilled == 0
            await run(c.free, [oid(0)])
            await run(c.put, b"fits", serialize(value(5)), OWNER)  # room again: it still serves
            array = await run(c.get, b"fits")
            assert (array == 5).all()


async def test_no_spilling_when_the_limit_is_zero() -> None:
    async with spilling_store(limit=0) as (store, address):
        with client(address) as c:
            with pytest.raises(ObjectStoreFullError, match="spilling to disk is off"):
                for i in range(CAPACITY // MIB + 1):
                    await run(c.put, oid(i), serialize(value(i)), OWNER)
            assert store.spilled == 0 and store.spill.fd == -1


async def test_a_remote_reader_gets_a_spilled_object_streamed_from_disk() -> None:
    async with spilling_store(tcp=True) as (store, address):
        unix, tcp = address.split(";")
        with client(unix) as c:
            for i in range(2 * CAPACITY // MIB):
                await run(c.put, oid(i), serialize(value(i)), OWNER)
            assert where(store)[oid(0)] is True
            reader = RemoteReader(TOKEN, "remote")
            try:
                array = await run(reader.read, tcp, oid(0))
            finally:
                reader.close()
            assert (array == 0).all()
            assert where(store)[oid(0)] is True  # streamed from the file, not restored


def test_victims_go_least_recently_used_first_and_copies_on_disk_before_writes() -> None:
    big = 32 * MIB
    # (key, length, on_disk), least recently used first
    items = [(0, MIB, False), (1, MIB, True), (2, big, False), (3, MIB, True)]
    assert pick_victims(items, MIB) == [1]  # dropping a copy already on disk costs nothing
    assert pick_victims(items, 2 * MIB) == [1, 3]
    assert pick_victims(items, 3 * MIB) == [1, 3, 0, 2]  # then written, at least a batch's worth
    assert pick_victims([(0, big, False), (1, MIB, False)], MIB) == [0]
    assert pick_victims([], MIB) == []


def test_an_embedded_cluster_spills_and_reads_everything_back(fresh_cluster, tmp_path) -> None:
    """init(object_spilling_directory=..., object_spilling_limit=...): 3x the store put and read back,
    a task reads a spilled argument, the limit's error names both figures, and freeing empties the disk."""
    import gc

    import actorlib
    from actorlib.util import state

    spill_dir = tmp_path / "spill"
    fresh_cluster(num_cpus=1, object_store_memory=32 * MIB, object_spilling_directory=str(spill_dir),
                  object_spilling_limit=96 * MIB)  # fmt: skip
    refs = [actorlib.put(np.full(4 * MIB, i, dtype=np.uint8)) for i in range(24)]  # 96 MiB: 3x the store

    @actorlib.remote
    def total(array: np.ndarray) -> int:
        return int(array.sum())

    assert actorlib.get(total.remote(refs[0])) == 4 * MIB * 0
    assert actorlib.get(total.remote(refs[1])) == 4 * MIB * 1  # spilled first, restored for the task
    for i, ref in enumerate(refs):
        array = actorlib.get(ref)
        assert array[0] == i and array[-1] == i and (array == i).all()
        del array
    rows = [row for node in state.memory().nodes for row in node.references if row.owned]
    assert {row.where for row in rows} >= {"SPILLED", "STORE"}
    arrays = actorlib.get(refs)  # all at once: the first ones pin the store, the rest come as copies
    assert [int(array[0]) for array in arrays] == list(range(24)) and all((a == i).all() for i, a in enumerate(arrays))
    del arrays
    with pytest.raises(ObjectStoreFullError) as info:
        refs += [actorlib.put(np.full(4 * MIB, 0, dtype=np.uint8)) for _ in range(16)]
    assert "32.00 MiB capacity" in str(info.value) and "96.00 MiB spill limit" in str(info.value)
    assert os.listdir(spill_dir) == []  # the spill file has no name: nothing to leave behind
    del refs
    gc.collect()
    poll(lambda: sum(node.spilled_bytes for node in state.memory().nodes) == 0, timeout=30)


async def test_concurrent_puts_gets_and_frees_keep_every_value_intact() -> None:
    """Four clients put, read (holding a view a while) and free at once in a store that must
    spill all along; every value read is the one put, and in the end memory and disk are empty."""
    import random

    def worker(address: str, seed: int) -> None:
        rng = random.Random(seed)
        mine: list[int] = []
        held = []
        with client(address) as c:
            for step in range(80):
                i = seed * 1000 + step
                c.put(oid(i), serialize(np.full(rng.choice([PIECE // 4, PIECE // 2]), i % 251, np.uint8)), OWNER)
                mine.append(i)
                j = rng.choice(mine)
                array = c.get(oid(j))
                assert (array == j % 251).all(), (seed, j)
                held.append(array)
                if len(held) > 1:  # pins stay well below the capacity: 4 x (2 views + 1 put) of 0.5 MiB
                    held.pop(0)
                if len(mine) > 40:
                    gone = mine.pop(rng.randrange(len(mine)))
                    c.free([oid(gone)])
            held.clear()
            c.free([oid(i) for i in mine])
            c.stats()

    async with spilling_store() as (store, address):
        async with trio.open_nursery() as nursery:
            for seed in range(1, 5):
                nursery.start_soon(run, worker, address, seed)
        assert store.spill.written > 0 and store.spill.restored > 0  # it did spill and restore
        with client(address) as c:
            stats = await run(c.stats)
        assert stats.objects == 0 and stats.used == 0 and store.spilled == 0 and disk_blocks(store) == 0
