"""Utilities over actorlib's core API, with Ray's names (``ray.util``):

- ActorPool: spread calls over a fixed set of actors.
- queue.Queue: a FIFO queue in an actor, shared by processes.
- multiprocessing.Pool: ``multiprocessing.Pool`` whose processes are actors.
- ActorlibExecutor (also RayExecutor, Executor): a ``concurrent.futures.Executor`` over tasks.
- placement_group(), remove_placement_group(), ...: reserve bundles of resources across nodes.
"""

from . import multiprocessing, queue
from ._actor_pool import ActorPool
from ._executor import ActorlibExecutor
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

__all__ = [
    "ActorPool",
    "ActorlibExecutor",
    "Executor",
    "PlacementGroup",
    "RayExecutor",
    "get_current_placement_group",
    "get_placement_group",
    "multiprocessing",
    "placement_group",
    "placement_group_table",
    "queue",
    "remove_placement_group",
]
