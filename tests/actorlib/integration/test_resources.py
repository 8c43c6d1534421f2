"""Resource requests bound parallelism; impossible requests fail fast; runtime_env."""

from __future__ import annotations

import os
import time

import pytest

import actorlib
from actorlib.exceptions import InfeasibleResourcesError


@actorlib.remote
def span(seconds: float):
    start = time.monotonic()
    time.sleep(seconds)
    return start, time.monotonic()


def overlaps(spans) -> bool:
    spans = sorted(spans)
    return any(later[0] < earlier[1] for earlier, later in zip(spans, spans[1:]))


def test_infeasible_request_fails_fast_naming_the_resource(cluster):
    started = time.monotonic()
    with pytest.raises(InfeasibleResourcesError, match=r"GPU=1 \(this node has 0\)"):
        actorlib.get(span.options(num_gpus=1).remote(0))
    with pytest.raises(InfeasibleResourcesError, match="tpu"):
        actorlib.get(span.options(resources={"tpu": 2}).remote(0))
    with pytest.raises(InfeasibleResourcesError, match="CPU=3"):
        actorlib.get(span.options(num_cpus=3).remote(0))
    assert time.monotonic() - started < 30  # an error, not a hang


def test_custom_resource_bounds_parallelism(cluster):
    spans = actorlib.get([span.options(resources={"slot": 1}).remote(0.3) for _ in range(3)])
    assert not overlaps(spans)


@actorlib.remote
def meet(directory: str, me: int, others: int) -> bool:
    """Arrive, then wait (at most 30 s) until ``others`` more tasks have arrived too."""
    from pathlib import Path

    Path(directory, str(me)).touch()
    deadline = time.monotonic() + 30
    while len(list(Path(directory).iterdir())) <= others:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_cpus_bound_parallelism(cluster, tmp_path):
    assert not overlaps(actorlib.get([span.options(num_cpus=2).remote(0.3) for _ in range(3)]))
    # 1 CPU each on 2 CPUs: side by side. Each waits for the other, however slowly workers start.
    assert actorlib.get([meet.remote(str(tmp_path), i, 1) for i in range(2)]) == [True, True]


@actorlib.remote
def read_env(*names):
    return [os.environ.get(name) for name in names]


def test_runtime_env_vars_merge_like_ray(fresh_cluster):
    fresh_cluster(num_cpus=1, runtime_env={"env_vars": {"A": "job", "B": "job"}})
    assert actorlib.get(read_env.remote("A", "B")) == ["job", "job"]
    task_env = {"env_vars": {"B": "task", "C": "task"}}
    assert actorlib.get(read_env.options(runtime_env=task_env).remote("A", "B", "C")) == ["job", "task", "task"]

    @actorlib.remote(runtime_env={"env_vars": {"C": "decorator"}})
    def decorated():
        return os.environ.get("A"), os.environ.get("C")

    assert actorlib.get(decorated.remote()) == ("job", "decorator")
    with pytest.raises(ValueError, match="'pip' is not supported"):
        read_env.options(runtime_env={"pip": ["x"]})


@actorlib.remote
def nested_env(*names):
    """What a task started by this task, and an actor created by it, see of ``names``."""

    @actorlib.remote
    class Reader:
        def read(self):
            return [os.environ.get(name) for name in names]

    child_env = {"env_vars": {"C": "child"}}
    reader = Reader.remote()
    return {
        "task": actorlib.get(read_env.remote(*names)),
        "task with its own env_vars": actorlib.get(read_env.options(runtime_env=child_env).remote(*names)),
        "actor": actorlib.get(reader.read.remote()),
    }


def test_nested_tasks_and_actors_inherit_the_runtime_env_of_their_parent(fresh_cluster):
    # Ray: child tasks and actors inherit the parent's runtime_env, merged with their own.
    fresh_cluster(num_cpus=2, runtime_env={"env_vars": {"A": "job", "B": "job"}})
    seen = actorlib.get(nested_env.options(runtime_env={"env_vars": {"B": "parent"}}).remote("A", "B", "C"))
    assert seen == {
        "task": ["job", "parent", None],
        "task with its own env_vars": ["job", "parent", "child"],
        "actor": ["job", "parent", None],
    }
