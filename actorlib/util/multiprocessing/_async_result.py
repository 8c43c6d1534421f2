"""AsyncResult: the pending result of ``apply_async`` / ``map_async`` / ``starmap_async``."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from functools import partial
from multiprocessing import TimeoutError
from typing import Any

from actorlib import ObjectRef

from ._outcome import Failure, first_failure, unwrap


class AsyncResult:
    """The result of calls submitted as chunks; ready once every chunk has finished.

    Made by the Pool, not by users. ``callback`` (given the result, if every
    call succeeded) or ``error_callback`` (given the first exception, in
    input order) runs on a thread of its own before the result becomes ready,
    unless the pool was terminated by then (``abandoned``), as in ``multiprocessing``.
    """

    def __init__(
        self,
        chunks: list[tuple[ObjectRef, int]],
        *,
        single: bool = False,
        callback: Callable[[Any], object] | None = None,
        error_callback: Callable[[BaseException], object] | None = None,
        abandoned: threading.Event | None = None,
    ) -> None:
        self._single = single
        self._abandoned = abandoned
        self._outcomes: list[list[Any] | None] = [None] * len(chunks)
        self._remaining = len(chunks)
        self._lock = threading.Lock()
        self._settled = threading.Event()
        self._ready = self._settled
        if callback is not None or error_callback is not None:
            self._ready = threading.Event()
            thread = threading.Thread(
                target=self._deliver, args=(callback, error_callback), name="actorlib-pool-callback", daemon=True
            )
            thread.start()
        if not chunks:
            self._settled.set()
        for index, (ref, size) in enumerate(chunks):
            ref.future().add_done_callback(partial(self._settle, index, size))

    def _settle(self, index: int, size: int, future: Future[list[Any]]) -> None:
        # On the runtime's thread: record, never run user code here.
        try:
            outcomes = future.result()
        except BaseException as exc:  # the chunk as a whole failed (its process died, ...)
            outcomes = [Failure(exc)] * size
        with self._lock:
            self._outcomes[index] = outcomes
            self._remaining -= 1
            done = self._remaining == 0
        if done:
            self._settled.set()

    def _deliver(self, callback: Callable[[Any], object] | None, error_callback: Callable[[BaseException], object] | None) -> None:
        self._settled.wait()
        try:
            if self._abandoned is not None and self._abandoned.is_set():
                return  # terminated: no callback runs, as in multiprocessing (joblib has moved on to a new pool)
            failure = first_failure(self._flat())
            if failure is None and callback is not None:
                callback(self._value())
            elif failure is not None and error_callback is not None:
                error_callback(failure.exc)
        finally:
            self._ready.set()

    def _flat(self) -> list[Any]:
        return [outcome for chunk in self._outcomes for outcome in chunk or ()]

    def _value(self) -> Any:
        values = [unwrap(outcome) for outcome in self._flat()]
        return values[0] if self._single else values

    def get(self, timeout: float | None = None) -> Any:
        """The result (a list, or one value for apply_async); blocks up to ``timeout`` seconds.

        Raises multiprocessing.TimeoutError if not ready in time, or the first
        call's exception (in input order) if any call raised.
        """
        if not self._ready.wait(timeout):
            raise TimeoutError
        return self._value()

    def wait(self, timeout: float | None = None) -> None:
        """Block until the result is ready or ``timeout`` seconds pass (no error on timeout)."""
        self._ready.wait(timeout)

    def ready(self) -> bool:
        """Whether every call has finished."""
        return self._ready.is_set()

    def successful(self) -> bool:
        """Whether every call succeeded. Raises ValueError if the result is not ready yet."""
        if not self.ready():
            raise ValueError(f"{self!r} not ready")
        return first_failure(self._flat()) is None
