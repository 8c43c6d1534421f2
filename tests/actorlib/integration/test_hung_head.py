"""A head that hangs (frozen, deadlocked) never hangs its callers: every wait on it is
bounded, and the error names the head's address."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import psutil
import pytest

import actorlib
from actorlib._core import _actors, _head_link, current
from actorlib._wire import _channel
from actorlib.exceptions import ActorDiedError


@actorlib.remote(num_cpus=0)
class Patient:
    def ping(self) -> str:
        return "pong"


@pytest.fixture
def frozen_head(fresh_cluster, monkeypatch) -> Iterator[str]:
    """An embedded cluster whose head process is SIGSTOPped; its address. Thawed at the end."""
    monkeypatch.setattr(_head_link, "REQUEST_TIMEOUT", 1.0, raising=False)
    monkeypatch.setattr(_head_link, "PING_EVERY", 0.2, raising=False)
    monkeypatch.setattr(_channel, "HANDSHAKE_TIMEOUT", 1.0)
    monkeypatch.setattr(_actors, "HEAD_RECONNECT_GRACE", 2.0)
    fresh_cluster(num_cpus=1)
    (head,) = [p for p in psutil.Process().children() if " ".join(p.cmdline()).startswith(("actorlib::head", "actorlib._head"))]
    yield head.pid, current().identity.head_address
    head.send_signal(signal.SIGCONT)


def test_a_request_to_a_hung_head_fails_naming_it(frozen_head):
    pid, address = frozen_head
    os.kill(pid, signal.SIGSTOP)
    with pytest.raises(ConnectionError, match=f"the head at {address} did not answer within 1s"):
        actorlib.get_actor("nobody")


def test_a_long_wait_on_a_hung_head_ends_when_it_stops_answering_pings(frozen_head):
    pid, address = frozen_head
    actor = Patient.remote()
    assert actorlib.get(actor.ping.remote(), timeout=60) == "pong"
    os.kill(pid, signal.SIGSTOP)
    other = Patient.remote()  # to call it, the caller waits for the head to say it is ALIVE
    with pytest.raises(ActorDiedError, match=address):
        actorlib.get(other.ping.remote(), timeout=60)
