"""Reading a job's log where it is written: from its node's service (ReadLog), all of it or as it grows.

The job manager never keeps a copy: each read goes to the node that runs (or
ran) the job, over one authenticated connection per reader.
"""

from __future__ import annotations

import codecs
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import NamedTuple

import trio

from .._wire import Channel, LogData, NodeMessage, ReadLog, connect

FOLLOW_POLL = 0.1  # seconds between looks at a growing log file
READ_TIMEOUT = 10.0  # seconds a node gets to answer a read (a frozen one does not)
Read = Callable[[int], Awaitable[bytes]]


class Where(NamedTuple):
    """Where a job's log is now: its node's service address ("" if the node is gone), the node
    named for people, and whether the job has finished."""

    address: str
    node: str
    finished: bool


class NodeLogReader:
    """Reads one log file of one node, from any offset, over a connection opened on first use.

    The connection's tasks run in ``nursery``; close it with :meth:`aclose`.
    """

    def __init__(self, nursery: trio.Nursery, address: str, token: str, name: str) -> None:
        self.nursery = nursery
        self.address = address
        self.token = token
        self.name = name
        self._channel: Channel | None = None
        self._reqs = itertools.count(1)

    async def read(self, offset: int) -> bytes | None:
        """Everything from ``offset`` to the file's current end; None if the node has no such file.

        Raises OSError (or ConnectionError, EOFError) if the node cannot be reached.
        """
        if self._channel is None:
            self._channel = await connect(self.nursery, self.address, self.token, NodeMessage, name="job-logs:head")
        req = next(self._reqs)
        self._channel.send_nowait(ReadLog(req=req, name=self.name, offset=offset))
        chunks = []
        while True:
            message = await self._channel.receive()
            if not isinstance(message, LogData) or message.req != req:
                continue
            chunks.append(message.data)
            if message.end:
                return None if message.error else b"".join(chunks)

    async def aclose(self) -> None:
        if self._channel is not None:
            with trio.move_on_after(1) as cleanup:
                cleanup.shield = True
                await self._channel.aclose()


@asynccontextmanager
async def open_log(where: Callable[[], Where | None], token: str, name: str) -> AsyncIterator[Read]:
    """``read(offset)`` of log file ``name`` from the node ``where()`` says has it (asked at each
    read: a followed job may be placed meanwhile). A finished job whose node is gone reads as a
    note saying so; a deleted one (``where()`` None) as nothing."""
    readers: dict[str, NodeLogReader] = {}

    async def read(offset: int) -> bytes:
        place = where()
        if place is None:
            return b""
        if place.address:
            reader = readers.get(place.address)
            if reader is None:
                reader = readers[place.address] = NodeLogReader(nursery, place.address, token, name)
            with trio.move_on_after(READ_TIMEOUT):
                try:
                    return await reader.read(offset) or b""
                except (OSError, EOFError, trio.ClosedResourceError):
                    readers.pop(place.address, None)  # the node died while we read
        if place.finished and offset == 0:
            return f"(This log, {name}, stays on node {place.node}, which is not running: it cannot be read.)\n".encode()
        return b""

    async with trio.open_nursery() as nursery:
        try:
            yield read
        finally:
            for reader in readers.values():
                await reader.aclose()
            nursery.cancel_scope.cancel()


async def read_all(read: Read) -> str:
    """The whole log, as text: ``read(offset)`` gives the bytes from ``offset`` (empty at the end)."""
    chunks = []
    offset = 0
    while chunk := await read(offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks).decode("utf-8", errors="replace")


async def follow(
    read: Read, send: Callable[[str], Awaitable[object]], finished: Callable[[], bool], wake: Callable[[], trio.Event]
) -> None:
    """``send`` the log's text as it grows, from the start, until ``finished()`` and all is read.

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
            await send(text)
        if chunk:
            continue
        if done:
            return
        with trio.move_on_after(FOLLOW_POLL):
            await wake().wait()
