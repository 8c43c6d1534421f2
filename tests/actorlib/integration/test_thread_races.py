"""The runtime's state shared with user threads holds under many threads at once."""

from __future__ import annotations

import os
import sys
import threading

import pytest

import actorlib
from actorlib._core import current

from .conftest import alive, poll

pytestmark = pytest.mark.usefixtures("cluster")


@actorlib.remote(num_cpus=0, resources={"nowhere": 1})
class Unplaceable:
    """Created and dropped at once: the head finds no node for it; the driver's count of its
    handles is what we look at."""


def owned(runtime) -> set[bytes]:
    """Actors this driver owns and still counts handles of (other tests' may live on)."""
    return {actor_id for actor_id, actor in runtime.actors._actors.items() if actor.owned}


def test_handles_dropped_at_once_from_many_threads_leave_no_actor_behind():
    runtime = current()
    before = owned(runtime)
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # interleave the threads and the runtime loop finely

    def create(count: int) -> None:
        for _ in range(count):
            Unplaceable.remote()  # the handle is dropped as soon as it is returned

    try:
        threads = [threading.Thread(target=create, args=(200,)) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(previous)
    runtime.call(_nothing)  # behind whatever the creations queued on the runtime thread
    # Each handle's drop must cancel its creator's count: none may be kept (nor its actor left alive).
    poll(lambda: owned(runtime) <= before, timeout=30)


async def _nothing() -> None:
    pass


def hold_then_sweep(runtime) -> threading.Event:
    """Hold the runtime thread until the returned event is set, then sweep handles there, as
    the tick would: what the caller does meanwhile is not yet seen by the runtime thread."""
    busy, go = threading.Event(), threading.Event()

    def sweep_first() -> None:
        busy.set()
        go.wait(30)
        runtime.actors.collect()

    runtime.soon(sweep_first)
    assert busy.wait(30)
    return go


def test_a_handle_dropped_before_its_creation_reaches_the_runtime_is_counted():
    """The runtime's periodic sweep may run after a handle was made and dropped but before the
    runtime thread has seen the creation: the drop must still cancel the creator's count."""
    runtime = current()
    before = owned(runtime)
    go = hold_then_sweep(runtime)
    Unplaceable.remote()  # made and dropped while the runtime thread is held
    go.set()
    runtime.call(_nothing)  # behind whatever the creation queued on the runtime thread
    poll(lambda: owned(runtime) <= before, timeout=30)


@actorlib.remote(num_cpus=0)
class Echo:
    def echo(self, value):
        return value

    def pid(self):
        return os.getpid()


def test_a_call_on_its_way_to_the_runtime_keeps_its_actor_when_the_last_handle_drops():
    """A call the caller's thread handed to the runtime thread (one with an ObjectRef argument
    takes that way) must run even if the actor's last handle is dropped, and the sweep comes,
    before the runtime thread has queued it."""
    runtime = current()
    echo = Echo.remote()
    pid = actorlib.get(echo.pid.remote(), timeout=30)
    argument = actorlib.put(7)
    go = hold_then_sweep(runtime)
    ref = echo.echo.remote(argument)  # handed to the runtime thread, which is held
    del echo  # the last handle
    go.set()
    assert actorlib.get(ref, timeout=30) == 7
    poll(lambda: not alive(pid), timeout=30)  # and then, nobody able to call it, it ends
