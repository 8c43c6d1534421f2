"""Pool: ``multiprocessing.Pool`` whose processes are actors (Ray's ``ray.util.multiprocessing.Pool``)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from typing import Any

import actorlib
from actorlib import ActorHandle, ObjectRef

from ._async_result import AsyncResult
from ._imap import IMapIterator
from ._process import RemotePoolProcess

_ADDRESS_ENV = "ACTORLIB_ADDRESS"
RUN, CLOSE, TERMINATE = "RUN", "CLOSE", "TERMINATE"


class _Slot:
    """One pool process: its actor and how many batches it was sent."""

    __slots__ = ("actor", "batches")

    def __init__(self, actor: ActorHandle) -> None:
        self.actor = actor
        self.batches = 0


class Pool:
    """A pool of actor processes with ``multiprocessing.Pool``'s API.

    Uses the current actorlib runtime, or starts one (``actorlib.init``, at
    ``ray_address`` or $ACTORLIB_ADDRESS if given, else a local cluster of
    ``processes`` CPUs). The constructor returns once every process has run
    ``initializer(*initargs)``; it raises that initializer's failure.

    Args:
        processes: number of processes (actors); default: the cluster's CPUs.
            ValueError if less than 1 or more than the cluster's CPUs.
        initializer: run once in each process when it starts.
        initargs: the initializer's arguments.
        maxtasksperchild: a process is replaced after this many batches (a
            batch is one chunk of calls); None: never.
        context: accepted for ``multiprocessing`` compatibility; ignored.
        ray_address: the cluster to connect to when actorlib is not initialized.
        ray_remote_args: options for the process actors (``Cls.options(...)``);
            by default they hold no CPU (``num_cpus=0``).
    """

    def __init__(
        self,
        processes: int | None = None,
        initializer: Callable[..., Any] | None = None,
        initargs: Iterable[Any] = (),
        maxtasksperchild: int | None = None,
        context: Any = None,
        ray_address: str | None = None,
        ray_remote_args: dict[str, Any] | None = None,
    ) -> None:
        if maxtasksperchild is not None and (not isinstance(maxtasksperchild, int) or maxtasksperchild < 1):
            raise ValueError("maxtasksperchild must be a positive int or None")
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        self._state = RUN
        self._terminated = threading.Event()  # no callback runs once set, as in multiprocessing
        self._initializer = initializer
        self._initargs = tuple(initargs or ())
        self._maxtasksperchild = maxtasksperchild
        self._actor_class = RemotePoolProcess.options(**{"num_cpus": 0, **(ray_remote_args or {})})
        self._outstanding: list[ObjectRef] = []
        self._prune_at = 64
        self._next_slot = 0
        processes = _connect(processes, ray_address)
        self._slots = [_Slot(self._new_actor()) for _ in range(processes)]
        try:
            actorlib.get([slot.actor.ping.remote() for slot in self._slots])
        except BaseException:
            self.terminate()
            raise

    def _new_actor(self) -> ActorHandle:
        return self._actor_class.remote(self._initializer, self._initargs)

    # ---- submitting batches ---------------------------------------------------------------

    def _run_batch(self, slot_index: int, func: Callable[..., Any], batch: list[tuple[Any, ...]], kwargs: dict[str, Any] | None = None) -> ObjectRef:
        slot = self._slots[slot_index]
        ref = slot.actor.run_batch.remote(func, batch, kwargs)
        slot.batches += 1
        if self._maxtasksperchild is not None and slot.batches >= self._maxtasksperchild:
            # Dropping the only handle retires the actor: actorlib stops an actor
            # nobody can call once its queued calls are done.
            self._slots[slot_index] = _Slot(self._new_actor())
        self._track(ref)
        return ref

    def _track(self, ref: ObjectRef) -> None:
        self._outstanding.append(ref)
        if len(self._outstanding) >= self._prune_at:
            _, self._outstanding = actorlib.wait(self._outstanding, num_returns=len(self._outstanding), timeout=0)
            self._prune_at = max(64, 2 * len(self._outstanding))

    def _rotate(self) -> int:
        index = self._next_slot % len(self._slots)
        self._next_slot = index + 1
        return index

    def _chunks(self, func: Callable[..., Any], items: list[tuple[Any, ...]], chunksize: int | None) -> list[tuple[ObjectRef, int]]:
        if chunksize is None:
            chunksize, extra = divmod(len(items), len(self._slots) * 4)
            chunksize = max(1, chunksize + bool(extra))
        _check_chunksize(chunksize)
        return [
            (self._run_batch(self._rotate(), func, items[start : start + chunksize]), len(items[start : start + chunksize]))
            for start in range(0, len(items), chunksize)
        ]

    def _check_running(self) -> None:
        if self._state != RUN:
            raise ValueError("Pool not running")

    # ---- apply ---------------------------------------------------------------------------

    def apply(self, func: Callable[..., Any], args: Iterable[Any] = (), kwds: dict[str, Any] | None = None, *, kwargs: dict[str, Any] | None = None) -> Any:
        """``func(*args, **kwds)`` in one of the processes; blocks and returns its result or raises its exception."""
        return self.apply_async(func, args, kwds, kwargs=kwargs).get()

    def apply_async(
        self,
        func: Callable[..., Any],
        args: Iterable[Any] = (),
        kwds: dict[str, Any] | None = None,
        callback: Callable[[Any], object] | None = None,
        error_callback: Callable[[BaseException], object] | None = None,
        *,
        kwargs: dict[str, Any] | None = None,
    ) -> AsyncResult:
        """Start ``func(*args, **kwds)`` in the next process (round robin); return its AsyncResult at once.

        ``kwargs=`` is Ray's name for ``kwds``.
        """
        self._check_running()
        ref = self._run_batch(self._rotate(), func, [tuple(args or ())], kwds or kwargs)
        return AsyncResult([(ref, 1)], single=True, callback=callback, error_callback=error_callback, abandoned=self._terminated)

    # ---- map -----------------------------------------------------------------------------

    def map(self, func: Callable[[Any], Any], iterable: Iterable[Any], chunksize: int | None = None) -> list[Any]:
        """``[func(x) for x in iterable]``, computed in the processes; blocks. Raises the first call's exception."""
        return self.map_async(func, iterable, chunksize).get()

    def map_async(
        self,
        func: Callable[[Any], Any],
        iterable: Iterable[Any],
        chunksize: int | None = None,
        callback: Callable[[list[Any]], object] | None = None,
        error_callback: Callable[[BaseException], object] | None = None,
    ) -> AsyncResult:
        """Start :meth:`map`'s calls now (every chunk at once, round robin); return an AsyncResult.

        ``chunksize`` calls go to a process as one batch; by default about four
        batches per process.
        """
        self._check_running()
        chunks = self._chunks(func, [(item,) for item in iterable], chunksize)
        return AsyncResult(chunks, callback=callback, error_callback=error_callback, abandoned=self._terminated)

    def starmap(self, func: Callable[..., Any], iterable: Iterable[Iterable[Any]], chunksize: int | None = None) -> list[Any]:
        """``[func(*args) for args in iterable]``, computed in the processes; blocks."""
        return self.starmap_async(func, iterable, chunksize).get()

    def starmap_async(
        self,
        func: Callable[..., Any],
        iterable: Iterable[Iterable[Any]],
        chunksize: int | None = None,
        callback: Callable[[list[Any]], object] | None = None,
        error_callback: Callable[[BaseException], object] | None = None,
    ) -> AsyncResult:
        """:meth:`map_async` with each item unpacked as the arguments."""
        self._check_running()
        chunks = self._chunks(func, [tuple(args) for args in iterable], chunksize)
        return AsyncResult(chunks, callback=callback, error_callback=error_callback, abandoned=self._terminated)

    def imap(self, func: Callable[[Any], Any], iterable: Iterable[Any], chunksize: int = 1) -> IMapIterator:
        """Lazily ``func(x)`` over ``iterable``: an iterator of results in input order (see IMapIterator)."""
        return self._imap(func, iterable, chunksize, ordered=True)

    def imap_unordered(self, func: Callable[[Any], Any], iterable: Iterable[Any], chunksize: int = 1) -> IMapIterator:
        """Like :meth:`imap`, but results come in the order they finish."""
        return self._imap(func, iterable, chunksize, ordered=False)

    def _imap(self, func: Callable[[Any], Any], iterable: Iterable[Any], chunksize: int, *, ordered: bool) -> IMapIterator:
        self._check_running()
        _check_chunksize(chunksize)
        items = ((item,) for item in iterable)
        return IMapIterator(lambda slot, batch: self._run_batch(slot, func, batch), len(self._slots), items, chunksize, ordered=ordered)

    # ---- lifetime ------------------------------------------------------------------------

    def close(self) -> None:
        """Accept no more work; what was submitted still runs. Idempotent."""
        if self._state == RUN:
            self._state = CLOSE

    def terminate(self) -> None:
        """Stop the processes now; unfinished calls fail with ActorDiedError, and callbacks
        not yet started never run (as in ``multiprocessing``). Idempotent."""
        self._state = TERMINATE
        self._terminated.set()
        self._kill_all()

    def join(self) -> None:
        """After close(): wait for the submitted work to finish, then stop the processes.
        After terminate(): returns at once. ValueError while the pool is running."""
        if self._state == RUN:
            raise ValueError("Pool is still running")
        if self._state == CLOSE and self._outstanding:
            actorlib.wait(self._outstanding, num_returns=len(self._outstanding))
        self._outstanding = []
        self._kill_all()

    def _kill_all(self) -> None:
        slots, self._slots = self._slots, []
        if not actorlib.is_initialized():
            return  # the runtime is gone, and its processes with it
        for slot in slots:
            actorlib.kill(slot.actor)

    def __enter__(self) -> Pool:
        self._check_running()
        return self

    def __exit__(self, *exc: object) -> None:
        self.terminate()


def _connect(processes: int | None, address: str | None) -> int:
    """Initialize actorlib if needed; the number of processes, checked against the cluster's CPUs."""
    if processes is not None and (not isinstance(processes, int) or isinstance(processes, bool)):
        raise TypeError(f"processes must be an int or None, got {processes!r}")
    if processes is not None and processes < 1:
        raise ValueError("Processes in the pool must be >0.")
    if not actorlib.is_initialized():
        if address is not None or os.environ.get(_ADDRESS_ENV):
            actorlib.init(address=address)
        else:
            actorlib.init(num_cpus=processes)
    cpus = int(actorlib.cluster_resources().get("CPU", 0))
    if processes is None:
        processes = max(1, cpus)
    if processes > cpus:
        raise ValueError(f"Tried to start a pool with {processes} processes on an existing cluster, but there are only {cpus} CPUs in it.")
    return processes


def _check_chunksize(chunksize: Any) -> None:
    if not isinstance(chunksize, int) or chunksize < 1:
        raise ValueError(f"Chunksize must be 1+, not {chunksize!r}")
