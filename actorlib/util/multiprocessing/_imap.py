"""IMapIterator: results of ``imap`` / ``imap_unordered``, fed chunk by chunk as processes free up."""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from multiprocessing import TimeoutError
from typing import Any

import actorlib
from actorlib import ObjectRef

from ._outcome import Failure, unwrap

SubmitChunk = Callable[[int, list[tuple[Any, ...]]], ObjectRef]


class IMapIterator:
    """Iterates over results in input order (``ordered``) or in completion order.

    Input is read lazily: each process holds one chunk at a time, and gets
    the next when the iterator, being consumed, sees its chunk finish (so a
    slow chunk holds up no other). Use a larger ``chunksize`` for many
    small calls. A call's exception is raised at its place in
    the iteration; iterating further goes on with the next result.
    """

    def __init__(self, submit: SubmitChunk, processes: int, items: Iterable[tuple[Any, ...]], chunksize: int, *, ordered: bool) -> None:
        self._submit = submit
        self._ordered = ordered
        self._chunks = _chunked(iter(items), chunksize)
        self._inflight: dict[ObjectRef, tuple[int, int, int]] = {}  # ref -> (chunk index, process, size)
        self._finished: dict[int, list[Any]] = {}
        self._finish_order: deque[int] = deque()
        self._next_chunk = 0
        self._sent = 0
        self._buffer: deque[Any] = deque()
        for process in range(processes):
            self._send_next(process)

    def __iter__(self) -> IMapIterator:
        return self

    def __next__(self) -> Any:
        return self.next()

    def next(self, timeout: float | None = None) -> Any:
        """The next result; raises multiprocessing.TimeoutError if none is ready within ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._buffer:
            chunk = self._next_finished()
            if chunk is not None:
                self._buffer.extend(chunk)
                continue
            if not self._inflight:
                raise StopIteration
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            self._collect(remaining)
        return unwrap(self._buffer.popleft())


    def _next_finished(self) -> list[Any] | None:
        if self._ordered:
            chunk = self._finished.pop(self._next_chunk, None)
            if chunk is not None:
                self._next_chunk += 1
            return chunk
        if self._finish_order:
            return self._finished.pop(self._finish_order.popleft())
        return None

    def _collect(self, timeout: float | None) -> None:
        ready, _ = actorlib.wait(list(self._inflight), num_returns=1, timeout=timeout)
        if not ready:
            raise TimeoutError
        for ref in ready:
            index, process, size = self._inflight.pop(ref)
            try:
                self._finished[index] = actorlib.get(ref)
            except Exception as exc:  # the chunk as a whole failed (its process died, ...)
                self._finished[index] = [Failure(exc)] * size
            self._finish_order.append(index)
            self._send_next(process)

    def _send_next(self, process: int) -> None:
        chunk = next(self._chunks, None)
        if chunk is None:
            return
        ref = self._submit(process, chunk)
        self._inflight[ref] = (self._sent, process, len(chunk))
        self._sent += 1


def _chunked(items: Iterator[tuple[Any, ...]], size: int) -> Iterator[list[tuple[Any, ...]]]:
    while chunk := list(itertools.islice(items, size)):
        yield chunk
