"""The public surface of actorlib.util, pinned: a change here is a change to users' code."""

from __future__ import annotations

import inspect
import multiprocessing

import actorlib.util
import actorlib.util.multiprocessing
import actorlib.util.queue


def test_public_names():
    assert sorted(actorlib.util.__all__) == [
        "ActorPool", "ActorlibExecutor", "Executor", "PlacementGroup", "RayExecutor", "accelerators", "as_completed",
        "deregister_serializer", "get_current_placement_group", "get_node_ip_address", "get_placement_group", "inspect_serializability",
        "list_named_actors", "log_once", "map_unordered", "multiprocessing", "placement_group",
        "placement_group_table", "queue", "register_serializer", "remove_placement_group", "scheduling_strategies",
    ]  # fmt: skip
    assert sorted(actorlib.util.queue.__all__) == ["Empty", "Full", "Queue"]
    assert sorted(actorlib.util.multiprocessing.__all__) == ["AsyncResult", "IMapIterator", "Pool", "TimeoutError"]
    for module in (actorlib.util, actorlib.util.queue, actorlib.util.multiprocessing):
        assert all(hasattr(module, name) for name in module.__all__)


def test_joblib_names():
    import actorlib.util.joblib

    assert sorted(actorlib.util.joblib.__all__) == ["ActorlibBackend", "RayBackend", "register_actorlib", "register_ray"]
    assert str(inspect.signature(actorlib.util.joblib.register_ray)) == "() -> None"


def test_imports_ray_users_write():
    from actorlib.util import ActorPool  # noqa: F401
    from actorlib.util.multiprocessing import Pool  # noqa: F401
    from actorlib.util.queue import Empty, Full, Queue  # noqa: F401
    from actorlib.util import placement_group, remove_placement_group  # noqa: F401
    from actorlib.util.placement_group import PlacementGroup, placement_group_table  # noqa: F401
    from actorlib.util.scheduling_strategies import PlacementGroupSchedulingStrategy  # noqa: F401
    from actorlib.util.accelerators import NVIDIA_TESLA_V100  # noqa: F401

    assert callable(actorlib.util.placement_group)  # the function, as in Ray (the module is importable too)


def test_placement_group_signatures():
    from actorlib.util import placement_group

    assert list(inspect.signature(placement_group).parameters)[:4] == ["bundles", "strategy", "name", "lifetime"]
    assert public_methods(actorlib.util.PlacementGroup) == ["ready", "wait"]


def public_methods(cls):
    return sorted(name for name, _ in inspect.getmembers(cls, callable) if not name.startswith("_"))


def test_actor_pool_methods_and_signatures():
    cls = actorlib.util.ActorPool
    assert public_methods(cls) == [
        "get_next", "get_next_unordered", "has_free", "has_next", "map", "map_unordered", "pop_idle", "push", "submit",
    ]  # fmt: skip
    assert str(inspect.signature(cls.get_next)) == "(self, timeout: 'float | None' = None, ignore_if_timedout: 'bool' = False) -> 'Any'"


def test_queue_methods_and_signatures():
    cls = actorlib.util.queue.Queue
    assert public_methods(cls) == [
        "empty", "full", "get", "get_async", "get_nowait", "get_nowait_batch", "put", "put_async", "put_nowait",
        "put_nowait_batch", "qsize", "shutdown", "size",
    ]  # fmt: skip
    assert list(inspect.signature(cls).parameters) == ["maxsize", "actor_options"]
    assert list(inspect.signature(cls.get).parameters) == ["self", "block", "timeout"]
    assert list(inspect.signature(cls.put).parameters) == ["self", "item", "block", "timeout"]


def test_pool_methods_and_signatures():
    cls = actorlib.util.multiprocessing.Pool
    assert public_methods(cls) == [
        "apply", "apply_async", "close", "imap", "imap_unordered", "join", "map", "map_async", "starmap",
        "starmap_async", "terminate",
    ]  # fmt: skip
    assert list(inspect.signature(cls).parameters)[:6] == [
        "processes", "initializer", "initargs", "maxtasksperchild", "context", "ray_address",
    ]  # fmt: skip
    assert actorlib.util.multiprocessing.TimeoutError is multiprocessing.TimeoutError


def test_executor_methods():
    assert public_methods(actorlib.util.ActorlibExecutor) == ["map", "shutdown", "submit"]


def test_metrics_follow_rays_signatures():
    import actorlib.util.metrics as metrics

    assert sorted(metrics.__all__) == ["Counter", "Gauge", "Histogram", "Metric"]

    def params(fn):
        return [(p.name, p.default) for p in inspect.signature(fn).parameters.values() if p.name != "self"]

    assert params(metrics.Counter) == params(metrics.Gauge) == [("name", inspect.Parameter.empty), ("description", ""), ("tag_keys", None)]
    assert params(metrics.Histogram) == [("name", inspect.Parameter.empty), ("description", ""), ("boundaries", None), ("tag_keys", None)]
    assert params(metrics.Counter.inc) == [("value", 1.0), ("tags", None)]
    assert params(metrics.Gauge.set) == params(metrics.Histogram.observe) == [("value", inspect.Parameter.empty), ("tags", None)]
    assert public_methods(metrics.Counter) == ["inc", "set_default_tags"]
    assert public_methods(metrics.Gauge) == ["set", "set_default_tags"]
    assert public_methods(metrics.Histogram) == ["observe", "set_default_tags"]
