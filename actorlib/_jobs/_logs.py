"""Following a job's log as it grows, wherever it is read from (its node's file, through that node)."""

from __future__ import annotations

import codecs
from collections.abc import AsyncIterator, Awaitable, Callable

import trio

FOLLOW_POLL = 0.1  # seconds between looks at a growing log file


async def read_all(read: Callable[[int], Awaitable[bytes]]) -> str:
    """The whole log: ``read(offset)`` gives the bytes from ``offset`` (empty at the end)."""
    chunks = []
    offset = 0
    while chunk := await read(offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks).decode("utf-8", errors="replace")


async def follow(
    read: Callable[[int], Awaitable[bytes]], finished: Callable[[], bool], wake: Callable[[], trio.Event]
) -> AsyncIterator[str]:
    """Yield the log's text as it grows, from the start, until ``finished()`` and all is read.

    ``wake()`` gives an event set when the job ends (so the last lines come at once).
    """
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    offset = 0
    while True:
        done = finished()  # before reading: what was written before the end is then read
        chunk = await read(offset)
        offset += len(chunk)
        text = decoder.decode(chunk, final=done and not chunk)
        if text:
            yield text
        if chunk:
            continue
        if done:
            return
        with trio.move_on_after(FOLLOW_POLL):
            await wake().wait()
