"""Large objects in the shared-memory store: zero-copy reads, freeing, capacity."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import time

import numpy as np
import pytest
import trio

import actorlib
from actorlib.exceptions import ObjectLostError, ObjectStoreFullError

from .conftest import poll


def in_memfd_mapping(array: np.ndarray) -> bool:
    """Whether the array's data lives in an actorlib memfd mapping of this process."""
    address = array.__array_interface__["data"][0]
    with open("/proc/self/maps") as maps:
        for line in maps:
            span, *rest = line.split()
            start, end = (int(x, 16) for x in span.split("-"))
            if start <= address < end:
                return "memfd:actorlib" in line
    return False


@actorlib.remote
def inspect_array(array):
    return in_memfd_mapping(array), array.flags.writeable, float(array.sum())


@actorlib.remote
def make_array(n):
    return np.ones(n)


def test_large_put_is_read_zero_copy(cluster):
    array = np.arange(10_000_000, dtype=np.float64)  # 80 MB
    ref = actorlib.put(array)
    value = actorlib.get(ref)
    assert np.array_equal(value, array)
    assert in_memfd_mapping(value) and not value.flags.writeable
    assert not in_memfd_mapping(actorlib.get(actorlib.put(np.arange(10))))  # small: inline


def test_large_arguments_and_results_stay_zero_copy(cluster):
    ref = actorlib.put(np.ones(5_000_000))
    assert actorlib.get(inspect_array.remote(ref)) == (True, False, 5_000_000.0)
    # A large direct argument is put in the store for the call.
    assert actorlib.get(inspect_array.remote(np.ones(1_000_000))) == (True, False, 1_000_000.0)
    result = actorlib.get(make_array.remote(2_000_000))
    assert in_memfd_mapping(result) and result.sum() == 2_000_000


def test_objects_are_freed_when_no_ref_remains(fresh_cluster):
    fresh_cluster(num_cpus=2)
    runtime = actorlib._core.current()
    assert runtime.store.stats().used == 0
    ref = actorlib.put(np.zeros(3_000_000))
    results = [make_array.remote(500_000) for _ in range(4)]
    actorlib.wait(results, num_returns=4)
    assert runtime.store.stats().used >= 24_000_000 + 16_000_000
    del results  # task results nobody holds
    gc.collect()
    poll(lambda: runtime.store.stats().used < 24_100_000)
    del ref  # a put value
    gc.collect()
    poll(lambda: runtime.store.stats().used == 0)


def test_store_capacity_is_enforced(fresh_cluster):
    fresh_cluster(num_cpus=1, object_store_memory=50 * 2**20, object_spilling_limit=0)  # no spilling
    kept = actorlib.put(np.zeros(4_000_000))  # 32 MB fits
    with pytest.raises(ObjectStoreFullError, match="MiB"):
        actorlib.put(np.zeros(4_000_000))  # another 32 MB does not
    del kept
    gc.collect()
    poll(lambda: _fits(np.zeros(4_000_000)))

    @actorlib.remote
    def too_big():
        return np.zeros(8_000_000)

    with pytest.raises(ObjectStoreFullError):
        actorlib.get(too_big.remote())


def _fits(array) -> bool:
    try:
        actorlib.put(array)
    except ObjectStoreFullError:
        return False
    return True


def drop_from_store(ref) -> None:
    """Free ``ref``'s object in this node's store behind its owner's back, as a crash would."""
    from actorlib._core import current

    runtime = current()
    stored_id = runtime.objects.get(ref.binary()).value.object_id  # its id in the store
    runtime.store.free([stored_id])
    # The same connection answers in order: once this get fails, the object is gone.
    with pytest.raises(ObjectLostError):
        poll(lambda: runtime.store.get(stored_id) is None)


def test_a_stored_argument_lost_before_its_task_reads_it_is_recomputed(cluster, tmp_path):
    runs = tmp_path / "runs"

    @actorlib.remote
    def produce(n):
        with open(runs, "a") as log:
            log.write("x")
        return np.arange(n, dtype=np.int64)  # 800 KB: kept in the store

    @actorlib.remote
    def total(array):
        return int(array.sum())

    ref = produce.remote(100_000)
    assert actorlib.get(total.remote(ref), timeout=60) == 4_999_950_000
    drop_from_store(ref)
    # The worker cannot read the argument; the owner runs produce() again, then total().
    assert actorlib.get(total.remote(ref), timeout=60) == 4_999_950_000
    assert runs.read_text() == "xx"


def test_a_lost_argument_that_cannot_be_recomputed_fails_its_task_naming_it(cluster):
    @actorlib.remote
    def total(array):
        return int(array.sum())

    ref = actorlib.put(np.arange(100_000, dtype=np.int64))
    drop_from_store(ref)
    with pytest.raises(ObjectLostError, match=f"{ref.hex()}.*cannot be recomputed"):
        actorlib.get(total.remote(ref), timeout=60)


def test_once_results_are_dropped_the_tasks_kept_to_recompute_them_let_go_of_their_arguments(cluster):
    """A stored result keeps its task (to recompute it if its node dies), and so the task's
    arguments; dropping the result lets go of both. (Regression: the kept task was looked up by
    the result's key in the store, never found, and kept for ever, with its arguments: a
    pipeline's intermediate objects stayed in the store, and the soak's driver grew.)"""
    from actorlib.util import state

    @actorlib.remote
    def plus_one(array):
        return array + 1

    def stored() -> set[str]:
        return {o.object_id for o in state.list_objects()}

    before = stored()
    first = make_array.remote(2**17)  # 1 MiB: in the store
    second = plus_one.remote(first)
    assert float(actorlib.get(second, timeout=60).sum()) == 2 * 2**17
    assert len(stored() - before) == 2
    del first  # still an argument of the task kept to recompute ``second``
    gc.collect()
    del second
    gc.collect()
    poll(lambda: not stored() - before, timeout=30)


# ---- refs nested in task arguments: borrowers are counted -----------------------------------


def in_store(object_id: bytes) -> bool:
    from actorlib._core import current

    try:
        return current().store.get(object_id) is not None
    except ObjectLostError:
        return False


def owner_entry(object_id: bytes):
    from actorlib._core import current

    return current().objects.get(object_id)


@actorlib.remote
def first_total(refs):
    return int(actorlib.get(refs[0]).sum())


@actorlib.remote
def first_total_via_a_subtask(refs):
    return actorlib.get(first_total.remote(refs))  # passes the borrowed ref on, nested


_kept: list = []


@actorlib.remote
def keep(refs):
    _kept.extend(refs)  # outlives the task: this worker still borrows it
    return os.getpid()


@actorlib.remote
def pass_back(refs):
    return refs  # the borrowed ref leaves inside a return value, where nobody counts it


def stored(value):
    ref = actorlib.put(value)
    from actorlib._core import current

    return ref, current().objects.get(ref.binary()).value.object_id


def test_a_ref_nested_in_task_arguments_is_freed_once_nobody_holds_it(cluster):
    ref, object_id = stored(np.ones(200_000))
    assert actorlib.get(first_total.remote([ref]), timeout=60) == 200_000
    assert actorlib.get(first_total_via_a_subtask.remote([ref]), timeout=60) == 200_000
    assert in_store(object_id)
    del ref
    poll(lambda: not in_store(object_id), timeout=30)


def test_a_worker_that_keeps_a_nested_ref_keeps_the_object_until_it_dies(cluster):
    ref, object_id = stored(np.ones(200_000))
    ref_id = ref.binary()
    worker = actorlib.get(keep.remote([ref]), timeout=60)
    del ref
    entry = poll(lambda: (e := owner_entry(ref_id)) is not None and e.count == 0 and e)  # the driver dropped it
    assert entry.borrowers and in_store(object_id)  # but the worker still borrows it
    os.kill(worker, signal.SIGKILL)
    poll(lambda: not in_store(object_id), timeout=30)  # a borrower that died holds nothing


def test_a_nested_ref_passed_on_where_nobody_counts_it_is_pinned(cluster):
    ref, object_id = stored(np.ones(200_000))
    ref_id = ref.binary()
    wrapped = pass_back.remote([ref])  # a list holding the ref, kept by the driver unread
    actorlib.wait([wrapped], timeout=60)
    del ref
    entry = poll(lambda: (e := owner_entry(ref_id)) is not None and e.count == 0 and e)
    poll(lambda: not entry.borrowers)  # the worker let go of its own refs ...
    assert entry.escaped and in_store(object_id)  # ... after asking for the object to be pinned
    assert actorlib.get(first_total.remote(wrapped), timeout=60) == 200_000


@actorlib.remote
class Keeper:
    def __init__(self):
        self.kept = []

    def first_total(self, refs):
        return int(actorlib.get(refs[0]).sum())

    def keep(self, refs):
        self.kept.extend(refs)
        return os.getpid()


@actorlib.remote
class AsyncReader:
    async def first_total(self, refs):
        return int((await refs[0]).sum())


def test_refs_nested_in_actor_calls_are_borrowed_too(cluster):
    ref, object_id = stored(np.ones(200_000))
    ref_id = ref.binary()
    reader, keeper = AsyncReader.remote(), Keeper.remote()
    assert actorlib.get(reader.first_total.remote([ref]), timeout=60) == 200_000
    assert actorlib.get(keeper.first_total.remote([ref]), timeout=60) == 200_000
    actorlib.get(keeper.keep.remote([ref]), timeout=60)
    del ref
    entry = poll(lambda: (e := owner_entry(ref_id)) is not None and e.count == 0 and e)
    assert entry.borrowers and in_store(object_id)  # the keeper holds it
    actorlib.kill(keeper)
    poll(lambda: not in_store(object_id), timeout=30)
    actorlib.kill(reader)


@actorlib.remote(num_returns="streaming")
def chunks(n):
    for i in range(n):
        yield np.full(50_000, i)  # 400 KB each: kept in the store


def test_stream_items_nobody_took_are_freed_with_their_generator(cluster):
    from actorlib._core import current
    from actorlib._core._streams import item_id

    runtime = current()
    streams_before = len(runtime.streams)
    gen = chunks.remote(5)
    task_id = gen._task_id
    first = next(gen)
    assert actorlib.get(first, timeout=60)[0] == 0
    items = [item_id(task_id, i) for i in range(5)]
    stored_ids = poll(lambda: all(runtime.objects.get(i) for i in items) and [runtime.objects.get(i).value.object_id for i in items], timeout=60)
    assert all(in_store(object_id) for object_id in stored_ids)
    del gen, first  # one item taken (and dropped), four never taken
    poll(lambda: not any(in_store(object_id) for object_id in stored_ids), timeout=30)
    poll(lambda: len(runtime.streams) == streams_before)


def test_a_stream_abandoned_while_running_drops_what_arrives_later(cluster, tmp_path):
    from actorlib._core import current

    go = tmp_path / "go"

    @actorlib.remote(num_returns="streaming")
    def gated(path):
        yield np.zeros(50_000)
        while not os.path.exists(path):
            time.sleep(0.01)
        for i in range(3):
            yield np.full(50_000, i)

    runtime = current()
    streams_before, objects_before = len(runtime.streams), len(runtime.objects)
    gen = gated.remote(str(go))
    task_id = gen._task_id
    assert actorlib.get(next(gen), timeout=60).sum() == 0
    del gen  # abandoned while the task still runs
    poll(lambda: runtime.streams._streams[task_id].abandoned)
    go.write_text("go")
    poll(lambda: len(runtime.streams) == streams_before and len(runtime.objects) <= objects_before, timeout=30)


@actorlib.remote
class TrioPasser:
    async def pass_back(self, refs):
        await trio.sleep(0)  # a Trio actor: its methods run inside its own Trio loop
        return refs


@actorlib.remote
class AsyncioPasser:
    async def pass_back(self, refs):
        await asyncio.sleep(0)
        return refs


@pytest.mark.parametrize("actor_class", [TrioPasser, AsyncioPasser], ids=["trio", "asyncio"])
def test_an_async_actor_passing_a_borrowed_ref_on_pins_it(cluster, actor_class):
    ref, object_id = stored(np.ones(200_000))
    ref_id = ref.binary()
    passer = actor_class.remote()
    wrapped = passer.pass_back.remote([ref])
    actorlib.wait([wrapped], timeout=60)
    del ref
    entry = poll(lambda: (e := owner_entry(ref_id)) is not None and e.count == 0 and e)
    poll(lambda: not entry.borrowers)
    assert entry.escaped and in_store(object_id)
    assert actorlib.get(first_total.remote(wrapped), timeout=60) == 200_000
    actorlib.kill(passer)
