"""More of Ray Core's API that programs written for Ray use: ``ray.actor.exit_actor``, the
rest of the runtime context, ``ray.util``'s helpers, ``ray.timeline``, Ray's module
and exception names, and ``num_returns="dynamic"``. Each failed (AttributeError or ImportError) before it was added."""

from __future__ import annotations

import io
import os
import threading
import time
from pathlib import Path

import pytest
import trio

import actorlib
from actorlib.exceptions import ActorDiedError

from .conftest import alive, poll

# ---- exit_actor -------------------------------------------------------------------------


@actorlib.remote(max_restarts=3)
class Leaver:
    def pid(self) -> int:
        return os.getpid()

    def leave(self) -> None:
        from actorlib.actor import exit_actor

        exit_actor()
        raise AssertionError("exit_actor() returned")


@actorlib.remote(max_restarts=3)
class AsyncLeaver:
    async def pid(self) -> int:
        return os.getpid()

    async def leave(self) -> None:
        actorlib.actor.exit_actor()


@pytest.mark.parametrize("cls", [Leaver, AsyncLeaver], ids=["sync", "async"])
def test_exit_actor_ends_the_actor_for_good_despite_its_restarts(cluster, cls):
    from actorlib.util.state import list_actors

    actor = cls.remote()
    pid = actorlib.get(actor.pid.remote(), timeout=60)
    with pytest.raises(ActorDiedError, match=r"exit_actor\(\) was called"):
        actorlib.get(actor.leave.remote(), timeout=60)
    poll(lambda: not alive(pid), timeout=30)  # its process is gone ...
    with pytest.raises(ActorDiedError, match=r"exit_actor\(\) was called"):
        actorlib.get(actor.pid.remote(), timeout=60)  # ... and not restarted (max_restarts=3)
    actor_id = actor._actor_id.hex()
    (view,) = [a for a in list_actors(timeout=30) if a.actor_id == actor_id]
    assert view.state == "DEAD" and view.death_cause == "exit_actor() was called"


class Slow:
    def __init__(self) -> None:
        self.calls = 0

    def work(self, path: str) -> int:
        while not os.path.exists(path):
            time.sleep(0.01)
        self.calls += 1
        return self.calls

    def pid(self) -> int:
        return os.getpid()


class AsyncSlow(Slow):
    async def work(self, path: str) -> int:
        while not os.path.exists(path):
            await trio.sleep(0.01)
        self.calls += 1
        return self.calls

    async def pid(self) -> int:
        return os.getpid()


@pytest.mark.parametrize("cls", [Slow, AsyncSlow], ids=["sync", "async"])
def test_ray_terminate_ends_the_actor_once_the_calls_before_it_ran(cluster, tmp_path, cls):
    actor = actorlib.remote(max_restarts=3)(cls).remote()
    pid = actorlib.get(actor.pid.remote(), timeout=60)
    gate = tmp_path / "gate"
    before = [actor.work.remote(str(gate)) for _ in range(2)]  # still running when it comes
    terminate = actor.__ray_terminate__.remote()
    after = actor.work.remote(str(gate))
    gate.write_text("go")
    assert sorted(actorlib.get(before, timeout=60)) == [1, 2]
    with pytest.raises(ActorDiedError, match=r"__ray_terminate__\(\) was called"):
        actorlib.get(terminate, timeout=60)
    with pytest.raises(ActorDiedError, match=r"__ray_terminate__\(\) was called"):
        actorlib.get(after, timeout=60)  # refused: it came after
    poll(lambda: not alive(pid), timeout=30)
    with pytest.raises(ActorDiedError):
        actorlib.get(actor.pid.remote(), timeout=60)  # not restarted, despite max_restarts=3


def test_an_actor_class_cannot_be_subclassed_and_says_what_to_do_instead():
    with pytest.raises(TypeError, match="cannot subclass the actor class Leaver.*subclass the plain class"):

        class Sub(Leaver):  # type: ignore[misc, valid-type]
            pass


def test_exit_actor_outside_an_actor_is_a_type_error(cluster):
    @actorlib.remote
    def not_an_actor() -> None:
        actorlib.actor.exit_actor()

    with pytest.raises(TypeError, match="only be called inside an actor"):
        actorlib.get(not_an_actor.remote(), timeout=60)
    with pytest.raises(TypeError, match="only be called inside an actor"):
        actorlib.actor.exit_actor()  # the driver


# ---- the runtime context --------------------------------------------------------------


@actorlib.remote(max_restarts=1)
class Introspective:
    def context(self) -> dict:
        ctx = actorlib.get_runtime_context()
        return {
            "name": ctx.get_actor_name(),
            "restarted": ctx.was_current_actor_reconstructed(),
            "actor_id": ctx.actor_id,
            "dict": ctx.get(),
            "session": ctx.get_session_name(),
            "temp": ctx.get_temp_dir(),
            "resource_ids": ctx.get_resource_ids(),
            "assigned": ctx.get_assigned_resources(),
        }

    def myself(self):
        return actorlib.get_runtime_context().current_actor

    def pid(self) -> int:
        return os.getpid()


def test_an_actor_knows_its_name_its_handle_and_whether_it_was_restarted(cluster):
    actor = Introspective.options(name="introspective").remote()
    first = actorlib.get(actor.context.remote(), timeout=60)
    assert first["name"] == "introspective" and first["restarted"] is False
    assert first["actor_id"] == actor._actor_id.hex() == first["dict"]["actor_id"]
    assert first["session"].startswith("session_") and Path(first["temp"]).name == first["session"]
    assert first["resource_ids"] == {"GPU": []}
    assert first["assigned"] == {}  # an actor holds no CPU while alive unless it asks (as in Ray)
    handle = actorlib.get(actor.myself.remote(), timeout=60)  # a handle to itself, usable anywhere
    assert actorlib.get(handle.pid.remote(), timeout=60) == actorlib.get(actor.pid.remote(), timeout=60)
    os.kill(actorlib.get(actor.pid.remote(), timeout=60), 9)
    restarted = poll(lambda: _quietly(lambda: actorlib.get(actor.context.remote(), timeout=30)), timeout=60)
    assert restarted["restarted"] is True
    actorlib.kill(actor)
    driver = actorlib.get_runtime_context()
    assert driver.get_actor_name() is None and driver.actor_id is None
    assert set(driver.get()) == {"job_id", "node_id", "namespace"}
    with pytest.raises(RuntimeError, match="only available in an actor"):
        driver.current_actor


def test_tasks_and_actors_know_the_resources_they_hold(cluster):
    @actorlib.remote
    def assigned() -> dict:
        return actorlib.get_runtime_context().get_assigned_resources()

    @actorlib.remote(num_cpus=0.25)
    class Holder:
        def assigned(self) -> dict:
            return actorlib.get_runtime_context().get_assigned_resources()

    assert actorlib.get(assigned.remote(), timeout=60) == {"CPU": 1.0}
    assert actorlib.get(assigned.options(num_cpus=0.5).remote(), timeout=60) == {"CPU": 0.5}
    holder = Holder.remote()
    assert actorlib.get(holder.assigned.remote(), timeout=60) == {"CPU": 0.25}
    actorlib.kill(holder)
    assert actorlib.get_runtime_context().get_assigned_resources() == {}  # a driver holds none


def test_a_task_in_a_placement_group_knows_its_group(cluster):
    from actorlib.util.placement_group import placement_group, remove_placement_group
    from actorlib.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    @actorlib.remote(num_cpus=1)
    def group_id() -> str | None:
        return actorlib.get_runtime_context().get_placement_group_id()

    pg = placement_group([{"CPU": 1}])
    actorlib.get(pg.ready(), timeout=60)
    inside = group_id.options(scheduling_strategy=PlacementGroupSchedulingStrategy(placement_group=pg)).remote()
    assert actorlib.get(inside, timeout=60) == pg.id.hex()
    remove_placement_group(pg)
    assert actorlib.get(group_id.remote(), timeout=60) is None


def _quietly(fn):
    try:
        return fn()
    except (ActorDiedError, actorlib.exceptions.ActorUnavailableError, actorlib.exceptions.GetTimeoutError):
        return None


# ---- ray.util helpers ------------------------------------------------------------------


@actorlib.remote
def square_after(x: int, gate: str | None = None) -> int:
    if gate is not None:
        while not os.path.exists(gate):
            threading.Event().wait(0.01)
    return x * x


def test_as_completed_yields_what_is_done_before_what_is_not(cluster, tmp_path):
    gate = tmp_path / "gate"
    refs = [square_after.remote(7, str(gate))] + [square_after.remote(i) for i in range(3)]
    results = actorlib.util.as_completed(refs, chunk_size=1)
    first = [next(results) for _ in range(3)]  # the gated task cannot be among them
    assert sorted(first) == [0, 1, 4]
    gate.write_text("go")
    assert list(results) == [49]
    assert sorted(actorlib.util.as_completed(refs, chunk_size=3, yield_obj_refs=True), key=id) == sorted(refs, key=id)
    with pytest.raises(ValueError, match="chunk_size"):
        next(actorlib.util.as_completed(refs, chunk_size=0))


def test_map_unordered_caps_the_tasks_in_flight(cluster):
    pulled = []

    def items():
        for i in range(40):
            pulled.append(i)
            yield i

    results = actorlib.util.map_unordered(square_after, items(), backpressure_size=5, chunk_size=1)
    first = next(results)
    assert len(pulled) <= 6  # 5 in flight, and the one that waited for room
    assert sorted([first, *results]) == [i * i for i in range(40)]
    with pytest.raises(ValueError, match="num_returns"):
        next(actorlib.util.map_unordered(square_after, [1], num_returns=2))


def test_get_node_ip_address_is_the_nodes_address_in_tasks_and_drivers(cluster):
    @actorlib.remote
    def where() -> str:
        return actorlib.util.get_node_ip_address()

    known = {node["NodeManagerAddress"] for node in actorlib.nodes() if node["Alive"]}
    assert actorlib.get(where.remote(), timeout=60) in known
    assert actorlib.util.get_node_ip_address() in known


def test_inspect_serializability_names_what_cannot_be_pickled():
    lock = threading.Lock()

    def uses_lock() -> int:
        with lock:
            return 1

    class Holder:
        def __init__(self) -> None:
            self.fine = [1, 2]
            self.guard = threading.Lock()

    printed = io.StringIO()
    ok, failures = actorlib.util.inspect_serializability(uses_lock, name="uses_lock", print_file=printed)
    assert not ok and [f.name for f in failures] == ["lock"] and failures.pop().parent is uses_lock
    assert "cannot pickle '_thread.lock' object" in printed.getvalue()
    ok, failures = actorlib.util.inspect_serializability(Holder(), print_file=printed)
    assert not ok and [f.name for f in failures] == ["guard"]
    assert actorlib.util.inspect_serializability(lambda: 1, print_file=printed) == (True, set())
    assert actorlib.util.log_once("compat-key") and not actorlib.util.log_once("compat-key")


# ---- ray.timeline, module and exception names ------------------------------------------


def test_timeline_returns_or_writes_the_chrome_trace(cluster, tmp_path):
    import json

    actorlib.get([square_after.remote(i) for i in range(3)], timeout=60)
    events = poll(lambda: [e for e in actorlib.timeline() if "square_after" in str(e.get("name", ""))], timeout=30)
    assert all({"ph", "ts", "pid"} <= set(e) for e in events)
    path = tmp_path / "trace.json"
    assert actorlib.timeline(filename=str(path)) is None
    assert any("square_after" in str(e.get("name", "")) for e in json.loads(path.read_text()))


def test_rays_module_and_exception_names_resolve():
    import actorlib.actor
    import actorlib.remote_function
    import actorlib.runtime_context

    assert actorlib.actor.ActorHandle is actorlib.ActorHandle and actorlib.actor.method is actorlib.method
    assert actorlib.remote_function.RemoteFunction is actorlib.RemoteFunction
    assert actorlib.runtime_context.get_runtime_context is actorlib.get_runtime_context
    assert actorlib.ObjectID is actorlib.ObjectRef
    exceptions = actorlib.exceptions
    assert exceptions.RuntimeEnvSetupError is exceptions.WorkerStartError
    assert exceptions.TaskPlacementGroupRemoved is exceptions.TaskUnschedulableError
    assert issubclass(exceptions.AsyncioActorExit, exceptions.RayError)


# ---- num_returns="dynamic" ---------------------------------------------------------------

with pytest.warns(DeprecationWarning, match="streaming"):

    @actorlib.remote(num_returns="dynamic")
    def tens(n):
        for i in range(n):
            yield i * 10

    @actorlib.remote(num_returns="dynamic")
    def fails_after_one():
        yield 1
        raise ValueError("boom after one")


@actorlib.remote
def total_of(refs):
    return sum(actorlib.get(list(refs)))


@actorlib.remote
class Yielder:
    with pytest.warns(DeprecationWarning):

        @actorlib.method(num_returns="dynamic")
        def squares(self, n):
            for i in range(n):
                yield i * i


def test_a_dynamic_generator_task_returns_one_ref_to_the_refs_it_yielded(cluster):
    ref = tens.remote(4)
    assert isinstance(ref, actorlib.ObjectRef)
    ready, _ = actorlib.wait([ref], timeout=60)
    assert ready == [ref]
    refs = actorlib.get(ref)
    assert isinstance(refs, actorlib.DynamicObjectRefGenerator) and len(refs) == 4
    assert actorlib.get(list(refs)) == [0, 10, 20, 30]
    assert actorlib.get(total_of.remote(tens.remote(3)), timeout=60) == 30  # passed on to a task
    assert actorlib.get(tens.remote(0), timeout=60).__len__() == 0


def test_a_dynamic_generator_that_raises_raises_from_its_ref(cluster):
    with pytest.raises(ValueError, match="boom after one"):
        actorlib.get(fails_after_one.remote(), timeout=60)


def test_dynamic_generator_methods_and_options(cluster):
    actor = Yielder.remote()
    assert [actorlib.get(r) for r in actorlib.get(actor.squares.remote(4), timeout=60)] == [0, 1, 4, 9]
    streaming = actor.squares.options(num_returns="streaming")  # the same method, streamed
    assert [actorlib.get(r) for r in streaming.remote(3)] == [0, 1, 4]
    with pytest.warns(DeprecationWarning):
        bound = tens.options(num_returns="dynamic")
    assert actorlib.get(list(actorlib.get(bound.remote(2), timeout=60))) == [0, 10]
    actorlib.kill(actor)


def test_a_dynamic_generator_dropped_before_it_ends_leaves_nothing_behind(cluster, tmp_path):
    from actorlib._core import current
    from actorlib._core._streams import item_id

    go = tmp_path / "go"

    with pytest.warns(DeprecationWarning):

        @actorlib.remote(num_returns="dynamic")
        def gated(path):
            yield 0
            while not os.path.exists(path):
                time.sleep(0.01)
            for i in range(3):
                yield bytes(200_000)  # in the store

    runtime = current()
    ref = gated.remote(str(go))
    task_id = ref.binary()[:-2]  # the task's one return
    items = [item_id(task_id, i) for i in range(4)]
    poll(lambda: runtime.streams.count(task_id) == 1, timeout=60)  # the first item came
    assert runtime.objects.get(ref.binary()) is not None and runtime.objects.get(items[0]) is not None
    result = ref.binary()
    del ref
    poll(lambda: runtime.objects.get(result) is None)
    go.write_text("go")
    poll(lambda: not runtime.streams.count(task_id) and task_id not in runtime.streams._streams, timeout=30)
    poll(lambda: all(runtime.objects.get(i) is None for i in items), timeout=30)


def test_runtime_env_as_rays_class(cluster):
    from actorlib.runtime_env import RuntimeEnv

    env = RuntimeEnv(env_vars={"COMPAT_FLAG": "on"}, working_dir=None)
    assert env == {"env_vars": {"COMPAT_FLAG": "on"}} and isinstance(env, dict)

    @actorlib.remote
    def flag() -> str | None:
        return os.environ.get("COMPAT_FLAG")

    assert actorlib.get(flag.options(runtime_env=env).remote(), timeout=60) == "on"
    with pytest.raises(ValueError, match="'pip' is not supported"):
        RuntimeEnv(pip=["requests"])
