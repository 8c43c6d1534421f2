"""Remote functions on a real local cluster: submit, get, wait, put, refs, nesting, await."""

from __future__ import annotations

import asyncio
import os

import psutil
import pytest
import sniffio
import trio

import actorlib
from actorlib.exceptions import GetTimeoutError

pytestmark = pytest.mark.usefixtures("cluster")


@actorlib.remote
def add(a, b=0):
    return a + b


@actorlib.remote
def identity(x):
    return x


@actorlib.remote
def pid():
    return os.getpid()


@actorlib.remote(num_returns=3)
def three(x):
    return x, x + 1, x + 2


@actorlib.remote
def sleepy(seconds, value=None):
    import time

    time.sleep(seconds)
    return value


def test_get_one_and_many():
    assert actorlib.get(add.remote(1, 2)) == 3
    assert actorlib.get([add.remote(i, b=i) for i in range(10)]) == [2 * i for i in range(10)]
    assert actorlib.get([]) == []


def test_tasks_run_in_other_processes():
    pids = set(actorlib.get([pid.remote() for _ in range(4)]))
    assert os.getpid() not in pids


def test_remote_functions_cannot_be_called_directly():
    with pytest.raises(TypeError, match=r"add\.remote\(\)"):
        add(1, 2)


def test_num_returns():
    refs = three.remote(10)
    assert len(refs) == 3
    assert actorlib.get(refs) == [10, 11, 12]
    assert actorlib.get(add.options(num_returns=1).remote(1)) == 1


def test_refs_as_top_level_arguments_are_resolved():
    a = add.remote(1, 1)
    assert actorlib.get(add.remote(a, b=add.remote(a, a))) == 6
    assert actorlib.get(identity.remote(actorlib.put([1, 2]))) == [1, 2]


def test_nested_refs_are_passed_as_refs():
    inner = actorlib.put("inside")

    @actorlib.remote
    def look(box):
        ref = box[0]
        return type(ref).__name__, actorlib.get(ref)

    assert actorlib.get(look.remote([inner])) == ("ObjectRef", "inside")


def test_tasks_submit_and_get_tasks():
    @actorlib.remote
    def fan_out(n):
        return sum(actorlib.get([add.remote(i, 1) for i in range(n)]))

    # More outer tasks than CPUs: blocked workers must lend their CPUs.
    assert actorlib.get([fan_out.remote(5) for _ in range(4)]) == [15] * 4


def test_put_and_get_snapshot():
    data = {"a": [1, 2, 3]}
    ref = actorlib.put(data)
    data["a"].append(4)
    assert actorlib.get(ref) == {"a": [1, 2, 3]}
    with pytest.raises(TypeError, match="ObjectRef"):
        actorlib.put(ref)


def test_get_timeout_raises_a_timeout_error():
    ref = sleepy.remote(5)
    with pytest.raises(GetTimeoutError) as info:
        actorlib.get(ref, timeout=0.1)
    assert isinstance(info.value, TimeoutError)
    actorlib.cancel(ref)


def test_wait_preserves_order_and_counts():
    slow = sleepy.remote(30)
    fast = [identity.remote(i) for i in range(3)]
    refs = [slow, *fast]
    ready, not_ready = actorlib.wait(refs, num_returns=3, timeout=30)
    assert ready == fast and not_ready == [slow]
    ready, not_ready = actorlib.wait(refs, num_returns=4, timeout=0.1)
    assert ready == fast and not_ready == [slow]
    ready, not_ready = actorlib.wait(refs, num_returns=1, timeout=0)
    assert len(ready) == 1 and ready[0] in fast
    actorlib.cancel(slow)


def test_wait_validates_its_arguments():
    ref = identity.remote(1)
    with pytest.raises(ValueError, match="num_returns"):
        actorlib.wait([ref], num_returns=2)
    with pytest.raises(ValueError, match="same ObjectRef"):
        actorlib.wait([ref, ref])
    with pytest.raises(TypeError, match="ObjectRef"):
        actorlib.get([ref, 3])


async def test_object_refs_are_awaitable_in_trio():
    refs = [add.remote(i, 1) for i in range(5)]
    results = []
    async with trio.open_nursery() as nursery:
        for ref in refs:

            async def one(ref=ref):
                results.append(await ref)

            nursery.start_soon(one)
    assert sorted(results) == [1, 2, 3, 4, 5]


def test_object_refs_are_awaitable_in_asyncio():
    async def main():
        return await asyncio.gather(*[add.remote(i, 2) for i in range(3)])

    assert asyncio.run(main()) == [2, 3, 4]


def test_object_ref_future():
    assert add.remote(2, 2).future().result(timeout=30) == 4


def test_runtime_context():
    @actorlib.remote
    def context():
        ctx = actorlib.get_runtime_context()
        return ctx.get_job_id(), ctx.get_node_id(), ctx.get_task_id()

    driver = actorlib.get_runtime_context()
    assert driver.get_task_id() is None
    job, node, task = actorlib.get(context.remote())
    other_task = actorlib.get(context.remote())[2]
    assert (job, node) == (driver.get_job_id(), driver.get_node_id())
    assert task and other_task and task != other_task


def test_a_task_whose_name_holds_a_nul_runs_and_its_worker_lives():
    """Regression: the name became the worker's process title, which setproctitle refuses
    with a NUL in it; the ValueError escaped the worker's exec loop and killed the worker."""
    worker = actorlib.get(pid.options(name="a\x00b", max_retries=0).remote(), timeout=60)
    assert worker != os.getpid() and psutil.pid_exists(worker)


def test_cluster_queries():
    total = actorlib.cluster_resources()
    assert total["CPU"] == 2 and total["slot"] == 1
    assert total["object_store_memory"] > 0
    available = actorlib.available_resources()
    assert 0 <= available.get("CPU", 0) <= 2  # Ray omits exhausted resources
    (node,) = actorlib.nodes()
    assert node["Alive"] and node["Resources"]["CPU"] == 2
    assert node["NodeID"] == actorlib.get_runtime_context().get_node_id()


def test_options_are_validated():
    with pytest.raises(ValueError, match="num_cpus"):
        add.options(num_cpus=-1)
    with pytest.raises(ValueError, match="invalid option 'bogus'"):
        add.options(bogus=1)
    with pytest.raises(ValueError, match="num_gpus="):
        add.options(resources={"GPU": 1})


@actorlib.remote
async def asyncio_style(n):
    # Ray's async remote functions are asyncio code; they run unchanged.
    values = await asyncio.gather(*[asyncio.sleep(0.01, result=i) for i in range(n)])
    return sum(values), sniffio.current_async_library()


@actorlib.remote
async def trio_style(n):
    total = 0
    async with trio.open_nursery() as nursery:
        for i in range(n):

            async def one(i=i):
                nonlocal total
                await trio.sleep(0.01)
                total += i

            nursery.start_soon(one)
    return total, sniffio.current_async_library()


@actorlib.remote
async def await_nested(refs):
    return [await ref for ref in refs], sniffio.current_async_library()


async def _which_library():
    return sniffio.current_async_library()


async def _named_trio():
    return sniffio.current_async_library()


_named_trio.__actorlib_event_loop__ = "trio"  # nothing in its code says which


def test_async_remote_functions_run_on_the_loop_their_code_uses():
    assert actorlib.get(asyncio_style.remote(4), timeout=30) == (6, "asyncio")
    assert actorlib.get(trio_style.remote(4), timeout=30) == (6, "trio")
    assert actorlib.get(await_nested.remote([add.remote(1, 1), add.remote(2, 2)]), timeout=30) == ([2, 4], "asyncio")


def test_an_async_remote_functions_loop_can_be_named():
    assert actorlib.get(actorlib.remote(_named_trio).remote(), timeout=30) == "trio"
    assert actorlib.get(actorlib.remote(_which_library).remote(), timeout=30) == "asyncio"  # Ray's default
