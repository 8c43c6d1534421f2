"""Fixtures for the utilities' tests: a 2-CPU cluster per test module, and a Gate actor.

A Gate lets a test hold remote calls until it says so, instead of sleeping:
``gate.wait.remote()`` finishes only after ``gate.open.remote()``.
"""

from __future__ import annotations

import asyncio

import pytest

import actorlib

from ..integration.conftest import Cluster, _stop_shared, descendants, wait_gone


@actorlib.remote
class Gate:
    """An event in an actor: ``wait`` returns once ``open`` has been called."""

    __actorlib_event_loop__ = "asyncio"

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.waiting = 0

    async def wait(self) -> None:
        self.waiting += 1
        await self.event.wait()

    def open(self) -> None:
        self.event.set()

    def waiters(self) -> int:
        return self.waiting


@pytest.fixture(scope="module")
def cluster():
    """A 2-CPU cluster for the whole test module; checked to leave no process behind."""
    _stop_shared()  # the integration tests' shared cluster, if they ran first
    started = Cluster(num_cpus=2)
    yield started
    started.shutdown()


@pytest.fixture
def gate(cluster):
    """A closed Gate (opened at teardown, so nothing stays blocked)."""
    handle = Gate.options(num_cpus=0).remote()
    yield handle
    if actorlib.is_initialized():
        actorlib.get(handle.open.remote())


@pytest.fixture
def no_runtime():
    """No actorlib runtime at the start; afterwards, none and no process the test started."""
    _stop_shared()
    assert not actorlib.is_initialized()
    before = set(descendants())
    yield
    started = [pid for pid in descendants() if pid not in before]
    actorlib.shutdown()
    assert wait_gone(started) == [], "processes left after shutdown"
