"""Actors, under Ray's module name (``ray.actor``): the handle and class types, and
:func:`exit_actor` to end an actor from inside one of its methods."""

from __future__ import annotations

from typing import NoReturn

from ._actor_class import ActorClass, ActorHandle, ActorMethod, method
from ._core import current

__all__ = ["ActorClass", "ActorHandle", "ActorMethod", "exit_actor", "method"]


def exit_actor() -> NoReturn:
    """End the current actor for good, from one of its methods (Ray's ``ray.actor.exit_actor``).

    The actor is not restarted, whatever its ``max_restarts``; its resources go back to its
    node. The calling method does not return: its caller, and the callers of every call
    still queued, get :class:`~actorlib.exceptions.ActorDiedError` saying that
    ``exit_actor()`` was called. Raises TypeError outside an actor.
    """
    runtime = current()
    executor = runtime.executor
    actor = getattr(executor, "actor", None) if executor is not None else None
    if actor is None:
        raise TypeError("exit_actor() may only be called inside an actor's method")
    actor.exit()
    raise AssertionError("unreachable")  # actor.exit() raises
