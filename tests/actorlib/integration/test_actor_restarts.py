"""Actor fault recovery: restarts by policy, the errors callers see, and giving up."""

from __future__ import annotations

import os
import signal

import pytest

import actorlib
from actorlib.exceptions import ActorDiedError

from .conftest import alive, poll

pytestmark = pytest.mark.usefixtures("cluster")


@actorlib.remote
class Phoenix:
    def __init__(self) -> None:
        self.calls = 0

    def pid(self) -> int:
        self.calls += 1
        return os.getpid()

    def calls_so_far(self) -> int:
        return self.calls


def answer_after_restart(actor, old_pid: int) -> int:
    """Call until the restarted actor answers (calls racing with the death may fail)."""

    def attempt():
        try:
            pid = actorlib.get(actor.pid.remote(), timeout=30)
        except ActorDiedError as error:
            assert not error.final, f"gave up too early: {error}"
            return None
        return pid if pid != old_pid else None

    return poll(attempt, timeout=30)


def test_sigkilled_five_times_with_max_restarts_five():
    actor = Phoenix.options(max_restarts=5).remote()
    pid = actorlib.get(actor.pid.remote())
    pids = [pid]
    for _ in range(5):
        os.kill(pid, signal.SIGKILL)
        pid = answer_after_restart(actor, pid)
        pids.append(pid)
        assert actorlib.get(actor.calls_so_far.remote()) == 1  # __init__ ran again: fresh state
    assert len(set(pids)) == 6
    os.kill(pid, signal.SIGKILL)

    def dead_for_good():
        try:
            actorlib.get(actor.pid.remote(), timeout=30)
        except ActorDiedError as error:
            return error if error.final else None
        return None

    error = poll(dead_for_good, timeout=30)
    assert "more than 5 restarts" in str(error)
    with pytest.raises(ActorDiedError):
        actorlib.get(actor.pid.remote())
    assert not any(alive(p) for p in pids)


def test_default_is_no_restart():
    actor = Phoenix.remote()
    pid = actorlib.get(actor.pid.remote())
    os.kill(pid, signal.SIGKILL)

    def final_error():
        try:
            actorlib.get(actor.pid.remote(), timeout=30)
        except ActorDiedError as error:
            return error.final
        return False

    poll(final_error)


def test_in_flight_calls_are_retried_with_max_task_retries(tmp_path):
    @actorlib.remote(max_restarts=1, max_task_retries=1)
    class Fragile:
        def work(self, marker: str) -> str:
            if not os.path.exists(marker):
                open(marker, "w").close()
                os.kill(os.getpid(), signal.SIGKILL)
            return "done on retry"

    assert actorlib.get(Fragile.remote().work.remote(str(tmp_path / "m"))) == "done on retry"


def test_in_flight_calls_fail_without_retries(tmp_path):
    @actorlib.remote(max_restarts=1)
    class Fragile:
        def work(self) -> None:
            os.kill(os.getpid(), signal.SIGKILL)

        def ok(self) -> str:
            return "ok"

    actor = Fragile.remote()
    with pytest.raises(ActorDiedError, match="died while running Fragile.work") as info:
        actorlib.get(actor.work.remote())
    assert not info.value.final
    assert "(killed by SIGKILL" in str(info.value)  # why it died, as its node saw it
    assert poll(lambda: _quietly(lambda: actorlib.get(actor.ok.remote(), timeout=30))) == "ok"


def test_init_failure_kills_the_actor_with_its_error():
    @actorlib.remote(max_restarts=3)
    class Broken:
        def __init__(self) -> None:
            raise ValueError("missing configuration")

        def ping(self) -> str:
            return "pong"

    with pytest.raises(ActorDiedError, match="__init__ raised ValueError: missing configuration"):
        actorlib.get(Broken.remote().ping.remote(), timeout=30)


def test_an_actor_process_that_exits_during_init_is_reported_with_its_exit():
    # The process asks its node for its spec and answers on the same connection: if it dies
    # before answering, its start fails with how the process ended (no answer is waited for).
    @actorlib.remote(max_restarts=1)
    class Vanishing:
        def __init__(self) -> None:
            os._exit(7)

        def ping(self) -> str:
            return "pong"

    with pytest.raises(ActorDiedError, match="code 7"):
        actorlib.get(Vanishing.remote().ping.remote(), timeout=30)


def _quietly(call):
    try:
        return call()
    except ActorDiedError:
        return None
