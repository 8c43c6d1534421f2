"""Async actors (asyncio and Trio), threaded actors, concurrency groups, streaming."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
import trio

import actorlib

pytestmark = pytest.mark.usefixtures("cluster")


@actorlib.remote
class AsyncioActor:
    """Ray-style: written with asyncio, unchanged."""

    def __init__(self) -> None:
        self.running = 0
        self.peak = 0

    async def work(self, seconds: float) -> int:
        self.running += 1
        self.peak = max(self.peak, self.running)
        await asyncio.sleep(seconds)
        self.running -= 1
        return self.peak

    async def gather(self, values) -> list[int]:
        async def double(x):
            await asyncio.sleep(0.01)
            return 2 * x

        return await asyncio.gather(*(double(v) for v in values))

    async def await_ref(self, ref_box) -> int:
        return await ref_box[0]

    def loop(self) -> str:
        return type(asyncio.get_running_loop()).__module__


@actorlib.remote
class TrioActor:
    def __init__(self) -> None:
        self.running = 0
        self.peak = 0

    async def work(self, seconds: float) -> int:
        self.running += 1
        self.peak = max(self.peak, self.running)
        await trio.sleep(seconds)
        self.running -= 1
        return self.peak

    async def await_ref(self, ref_box) -> int:
        return await ref_box[0]

    async def library(self) -> str:
        import sniffio

        return sniffio.current_async_library()


@actorlib.remote
def slow_value(x):
    time.sleep(0.2)
    return x


@pytest.mark.parametrize("cls", [AsyncioActor, TrioActor], ids=["asyncio", "trio"])
def test_async_methods_run_concurrently(cls):
    actor = cls.remote()
    peaks = actorlib.get([actor.work.remote(0.5) for _ in range(10)])
    assert max(peaks) == 10


@pytest.mark.parametrize("cls", [AsyncioActor, TrioActor], ids=["asyncio", "trio"])
def test_max_concurrency_bounds_async_methods(cls):
    actor = cls.options(max_concurrency=3).remote()
    assert max(actorlib.get([actor.work.remote(0.2) for _ in range(9)])) == 3


@pytest.mark.parametrize("cls", [AsyncioActor, TrioActor], ids=["asyncio", "trio"])
def test_object_refs_are_awaitable_inside_async_methods(cls):
    actor = cls.remote()
    assert actorlib.get(actor.await_ref.remote([slow_value.remote(41)])) == 41


def test_the_loop_follows_the_code():
    assert actorlib.get(AsyncioActor.remote().loop.remote()) == "asyncio.unix_events"
    assert actorlib.get(TrioActor.remote().library.remote()) == "trio"
    assert actorlib.get(AsyncioActor.remote().gather.remote([1, 2, 3])) == [2, 4, 6]


@actorlib.remote
class Threaded:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.peak = 0

    def work(self, seconds: float) -> int:
        with self.lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        time.sleep(seconds)
        with self.lock:
            self.running -= 1
        return threading.get_ident()

    def peak_seen(self) -> int:
        return self.peak

    @actorlib.method(concurrency_group="io")
    def io(self, seconds: float) -> int:
        return self.work(seconds)


def test_threaded_actor_runs_sync_methods_on_n_threads():
    actor = Threaded.options(max_concurrency=4).remote()
    threads = actorlib.get([actor.work.remote(0.3) for _ in range(8)])
    assert len(set(threads)) == 4
    assert actorlib.get(actor.peak_seen.remote()) == 4


def test_concurrency_groups_have_their_own_limits():
    actor = Threaded.options(concurrency_groups={"io": 2}).remote()
    started = time.monotonic()
    actorlib.get([actor.io.remote(0.3) for _ in range(4)])
    assert actorlib.get(actor.peak_seen.remote()) == 2
    assert time.monotonic() - started >= 0.6  # 4 calls, 2 at a time


@actorlib.remote
class Producer:
    @actorlib.method(num_returns="streaming")
    def count(self, n: int):
        for i in range(n):
            time.sleep(0.05)
            yield i

    @actorlib.method(num_returns="streaming")
    def broken(self):
        yield "first"
        raise RuntimeError("stream broke")


@actorlib.remote(num_returns="streaming")
def squares(n: int):
    for i in range(n):
        yield i * i


def test_streaming_method_yields_refs_as_they_come():
    producer = Producer.remote()
    generator = producer.count.remote(5)
    first = next(generator)
    assert actorlib.get(first) == 0
    assert [actorlib.get(ref) for ref in generator] == [1, 2, 3, 4]


def test_streaming_errors_surface_on_the_last_ref():
    refs = list(Producer.remote().broken.remote())
    assert actorlib.get(refs[0]) == "first"
    with pytest.raises(RuntimeError, match="stream broke"):
        actorlib.get(refs[1])


def test_streaming_task():
    assert [actorlib.get(ref) for ref in squares.remote(5)] == [0, 1, 4, 9, 16]


async def test_streaming_with_async_for():
    values = [await ref async for ref in squares.remote(4)]
    assert values == [0, 1, 4, 9]
