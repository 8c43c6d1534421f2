"""Utilities over actorlib's core API, with Ray's names (``ray.util``):

- ActorPool: spread calls over a fixed set of actors.
- queue.Queue: a FIFO queue in an actor, shared by processes.
- multiprocessing.Pool: ``multiprocessing.Pool`` whose processes are actors.
- ActorlibExecutor (also RayExecutor, Executor): a ``concurrent.futures.Executor`` over tasks.
- placement_group(), remove_placement_group(), ...: reserve bundles of resources across nodes.
- list_named_actors(): the live named actors of this job's namespace (or of all).
- as_completed(), map_unordered(): results as they complete (the second with a cap on
  pending tasks); get_node_ip_address(); inspect_serializability(): what cannot be
  pickled, and why; log_once(); register_serializer() / deregister_serializer(): custom
  serialization of a type (``serialization``).
- state, scheduling_strategies, metrics, accelerators: submodules, reachable as attributes (as in Ray, but for metrics).
"""

from typing import Any

from . import multiprocessing, queue
from .._actor_class import list_named_actors
from ._actor_pool import ActorPool
from ._helpers import as_completed, get_node_ip_address, inspect_serializability, log_once, map_unordered
from ._executor import ActorlibExecutor
from .serialization import deregister_serializer, register_serializer
from .placement_group import (
    PlacementGroup,
    get_current_placement_group,
    get_placement_group,
    placement_group,
    placement_group_table,
    remove_placement_group,
)

RayExecutor = ActorlibExecutor
Executor = ActorlibExecutor

# Submodules reachable as attributes without an import of their own (``ray.util.state``).
_LAZY_SUBMODULES = {"accelerators", "metrics", "scheduling_strategies", "state"}


def __getattr__(name: str) -> Any:
    if name in _LAZY_SUBMODULES:
        import importlib

        try:
            module = importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
        else:
            globals()[name] = module
            return module
    raise AttributeError(f"module 'actorlib.util' has no attribute {name!r}")

__all__ = [
    "accelerators",
    "as_completed",
    "get_node_ip_address",
    "inspect_serializability",
    "log_once",
    "map_unordered",
    "ActorPool",
    "ActorlibExecutor",
    "deregister_serializer",
    "register_serializer",
    "Executor",
    "PlacementGroup",
    "RayExecutor",
    "get_current_placement_group",
    "get_placement_group",
    "list_named_actors",
    "multiprocessing",
    "placement_group",
    "placement_group_table",
    "queue",
    "remove_placement_group",
    "scheduling_strategies",
]
