"""Utilities over actorlib's core API, with Ray's names (``ray.util``):

- ActorPool: spread calls over a fixed set of actors.
- queue.Queue: a FIFO queue in an actor, shared by processes.
- multiprocessing.Pool: ``multiprocessing.Pool`` whose processes are actors.
- ActorlibExecutor (also RayExecutor, Executor): a ``concurrent.futures.Executor`` over tasks.
"""

from . import multiprocessing, queue
from ._actor_pool import ActorPool
from ._executor import ActorlibExecutor

RayExecutor = ActorlibExecutor
Executor = ActorlibExecutor

__all__ = ["ActorPool", "ActorlibExecutor", "Executor", "RayExecutor", "multiprocessing", "queue"]
