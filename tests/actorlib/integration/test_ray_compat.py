"""Ray Core programs that must run unchanged with ``import actorlib as ray`` (issue #9).

Each test is a behaviour Ray users rely on that once failed here: submodules as
attributes, tasks in their job's namespace, generator tasks that stream, Ray's
actor resource defaults.
"""

from __future__ import annotations

import asyncio
import os

import numpy as np
import pytest

import actorlib
from actorlib._core import current

from .conftest import poll, run_driver

# ---- submodules as attributes ------------------------------------------------------------


def test_import_actorlib_reaches_every_public_submodule_lazily():
    code = """
        import sys
        import actorlib as ray
        assert "actorlib.util" not in sys.modules and "actorlib._api" not in sys.modules  # cold start stays lean
        names = [
            ray.util.ActorPool.__name__,
            ray.util.queue.Queue.__name__,
            ray.util.multiprocessing.Pool.__name__,
            ray.util.placement_group.__name__,
            ray.util.scheduling_strategies.NodeAffinitySchedulingStrategy.__name__,
            ray.util.list_named_actors.__name__,
            ray.exceptions.RayTaskError.__name__,
        ]
        print(",".join(names))
        try:
            ray.no_such_module
        except AttributeError as exc:
            print("AttributeError:", exc)
    """
    result = run_driver(code)
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.splitlines()
    assert first == "ActorPool,Queue,Pool,placement_group,NodeAffinitySchedulingStrategy,list_named_actors,TaskError"
    assert second == "AttributeError: module 'actorlib' has no attribute 'no_such_module'"


def test_an_actor_pool_through_ray_util_without_importing_it():
    code = """
        import actorlib as ray
        ray.init()

        @ray.remote
        class Doubler:
            def double(self, x):
                return 2 * x

        pool = ray.util.ActorPool([Doubler.remote(), Doubler.remote()])
        print(sorted(pool.map_unordered(lambda actor, v: actor.double.remote(v), range(5))))
    """
    result = run_driver(code, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[0, 2, 4, 6, 8]"


# ---- tasks run in their job's namespace ------------------------------------------------------


@actorlib.remote
class Registry:
    def __init__(self) -> None:
        self.added: list[str] = []

    def add(self, key: str) -> int:
        self.added.append(key)
        return len(self.added)

    def pid(self) -> int:
        return os.getpid()

    def namespace_and_names(self) -> tuple[str, list[str]]:
        """An actor's own code runs in its creator's job namespace too."""
        return actorlib.get_runtime_context().namespace, sorted(actorlib.util.list_named_actors())


@actorlib.remote
def use_registry(name: str) -> int:
    return actorlib.get(actorlib.get_actor(name).add.remote("from-task"))


@actorlib.remote
def nested_use(name: str) -> int:
    return actorlib.get(use_registry.remote(name))


@actorlib.remote
def same_actor_if_exists(name: str) -> int:
    handle = Registry.options(name=name, get_if_exists=True).remote()
    return actorlib.get(handle.pid.remote())


@actorlib.remote
def named_here() -> list[str]:
    return sorted(actorlib.util.list_named_actors())


@actorlib.remote
def namespace_here() -> str:
    return actorlib.get_runtime_context().namespace


@actorlib.remote
def create_named(name: str) -> int:
    handle = Registry.options(name=name, lifetime="detached").remote()
    return actorlib.get(handle.pid.remote())


def test_tasks_and_nested_tasks_find_the_drivers_named_actors(cluster):
    namespace = actorlib.get_runtime_context().namespace
    assert namespace.startswith("anonymous-")  # init() without a namespace: the job's own
    registry = Registry.options(name="registry").remote()
    assert actorlib.get(use_registry.remote("registry"), timeout=60) == 1
    assert actorlib.get(nested_use.remote("registry"), timeout=60) == 2
    assert actorlib.get(namespace_here.remote(), timeout=60) == namespace
    pid = actorlib.get(registry.pid.remote())
    assert actorlib.get(same_actor_if_exists.remote("registry"), timeout=60) == pid
    assert "registry" in actorlib.get(named_here.remote(), timeout=60)
    seen_namespace, names = actorlib.get(registry.namespace_and_names.remote(), timeout=60)
    assert seen_namespace == namespace and "registry" in names
    elsewhere = Registry.options(name="elsewhere", namespace="other").remote()  # named elsewhere, runs here
    assert actorlib.get(elsewhere.namespace_and_names.remote(), timeout=60)[0] == namespace
    actorlib.kill(elsewhere)
    actorlib.kill(registry)


def test_an_actor_named_in_a_task_is_found_by_the_driver_and_listed(cluster):
    pid = actorlib.get(create_named.remote("made-in-task"), timeout=60)
    made = actorlib.get_actor("made-in-task")
    assert actorlib.get(made.pid.remote()) == pid
    assert "made-in-task" in actorlib.util.list_named_actors()
    everywhere = actorlib.util.list_named_actors(all_namespaces=True)
    assert {"name": "made-in-task", "namespace": actorlib.get_runtime_context().namespace} in everywhere
    actorlib.kill(made)
    poll(lambda: "made-in-task" not in actorlib.util.list_named_actors(), timeout=30)


def test_other_jobs_reach_named_actors_by_namespace_only(cluster):
    registry = Registry.options(name="shared", namespace="team").remote()
    mine = Registry.options(name="private").remote()  # in this job's anonymous namespace
    pid = actorlib.get(registry.pid.remote())
    code = """
        import actorlib, os
        actorlib.init(address=os.environ["HEAD"], namespace="team")

        @actorlib.remote
        def lookup(name):
            return actorlib.get(actorlib.get_actor(name).pid.remote())

        print(actorlib.get(lookup.remote("shared"), timeout=60))
        try:
            actorlib.get_actor("private")
        except ValueError as exc:
            print("ValueError:", exc)
    """
    result = run_driver(code, env={"HEAD": current().identity.head_address}, timeout=120)
    assert result.returncode == 0, result.stderr
    found, missing = result.stdout.splitlines()[-2:]
    assert int(found) == pid
    assert missing == "ValueError: no live actor named 'private' in namespace 'team'"
    actorlib.kill(registry)
    actorlib.kill(mine)


# ---- generator tasks stream, as in Ray 2.x ---------------------------------------------------------


@actorlib.remote
def count_up(n: int):
    for i in range(n):
        yield i


@actorlib.remote
def fails_after_one():
    yield "first"
    raise ValueError("broke after one")


@actorlib.remote
async def async_count_up(n: int):
    for i in range(n):
        await asyncio.sleep(0)
        yield i * 10


@actorlib.remote
class Streamer:
    def numbers(self, n: int):
        for i in range(n):
            yield i

    @actorlib.method(num_returns=2)
    def pair(self):
        yield "a"
        yield "b"


@actorlib.remote
class AsyncStreamer:
    async def numbers(self, n: int):
        for i in range(n):
            await asyncio.sleep(0)
            yield i


def test_a_generator_task_returns_an_object_ref_generator(cluster):
    generator = count_up.remote(4)
    assert isinstance(generator, actorlib.ObjectRefGenerator)
    assert actorlib.get(next(generator), timeout=60) == 0
    assert [actorlib.get(ref) for ref in generator] == [1, 2, 3]


def test_an_error_in_a_generator_is_raised_when_its_item_is_fetched(cluster):
    first, failing = list(fails_after_one.remote())
    assert actorlib.get(first, timeout=60) == "first"
    with pytest.raises(ValueError, match="broke after one"):
        actorlib.get(failing)


def test_num_returns_on_a_generator_gives_ordinary_refs(cluster):
    refs = count_up.options(num_returns=3).remote(3)
    assert isinstance(refs, list) and actorlib.get(refs, timeout=60) == [0, 1, 2]
    assert actorlib.get(count_up.options(num_returns=1).remote(1), timeout=60) == 0
    with pytest.raises(ValueError, match=r"yielded 3 values, but num_returns=2"):
        actorlib.get(count_up.options(num_returns=2).remote(3), timeout=60)


def test_async_generator_tasks_stream_too(cluster):
    assert [actorlib.get(ref) for ref in async_count_up.remote(3)] == [0, 10, 20]
    assert actorlib.get(async_count_up.options(num_returns=2).remote(2), timeout=60) == [0, 10]


def test_generator_methods_stream_by_default(cluster):
    streamer, async_streamer = Streamer.remote(), AsyncStreamer.remote()
    assert [actorlib.get(ref) for ref in streamer.numbers.remote(3)] == [0, 1, 2]
    assert actorlib.get(streamer.pair.remote(), timeout=60) == ["a", "b"]
    assert [actorlib.get(ref) for ref in async_streamer.numbers.remote(3)] == [0, 1, 2]

    async def consume() -> list[int]:
        return [await ref async for ref in async_streamer.numbers.remote(4)]

    assert asyncio.run(consume()) == [0, 1, 2, 3]
    actorlib.kill(streamer)
    actorlib.kill(async_streamer)


@actorlib.remote
def big_chunks(n: int):
    for i in range(n):
        yield np.full(50_000, i)  # 400 KB: kept in the store, not inline


def test_releasing_a_default_generator_frees_what_nobody_took(cluster):
    from actorlib._core._streams import item_id

    runtime = current()
    generator = big_chunks.remote(4)
    task_id = generator._task_id
    assert actorlib.get(next(generator), timeout=60)[0] == 0
    poll(lambda: runtime.streams.count(task_id) == 4, timeout=60)
    items = [item_id(task_id, index) for index in range(4)]
    assert all(runtime.objects.get(item) is not None for item in items[1:])  # the first was taken, and dropped
    del generator
    poll(lambda: all(runtime.objects.get(item) is None for item in items), timeout=30)
    poll(lambda: task_id not in runtime.streams._streams, timeout=30)


# ---- actor resource defaults, as Ray's ------------------------------------------------------------


@actorlib.remote
class Holder:
    def ready(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("options", "cpu_held", "slot_held"),
    [
        ({}, 0, 0),  # needs 1 CPU to be placed, holds none
        ({"num_cpus": 1}, 1, 0),
        ({"resources": {"slot": 1}}, 1, 1),  # naming any resource: holds 1 CPU too
        ({"num_gpus": 0}, 1, 0),  # even 0 GPUs counts as naming one, as in Ray
        ({"num_cpus": 0, "resources": {"slot": 1}}, 0, 1),
    ],
)
def test_actor_resource_defaults_match_rays(cluster, options, cpu_held, slot_held):
    def free() -> tuple[float, float]:
        available = actorlib.available_resources()
        return available.get("CPU", 0), available.get("slot", 0)

    cpus, slots = poll(lambda: (f := free()) == (2, 1) and f, timeout=30)
    holder = Holder.options(**options).remote()
    assert actorlib.get(holder.ready.remote(), timeout=60)
    expected = (cpus - cpu_held, slots - slot_held)
    assert poll(lambda: free() == expected and True, timeout=30)
    actorlib.kill(holder)
    poll(lambda: free() == (cpus, slots), timeout=30)


def test_an_actor_without_options_still_needs_a_cpu_to_be_placed(fresh_cluster):
    fresh_cluster(num_cpus=0)
    with pytest.raises(actorlib.exceptions.ActorDiedError, match=r"requests CPU=1 \(this node has 0\)"):
        actorlib.get(Holder.remote().ready.remote(), timeout=60)
    assert actorlib.get(Holder.options(num_cpus=0).remote().ready.remote(), timeout=60)

