"""ActorlibExecutor: a ``concurrent.futures.Executor`` whose calls run as actorlib tasks."""

from __future__ import annotations

import concurrent.futures
import itertools
import math
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import Any, ParamSpec, TypeVar

import actorlib

P = ParamSpec("P")
T = TypeVar("T")


@actorlib.remote
def _call(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return fn(*args, **kwargs)


def _call_chunk(fn: Callable[..., Any], chunk: list[tuple[Any, ...]]) -> list[Any]:
    return [fn(*args) for args in chunk]


class _Work:
    __slots__ = ("future", "fn", "args", "kwargs")

    def __init__(self, future: concurrent.futures.Future[Any], fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.future = future
        self.fn = fn
        self.args = args
        self.kwargs = kwargs


class ActorlibExecutor(concurrent.futures.Executor):
    """Runs each submitted call as a task in the cluster (also ``RayExecutor``, ``Executor``).

    ``submit`` returns a real ``concurrent.futures.Future``, so ``wait``,
    ``as_completed`` and ``add_done_callback`` work as usual; a call's
    exception is the future's exception (an instance of the original class).
    Futures are completed, and their done-callbacks run, on a thread of the
    executor — never on actorlib's runtime thread — so callbacks may use
    actorlib and submit more work. Uses the current runtime, or starts one.

    Args:
        max_workers: the most calls running at once; the rest wait in the
            executor (cancellable). None: no limit beyond the cluster's
            resources.
        address: the cluster to connect to if actorlib is not initialized.
        shutdown_runtime: whether ``shutdown()`` also shuts actorlib down;
            default: only if this executor started it. ``shutdown_ray`` is
            Ray's name for it.
        **task_options: options for the tasks, as for ``f.options(...)``
            (``num_cpus``, ``num_gpus``, ``resources``, ``max_retries``, ...).
    """

    def __init__(
        self,
        max_workers: int | None = None,
        *,
        address: str | None = None,
        shutdown_runtime: bool | None = None,
        shutdown_ray: bool | None = None,
        **task_options: Any,
    ) -> None:
        if max_workers is not None and (not isinstance(max_workers, int) or max_workers < 1):
            raise ValueError(f"max_workers must be an int > 0 or None, got {max_workers!r}")
        self._task = _call.options(**task_options)  # validates them
        started = not actorlib.is_initialized()
        if started:
            actorlib.init(address=address)
        choice = shutdown_runtime if shutdown_runtime is not None else shutdown_ray
        self._shutdown_runtime = started if choice is None else choice
        self._limit = math.inf if max_workers is None else max_workers
        self._cond = threading.Condition()
        self._running = 0
        self._queued: deque[_Work] = deque()
        self._results: deque[tuple[concurrent.futures.Future[Any], concurrent.futures.Future[Any]]] = deque()
        self._outstanding: set[concurrent.futures.Future[Any]] = set()
        self._thread: threading.Thread | None = None
        self._shut = False

    # ---- submitting --------------------------------------------------------------------

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> concurrent.futures.Future[T]:
        """Start ``fn(*args, **kwargs)`` as a task (or queue it under ``max_workers``); never blocks.

        Raises RuntimeError after shutdown(). Errors sending the call (an
        unpicklable argument, ...) become the future's exception.
        """
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        work = _Work(future, fn, args, kwargs)
        with self._cond:
            if self._shut:
                raise RuntimeError("cannot schedule new futures after shutdown")
            self._outstanding.add(future)
            self._ensure_thread()
            start_now = self._running < self._limit and not self._queued
            if start_now:
                self._running += 1
            else:
                self._queued.append(work)
                self._cond.notify_all()
        if start_now:
            self._launch(work)
        return future

    def map(
        self, fn: Callable[..., T], *iterables: Iterable[Any], timeout: float | None = None, chunksize: int = 1
    ) -> Iterator[T]:
        """``map(fn, *iterables)`` with every call submitted now; results in input order.

        ``chunksize`` calls run as one task. The iterator raises TimeoutError
        if a result is not ready ``timeout`` seconds after this call, and a
        call's exception at its position.
        """
        if chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
        if chunksize == 1:
            return super().map(fn, *iterables, timeout=timeout)
        chunks = _batched(zip(*iterables), chunksize)
        results = super().map(partial(_call_chunk, fn), chunks, timeout=timeout)
        return itertools.chain.from_iterable(results)

    def _launch(self, work: _Work) -> None:
        if not work.future.set_running_or_notify_cancel():
            self._release(work.future)
            return
        try:
            ref = self._task.remote(work.fn, work.args, work.kwargs)
        except Exception as exc:
            work.future.set_exception(exc)
            self._release(work.future)
            return
        ref.future().add_done_callback(partial(self._arrived, work.future))

    def _arrived(self, future: concurrent.futures.Future[Any], ref_future: concurrent.futures.Future[Any]) -> None:
        # On the runtime's thread: hand over to the executor's thread, run nothing here.
        with self._cond:
            self._results.append((future, ref_future))
            self._cond.notify_all()

    def _release(self, future: concurrent.futures.Future[Any]) -> None:
        with self._cond:
            self._running -= 1
            self._outstanding.discard(future)
            self._cond.notify_all()

    # ---- the executor's thread -----------------------------------------------------------

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._serve, name="actorlib-executor", daemon=True)
            self._thread.start()

    def _serve(self) -> None:
        """Complete futures and start queued work until shut down with nothing outstanding."""
        while True:
            with self._cond:
                while not self._results and not self._can_start() and not (self._shut and not self._outstanding):
                    self._cond.wait()
                if self._results:
                    future, ref_future = self._results.popleft()
                    work = None
                elif self._can_start():
                    work = self._queued.popleft()
                    self._running += 1
                else:
                    return
            if work is not None:
                self._launch(work)
            else:
                _copy(ref_future, future)
                self._release(future)

    def _can_start(self) -> bool:
        return bool(self._queued) and self._running < self._limit

    # ---- shutting down -------------------------------------------------------------------

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Accept no more work. Idempotent.

        ``cancel_futures`` cancels the calls still queued under ``max_workers``
        (running ones go on). ``wait`` blocks until every other call has
        finished. Then actorlib is shut down if this executor started it (or
        ``shutdown_runtime=True``).
        """
        with self._cond:
            self._shut = True
            cancelled = list(self._queued) if cancel_futures else []
            if cancel_futures:
                self._queued.clear()
                self._outstanding.difference_update(work.future for work in cancelled)
            self._cond.notify_all()
        for work in cancelled:
            work.future.cancel()
        thread = self._thread
        if wait and thread is not None and thread is not threading.current_thread():
            thread.join()
        if self._shutdown_runtime:
            self._shutdown_runtime = False
            actorlib.shutdown()


def _copy(source: concurrent.futures.Future[Any], target: concurrent.futures.Future[Any]) -> None:
    exc = source.exception()
    if exc is not None:
        target.set_exception(exc)
    else:
        target.set_result(source.result())


def _batched(items: Iterator[tuple[Any, ...]], size: int) -> Iterator[list[tuple[Any, ...]]]:
    while chunk := list(itertools.islice(items, size)):
        yield chunk
