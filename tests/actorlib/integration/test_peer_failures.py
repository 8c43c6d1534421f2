"""A peer that freezes or goes away while we connect to it never takes this process's runtime down."""

from __future__ import annotations

import os
import signal

import pytest

import actorlib
from actorlib._core import current
from actorlib._wire import WaitActor, _channel

from .conftest import alive, poll, wait_gone


@actorlib.remote
def whoami() -> int:
    return os.getpid()


def idle_worker() -> tuple[int, str]:
    """A task worker that is idle, READY, and not connected to this driver: its pid and
    exec socket address. (It ran one task for us; then we hang up on it.)"""
    runtime = current()
    pid = actorlib.get(whoami.remote(), timeout=60)
    poll(lambda: actorlib.available_resources().get("CPU") == 1.0, timeout=30)  # its lease is back
    (address,) = [a for a in runtime.peers._channels if a.endswith("-x.sock")]  # the exec socket it ran on
    runtime.call(_hang_up, address)
    return pid, address


async def _hang_up(address: str) -> None:
    await current().peers._channels[address].aclose()


@pytest.fixture
def frozen_worker(fresh_cluster):
    """A 1-CPU cluster whose only task worker is idle, unknown to this driver, and SIGSTOPped."""
    fresh_cluster(num_cpus=1)
    pid, address = idle_worker()
    os.kill(pid, signal.SIGSTOP)
    try:
        yield pid, address
    finally:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_a_frozen_worker_is_given_back_and_the_task_runs_on_another(frozen_worker, monkeypatch):
    frozen, _ = frozen_worker
    monkeypatch.setattr(_channel, "HANDSHAKE_TIMEOUT", 1.0)  # this process is the one that connects
    assert actorlib.get(whoami.remote(), timeout=60) != frozen
    assert not current().closed  # the runtime thread is alive
    assert not wait_gone([frozen], 10)  # the node killed the worker the driver could not reach


def test_a_worker_that_dies_mid_handshake_is_retried(frozen_worker):
    frozen, address = frozen_worker
    runtime = current()
    ref = whoami.remote()
    # The node grants the frozen worker; the driver connects and waits for its hello...
    poll(lambda: address in runtime.peers._connecting, timeout=30)
    os.kill(frozen, signal.SIGKILL)  # ...and the worker goes away instead.
    assert actorlib.get(ref, timeout=60) != frozen
    assert not runtime.closed


def test_tasks_queued_behind_an_unreachable_worker_are_dispatched_again(frozen_worker):
    frozen, address = frozen_worker
    os.unlink(address.removeprefix("unix:"))  # connecting to it now fails at once
    refs = [whoami.remote() for _ in range(3)]
    # The lease on it goes back (and the node kills it); nothing else of this shape arrives,
    # yet the queue must ask for another lease.
    assert frozen not in actorlib.get(refs, timeout=60)
    assert not wait_gone([frozen], 10)


@actorlib.remote(max_restarts=1)
class Pinger:
    def pid(self) -> int:
        return os.getpid()


def test_a_frozen_actor_is_waited_out_until_it_restarts(fresh_cluster, monkeypatch):
    fresh_cluster(num_cpus=1)
    monkeypatch.setattr(_channel, "HANDSHAKE_TIMEOUT", 1.0)
    runtime = current()
    actor = Pinger.remote()
    view = runtime.call(runtime.head.request, lambda req: WaitActor(req=req, actor_id=actor._actor_id, after=0)).view
    os.kill(view.pid, signal.SIGSTOP)  # ALIVE, and nobody has connected to it yet
    try:
        ref = actor.pid.remote()
        poll(lambda: view.address in runtime.peers._connecting, timeout=30)
        with pytest.raises(actorlib.exceptions.GetTimeoutError):
            actorlib.get(ref, timeout=2)  # its handshake timed out: the call waits for a new incarnation
        assert not runtime.closed
        actorlib.kill(actor, no_restart=False)  # SIGKILL (frozen or not); it restarts
        assert actorlib.get(ref, timeout=60) != view.pid
    finally:
        if alive(view.pid):
            os.kill(view.pid, signal.SIGKILL)
