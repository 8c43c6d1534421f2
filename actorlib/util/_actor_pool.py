"""ActorPool: spread calls over a fixed set of actors, one call per actor at a time (Ray's ``ray.util.ActorPool``)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar, Union

import actorlib
from actorlib import ActorHandle, ObjectRef
from actorlib.exceptions import ActorDiedError

V = TypeVar("V")
Submitted = Union[ObjectRef, list[ObjectRef]]
CallFn = Callable[[ActorHandle, V], Submitted]

_TIMED_OUT = "Timed out waiting for result"


class _Pending:
    """One submitted call: its result ref(s), its submission index, and the actor running it."""

    __slots__ = ("refs", "single", "index", "actor")

    def __init__(self, submitted: Submitted, index: int, actor: ActorHandle) -> None:
        if isinstance(submitted, ObjectRef):
            self.refs, self.single = [submitted], True
        elif isinstance(submitted, (list, tuple)) and all(isinstance(r, ObjectRef) for r in submitted):
            self.refs, self.single = list(submitted), False
        else:
            raise TypeError(f"the pool's fn must return an ObjectRef or a list of them, got {type(submitted).__name__}")
        self.index = index
        self.actor = actor


class ActorPool:
    """A fixed set of actors, each running one call from the pool at a time.

    ``fn(actor, value)`` must start the call and return its ObjectRef (or a
    list of refs, for ``num_returns > 1``), e.g. ``lambda a, v:
    a.double.remote(v)``; the actor counts as busy until the pool hands its
    result out. Values submitted while every actor is busy wait in the pool
    (not in an actor's queue) and start, in submission order, as results are
    taken with ``get_next*``. Not thread-safe: use a pool from one thread.
    """

    def __init__(self, actors: Iterable[ActorHandle]) -> None:
        self._idle: list[ActorHandle] = list(actors)
        self._running: dict[int, _Pending] = {}  # by submission index, oldest first
        self._waiting: deque[tuple[CallFn[Any], Any]] = deque()
        self._next_task_index = 0
        self._next_return_index = 0

    # ---- submitting --------------------------------------------------------------------

    def submit(self, fn: CallFn[V], value: V) -> None:
        """Start ``fn(actor, value)`` on an idle actor, or queue it until one is free. Never blocks."""
        if not self._idle:
            self._waiting.append((fn, value))
            return
        actor = self._idle.pop()
        try:
            pending = _Pending(fn(actor, value), self._next_task_index, actor)
        except BaseException:
            self._idle.append(actor)  # fn failed before starting anything: the actor is still free
            raise
        self._running[pending.index] = pending
        self._next_task_index += 1

    def map(self, fn: CallFn[V], values: Iterable[V]) -> Iterator[Any]:
        """Submit ``fn`` over ``values`` now; return an iterator of the results in input order.

        Results of earlier submissions not yet taken are dropped first (their
        errors too). Iterating raises a call's error at its position.
        """
        self._drop_unreturned()
        for value in values:
            self.submit(fn, value)
        return self._results(self.get_next)

    def map_unordered(self, fn: CallFn[V], values: Iterable[V]) -> Iterator[Any]:
        """Like :meth:`map`, but the iterator yields results as they finish."""
        self._drop_unreturned()
        for value in values:
            self.submit(fn, value)
        return self._results(self.get_next_unordered)

    def _results(self, get: Callable[[], Any]) -> Iterator[Any]:
        while self.has_next():
            yield get()

    def _drop_unreturned(self) -> None:
        while self.has_next():
            try:
                self.get_next_unordered(timeout=0, ignore_if_timedout=True)
            except Exception:
                pass  # an abandoned call's error (or its timeout) is nobody's business now

    # ---- results -----------------------------------------------------------------------

    def has_next(self) -> bool:
        """Whether any submitted call's result has not been returned yet."""
        return bool(self._running)

    def get_next(self, timeout: float | None = None, ignore_if_timedout: bool = False) -> Any:
        """The next result in submission order, blocking up to ``timeout`` seconds.

        Raises:
            StopIteration: nothing is pending.
            TimeoutError: the result is not ready in time. It stays next, unless
                ``ignore_if_timedout``: then it is dropped (its actor rejoins the
                idle set) and the following one becomes next.
            ValueError: after get_next_unordered() took results out of order.
            The call's own error (an ActorDiedError retires its actor from the pool).
        """
        if not self.has_next():
            raise StopIteration("No more results to get")
        pending = self._running.get(self._next_return_index)
        if pending is None:
            raise ValueError("It is not allowed to call get_next() after get_next_unordered().")
        if timeout is not None and not _ready(pending.refs, timeout):
            if not ignore_if_timedout:
                raise TimeoutError(_TIMED_OUT)
            raise self._ignore(pending)
        self._take(pending)
        return self._result(pending)

    def get_next_unordered(self, timeout: float | None = None, ignore_if_timedout: bool = False) -> Any:
        """Any finished result (the earliest submitted among the finished), blocking up to ``timeout``.

        Raises StopIteration, TimeoutError (with ``ignore_if_timedout`` the
        oldest pending call is dropped), or the call's own error.
        """
        if not self.has_next():
            raise StopIteration("No more results to get")
        pending = self._first_finished(timeout)
        if pending is None:
            if not ignore_if_timedout:
                raise TimeoutError(_TIMED_OUT)
            raise self._ignore(next(iter(self._running.values())))  # the oldest
        self._take(pending)
        return self._result(pending)

    def _first_finished(self, timeout: float | None) -> _Pending | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            all_refs = [ref for pending in self._running.values() for ref in pending.refs]
            done, not_done = actorlib.wait(all_refs, num_returns=len(all_refs), timeout=0)
            finished = set(done)
            for pending in self._running.values():
                if finished.issuperset(pending.refs):
                    return pending
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return None
            actorlib.wait(not_done, num_returns=1, timeout=remaining)

    def _ignore(self, pending: _Pending) -> TimeoutError:
        # As in Ray, the actor rejoins the idle set at once; its next call
        # queues behind the ignored one in the actor.
        self._take(pending)
        self._return_actor(pending.actor)
        task = pending.refs[0] if pending.single else pending.refs
        return TimeoutError(f"{_TIMED_OUT}. The task {task} has been ignored.")

    def _take(self, pending: _Pending) -> None:
        del self._running[pending.index]
        self._next_return_index = max(self._next_return_index, pending.index + 1)

    def _result(self, pending: _Pending) -> Any:
        alive = True
        try:
            values = actorlib.get(pending.refs)
            return values[0] if pending.single else values
        except ActorDiedError:
            alive = False
            raise
        finally:
            self._return_actor(pending.actor, alive)

    # ---- the idle set ------------------------------------------------------------------

    def has_free(self) -> bool:
        """Whether an actor is idle and no submitted value is waiting for one."""
        return bool(self._idle) and not self._waiting

    def pop_idle(self) -> ActorHandle | None:
        """Remove an idle actor from the pool and return it; None if none is free."""
        return self._idle.pop() if self.has_free() else None

    def push(self, actor: ActorHandle) -> None:
        """Add an actor to the pool (it starts a waiting value at once, if any). ValueError if it is already in."""
        busy = [pending.actor for pending in self._running.values()]
        if actor in self._idle or actor in busy:
            raise ValueError("Actor already belongs to current ActorPool")
        self._return_actor(actor)

    def _return_actor(self, actor: ActorHandle, alive: bool = True) -> None:
        if alive:
            self._idle.append(actor)
        if self._waiting and self._idle:
            self.submit(*self._waiting.popleft())


def _ready(refs: list[ObjectRef], timeout: float) -> bool:
    _, not_done = actorlib.wait(refs, num_returns=len(refs), timeout=timeout)
    return not not_done
