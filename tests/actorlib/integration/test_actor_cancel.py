"""``actorlib.cancel`` of actor calls, as in Ray: a call that has not started never runs; one
running in an async actor's event loop is cancelled; a running sync method goes on and sees
``is_canceled()`` (a plain sync actor's through its core socket), and its caller gets
TaskCancelledError once it returns (an error it raised instead wins); ``force`` is refused. Before, cancelling an actor call did nothing and its
``get`` waited for the call to end."""

from __future__ import annotations

import asyncio
import os
import time

import pytest
import trio

import actorlib
from actorlib.exceptions import TaskCancelledError

from .conftest import poll

pytestmark = pytest.mark.usefixtures("cluster")


def wait_for(path) -> None:
    poll(lambda: os.path.exists(path), timeout=30)


class Marks:
    """Each method writes what it did to files: what ran is seen from outside the actor."""

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def mark(self, name: str) -> None:
        with open(os.path.join(self.folder, name), "a") as f:
            f.write("x")


class Sleeper(Marks):
    """An async actor's method that waits a minute in its event loop (``nap``)."""

    async def sleep(self, name: str) -> str:
        self.mark(f"{name}.started")
        await self.nap(60)
        self.mark(f"{name}.finished")
        return name

    async def ping(self) -> str:
        return "pong"


class _TrioSleeper(Sleeper):
    __actorlib_event_loop__ = "trio"
    nap = staticmethod(trio.sleep)


class _AsyncioSleeper(Sleeper):
    __actorlib_event_loop__ = "asyncio"
    nap = staticmethod(asyncio.sleep)


TrioSleeper, AsyncioSleeper = actorlib.remote(_TrioSleeper), actorlib.remote(_AsyncioSleeper)


@pytest.mark.parametrize("cls", [TrioSleeper, AsyncioSleeper], ids=["trio", "asyncio"])
def test_a_call_running_in_an_async_actor_is_cancelled_and_the_actor_goes_on(tmp_path, cls):
    actor = cls.remote(str(tmp_path))
    running = actor.sleep.remote("a")
    wait_for(tmp_path / "a.started")
    actorlib.cancel(running)
    with pytest.raises(TaskCancelledError, match="cancelled while running"):
        actorlib.get(running, timeout=30)
    assert actorlib.get(actor.ping.remote(), timeout=30) == "pong"
    assert not (tmp_path / "a.finished").exists()
    actorlib.kill(actor)


@actorlib.remote
class Gated(Marks):
    """A sync actor: one call at a time, in order."""

    def hold(self, gate: str) -> str:
        self.mark("hold.started")
        while not os.path.exists(gate):
            time.sleep(0.01)
        return "held"

    def record(self, name: str) -> str:
        self.mark(name)
        return actorlib.get_runtime_context().get_task_id()

    def until_cancelled(self, seconds: float) -> str:
        self.mark("until.started")
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if actorlib.get_runtime_context().is_canceled():
                self.mark("until.saw_cancel")
                return "saw the cancel"
            time.sleep(0.01)
        return "ran to the end"

    def fail_when_cancelled(self, seconds: float) -> None:
        self.mark("fail.started")
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not actorlib.get_runtime_context().is_canceled():
            time.sleep(0.01)
        raise ValueError("saw the cancel and failed")


def test_a_call_queued_behind_a_running_one_never_runs(tmp_path):
    actor = Gated.remote(str(tmp_path))
    gate = tmp_path / "gate"
    holding = actor.hold.remote(str(gate))
    queued = actor.record.remote("queued")
    after = actor.record.remote("after")
    wait_for(tmp_path / "hold.started")
    actorlib.cancel(queued)  # sent while the actor is busy: it reaches the actor before its turn
    gate.write_text("go")
    assert actorlib.get(holding, timeout=30) == "held"
    with pytest.raises(TaskCancelledError, match="cancelled before it ran"):
        actorlib.get(queued, timeout=30)
    assert actorlib.get(after, timeout=30) == after.task_id().hex()  # the call's own id, as in Ray
    assert not (tmp_path / "queued").exists() and (tmp_path / "after").exists()
    actorlib.kill(actor)


def test_a_call_not_yet_sent_to_its_actor_is_cancelled_at_once(tmp_path):
    @actorlib.remote
    class SlowStart(Marks):
        def __init__(self, folder: str, gate: str) -> None:
            super().__init__(folder)
            while not os.path.exists(gate):
                time.sleep(0.01)

        def record(self, name: str) -> str:
            self.mark(name)
            return name

    gate = tmp_path / "gate"
    actor = SlowStart.remote(str(tmp_path), str(gate))
    waiting = actor.record.remote("waiting")  # its actor is not up: the call waits here
    with pytest.raises(ValueError, match="force=True is not supported for actor calls"):
        actorlib.cancel(waiting, force=True)
    actorlib.cancel(waiting)
    with pytest.raises(TaskCancelledError, match="before it was sent"):
        actorlib.get(waiting, timeout=30)
    gate.write_text("go")
    assert actorlib.get(actor.record.remote("later"), timeout=60) == "later"
    assert not (tmp_path / "waiting").exists()
    actorlib.kill(actor)


@pytest.mark.parametrize("concurrency", [1, 2], ids=["sync", "threaded"])
def test_a_running_sync_method_is_not_interrupted_but_sees_is_canceled(tmp_path, concurrency):
    # A plain sync actor's one thread runs the method: the cancel reaches its runtime thread
    # through its core socket (ActorView.core), not the exec socket the calls come on.
    actor = Gated.options(max_concurrency=concurrency).remote(str(tmp_path))
    running = actor.until_cancelled.remote(60)
    wait_for(tmp_path / "until.started")
    actorlib.cancel(running)
    # Not interrupted: it saw the cancel and stopped itself; as in Ray, its caller gets
    # TaskCancelledError, not the value it returned.
    with pytest.raises(TaskCancelledError, match="cancelled while running"):
        actorlib.get(running, timeout=30)
    assert (tmp_path / "until.saw_cancel").exists()
    assert actorlib.get(actor.record.remote("after"), timeout=30)  # the actor goes on
    actorlib.kill(actor)


def test_a_cancelled_sync_method_that_ignores_it_still_ends_in_task_cancelled_unless_it_raised(tmp_path):
    actor = Gated.remote(str(tmp_path))
    gate = tmp_path / "gate"
    running = actor.hold.remote(str(gate))  # never looks at is_canceled()
    wait_for(tmp_path / "hold.started")
    actorlib.cancel(running)
    assert actorlib.wait([running], timeout=0.5)[0] == []  # it runs on until it returns
    gate.touch()
    with pytest.raises(TaskCancelledError):
        actorlib.get(running, timeout=30)
    failing = actor.fail_when_cancelled.remote(60)
    wait_for(tmp_path / "fail.started")
    actorlib.cancel(failing)
    with pytest.raises(ValueError, match="saw the cancel and failed"):  # its own error wins, as in Ray
        actorlib.get(failing, timeout=30)
    actorlib.kill(actor)


def test_is_canceled_is_false_for_a_call_nobody_cancelled_and_refused_in_a_driver(tmp_path):
    actor = Gated.remote(str(tmp_path))
    assert actorlib.get(actor.until_cancelled.remote(0.05), timeout=30) == "ran to the end"
    with pytest.raises(RuntimeError, match="only available in a task or an actor method"):
        actorlib.get_runtime_context().is_canceled()
    actorlib.kill(actor)
