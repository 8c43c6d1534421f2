"""cancel(recursive=...): the tasks a cancelled task submitted are cancelled with it (Ray's
default), or left to run; and a task waiting on a stream lends its CPUs like one in get()."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

import actorlib
from actorlib.exceptions import TaskCancelledError

from .conftest import poll


@actorlib.remote
def child(marker: str, gate: str) -> str:
    """Runs until ``gate`` exists; records how it ended in ``marker``."""
    Path(marker).write_text("started")
    deadline = time.monotonic() + 60
    try:
        while not os.path.exists(gate) and time.monotonic() < deadline:
            time.sleep(0.01)
    except BaseException:
        Path(marker).write_text("cancelled")
        raise
    Path(marker).write_text("finished")
    return "done"


@actorlib.remote
def parent(marker: str, gate: str) -> str:
    return actorlib.get(child.options(num_cpus=0).remote(marker, gate))  # waits on its child


@pytest.mark.parametrize("recursive", [True, False])
def test_cancelling_a_task_cancels_the_tasks_it_submitted_unless_told_not_to(cluster, tmp_path, recursive):
    marker, gate = tmp_path / "child", tmp_path / "gate"
    ref = parent.remote(str(marker), str(gate))
    poll(lambda: marker.exists() and marker.read_text() == "started", timeout=30)
    actorlib.cancel(ref, recursive=recursive)
    with pytest.raises(TaskCancelledError):
        actorlib.get(ref, timeout=30)
    if recursive:
        poll(lambda: marker.read_text() == "cancelled", timeout=30)
    else:
        gate.touch()  # the child was left running: it finishes
        poll(lambda: marker.read_text() == "finished", timeout=30)


@actorlib.remote(num_returns="streaming")
def numbers(n: int):
    yield from range(n)


@actorlib.remote
def total_of_stream(n: int) -> int:
    return sum(actorlib.get(ref) for ref in numbers.remote(n))


def test_a_task_iterating_a_stream_lends_its_cpu_to_the_producer(fresh_cluster):
    fresh_cluster(num_cpus=1)  # the consumer holds the only CPU while it waits for items
    assert actorlib.get(total_of_stream.remote(5), timeout=30) == 10
