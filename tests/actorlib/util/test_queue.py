"""Queue on a real cluster: FIFO, blocking and timeouts, batches, sharing with tasks and actors, shutdown."""

from __future__ import annotations

import queue as stdlib_queue
import time

import pytest
import trio

import actorlib
from actorlib.exceptions import ActorDiedError, GetTimeoutError
from actorlib.util.queue import Empty, Full, Queue

from ..integration.conftest import descendants, poll, wait_gone

pytestmark = pytest.mark.usefixtures("cluster")


@actorlib.remote
def produce(q, items):
    for item in items:
        q.put(item)
    return len(items)


@actorlib.remote
def consume(q, n, timeout=None):
    return [q.get(timeout=timeout) for _ in range(n)]


@actorlib.remote
class Consumer:
    def __init__(self, q):
        self.q = q

    def take(self, n):
        return [self.q.get() for _ in range(n)]

    def give(self, item):
        self.q.put(item)


@actorlib.remote
class AsyncConsumer:
    """An asyncio actor: waits on the queue without blocking its event loop."""

    __actorlib_event_loop__ = "asyncio"

    def __init__(self, q):
        self.q = q

    async def take(self):
        return await self.q.get_async(timeout=30)

    def alive(self):
        return True


def test_fifo_and_sizes():
    q = Queue()
    assert q.empty() and not q.full() and q.size() == 0 and len(q) == 0
    for item in ["a", "b", {"c": 3}]:
        q.put(item)
    assert q.qsize() == 3 and len(q) == 3 and not q.empty()
    assert [q.get(), q.get(), q.get()] == ["a", "b", {"c": 3}]
    assert q.empty()


def test_nowait_raises_empty_and_full():
    q = Queue(maxsize=1)
    with pytest.raises(Empty):
        q.get_nowait()
    with pytest.raises(Empty):
        q.get(block=False)
    q.put_nowait(1)
    assert q.full()
    with pytest.raises(Full):
        q.put_nowait(2)
    with pytest.raises(Full):
        q.put(2, block=False)
    assert q.get_nowait() == 1


def test_exceptions_are_plain_and_also_the_standard_librarys():
    q = Queue()
    with pytest.raises(stdlib_queue.Empty) as caught:
        q.get_nowait()
    assert type(caught.value) is Empty
    assert not isinstance(caught.value, actorlib.exceptions.TaskError)


def test_get_timeout_raises_empty_after_the_timeout():
    q = Queue()
    start = time.monotonic()
    with pytest.raises(Empty) as caught:
        q.get(timeout=0.3)
    assert 0.3 <= time.monotonic() - start < 10
    assert not isinstance(caught.value, GetTimeoutError)


def test_put_timeout_raises_full_after_the_timeout():
    q = Queue(maxsize=1)
    q.put(1)
    start = time.monotonic()
    with pytest.raises(Full):
        q.put(2, timeout=0.2)
    assert 0.2 <= time.monotonic() - start < 10
    assert q.size() == 1


def test_timeout_zero_still_takes_an_item_that_is_there():
    q = Queue(maxsize=1)
    q.put(7, timeout=0)
    assert q.get(timeout=0) == 7
    with pytest.raises(Empty):
        q.get(timeout=0)


def test_negative_timeouts_and_bad_arguments():
    q = Queue()
    with pytest.raises(ValueError):
        q.get(timeout=-1)
    with pytest.raises(ValueError):
        q.put(1, timeout=-1)
    with pytest.raises(TypeError):
        q.put_nowait_batch(5)
    with pytest.raises(TypeError):
        q.get_nowait_batch("2")
    with pytest.raises(ValueError):
        q.get_nowait_batch(-1)
    with pytest.raises(ValueError):
        Queue(maxsize=-1)


def test_batches_are_all_or_nothing():
    q = Queue(maxsize=3)
    q.put_nowait_batch([1, 2])
    with pytest.raises(Full):
        q.put_nowait_batch([3, 4])
    assert q.size() == 2
    with pytest.raises(Empty):
        q.get_nowait_batch(3)
    assert q.get_nowait_batch(2) == [1, 2]
    assert q.get_nowait_batch(0) == []


def test_a_blocked_get_returns_when_a_task_puts():
    q = Queue()
    waiting = consume.remote(q, 1)
    ready, _ = actorlib.wait([waiting], timeout=0.1)
    assert not ready
    actorlib.get(produce.remote(q, ["x"]))
    assert actorlib.get(waiting, timeout=30) == ["x"]


def test_tasks_produce_and_the_driver_consumes():
    q = Queue()
    counts = actorlib.get([produce.remote(q, [(p, i) for i in range(5)]) for p in range(3)])
    assert counts == [5, 5, 5]
    items = [q.get(timeout=30) for _ in range(15)]
    assert sorted(items) == sorted((p, i) for p in range(3) for i in range(5))
    for p in range(3):  # each producer's items stay in its order
        assert [i for (who, i) in items if who == p] == list(range(5))


def test_an_actor_and_the_driver_share_a_queue():
    q = Queue()
    consumer = Consumer.options(num_cpus=0).remote(q)
    taken = consumer.take.remote(3)
    for item in (1, 2, 3):
        q.put(item)
    assert actorlib.get(taken, timeout=30) == [1, 2, 3]
    actorlib.get(consumer.give.remote("back"))
    assert q.get(timeout=30) == "back"


def test_an_async_actor_waits_on_the_queue_and_stays_responsive():
    q = Queue()
    consumer = AsyncConsumer.options(num_cpus=0).remote(q)
    taking = consumer.take.remote()
    assert actorlib.get(consumer.alive.remote(), timeout=30)  # answered while take() waits
    q.put("async")
    assert actorlib.get(taking, timeout=30) == "async"


def test_a_bounded_queue_makes_the_producer_wait():
    q = Queue(maxsize=2)
    producing = produce.remote(q, list(range(6)))
    poll(q.full)
    ready, _ = actorlib.wait([producing], timeout=0.1)
    assert not ready  # blocked on the full queue
    assert [q.get(timeout=30) for _ in range(6)] == list(range(6))
    assert actorlib.get(producing, timeout=30) == 6


async def test_async_put_and_get_from_trio():
    q = Queue(maxsize=1)
    async with trio.open_nursery() as nursery:
        got = []

        async def getter():
            got.append(await q.get_async(timeout=30))

        nursery.start_soon(getter)
        await q.put_async("t")
    assert got == ["t"]
    with pytest.raises(Empty):
        await q.get_async(block=False)
    with pytest.raises(Empty):
        await q.get_async(timeout=0.05)
    await q.put_async(1)
    with pytest.raises(Full):
        await q.put_async(2, timeout=0.05)
    with pytest.raises(Full):
        await q.put_async(2, block=False)


def test_actor_options_are_used():
    q = Queue(actor_options={"name": "util-test-queue", "num_cpus": 0})
    q.put("named")
    same = actorlib.get_actor("util-test-queue")
    assert actorlib.get(same.get_nowait.remote()) == "named"
    q.shutdown()


def test_shutdown_stops_the_actor_and_fails_blocked_and_later_calls():
    before = set(descendants())
    q = Queue()
    assert q.size() == 0  # its actor is up
    actor_processes = [pid for pid in descendants() if pid not in before]
    assert actor_processes
    blocked = consume.remote(q, 1)
    assert actorlib.wait([blocked], timeout=0.1)[0] == []  # it waits for an item
    q.shutdown()
    assert wait_gone(actor_processes) == []
    with pytest.raises(ActorDiedError):
        actorlib.get(blocked, timeout=30)
    with pytest.raises(ActorDiedError):
        q.get_nowait()
    q.shutdown(force=True)  # idempotent
