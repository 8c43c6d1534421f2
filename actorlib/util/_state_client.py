"""The state API's client side: one StateQuery to the head, and log streams from a node."""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import trio

from .. import _core
from .._driver._discovery import find
from .._state import QueryError
from .._wire import Channel, HeadMessage, LogData, NodeMessage, ReadLog, StateQuery, StateReply, connect

ADDRESS_ENV = "ACTORLIB_ADDRESS"
DEFAULT_TIMEOUT = 30.0


@dataclass(frozen=True)
class Target:
    head: str
    token: str


def target(address: str | None = None) -> Target:
    """Where to send queries: ``address``, else this process's cluster, else $ACTORLIB_ADDRESS or ``auto``.

    Raises ConnectionError naming what is missing (no running cluster, no token).
    """
    if address is None:
        runtime = _core._runtime._current
        if runtime is not None and not runtime.closed and runtime.identity.head_address:
            return Target(runtime.identity.head_address, runtime.identity.token)
        address = os.environ.get(ADDRESS_ENV) or "auto"
    found = find(address)
    return Target(found.head, found.token)


def lone(group: BaseExceptionGroup) -> BaseException:  # type: ignore[type-arg]
    """The one error a nursery wrapped (a failed connect, say), else the group itself."""
    while isinstance(group, BaseExceptionGroup) and len(group.exceptions) == 1:
        group = group.exceptions[0]  # type: ignore[assignment]
    return group


async def ask(where: Target, query: StateQuery, timeout: float = DEFAULT_TIMEOUT) -> bytes:
    """Send one query to the head and return its payload; QueryError if the head refused it."""
    try:
        return await _ask(where, query, timeout)
    except BaseExceptionGroup as group:
        raise lone(group) from None


async def _ask(where: Target, query: StateQuery, timeout: float) -> bytes:
    with trio.fail_after(timeout):
        async with trio.open_nursery() as nursery:
            channel = await connect(nursery, where.head, where.token, HeadMessage, name=f"cli:{os.getpid():08x}")
            try:
                channel.send_nowait(query)
                reply = await channel.receive()
                while not (isinstance(reply, StateReply) and reply.req == query.req):  # skip broadcasts (NodeDied)
                    reply = await channel.receive()
            finally:
                await channel.aclose()
                nursery.cancel_scope.cancel()
    if reply.error:
        raise QueryError(reply.error)
    return reply.payload


def ask_sync(where: Target, query: StateQuery, timeout: float = DEFAULT_TIMEOUT) -> bytes:
    """``ask`` from synchronous code (not from inside a running Trio loop)."""
    try:
        return trio.run(ask, where, query, timeout)
    except trio.TooSlowError:
        raise TimeoutError(f"the head at {where.head} did not answer within {timeout:g}s") from None


async def stream_log(
    where: Target, node_address: str, name: str, *, tail: int = -1, follow: bool = False, out: Any
) -> None:
    """Read log file ``name`` from the node at ``node_address``, calling ``out(bytes)`` per chunk.

    Returns at the file's end (or, with ``follow``, when cancelled). Raises FileNotFoundError
    if the node has no such file, OSError if it cannot be reached.
    """
    try:
        await _stream_log(where, node_address, name, tail, follow, out)
    except BaseExceptionGroup as group:
        raise lone(group) from None


async def _stream_log(where: Target, node_address: str, name: str, tail: int, follow: bool, out: Any) -> None:
    error = ""
    async with trio.open_nursery() as nursery:
        channel: Channel = await connect(nursery, node_address, where.token, NodeMessage, name=f"cli:{os.getpid():08x}")
        try:
            channel.send_nowait(ReadLog(req=1, name=name, tail=tail, follow=follow))
            while True:
                message = await channel.receive()
                if not isinstance(message, LogData):
                    continue
                if message.data:
                    out(message.data)
                if message.end:
                    error = message.error
                    break
        finally:
            with trio.move_on_after(1) as cleanup:
                cleanup.shield = True
                await channel.aclose()
            nursery.cancel_scope.cancel()
    if error:  # raised here, not inside the nursery, so callers see it as itself
        raise FileNotFoundError(error)


def iterate_log(where: Target, node_address: str, name: str, *, tail: int = -1, follow: bool = False) -> Iterator[str]:
    """``stream_log`` as a generator of text chunks (a thread runs the Trio side; closing the
    generator stops it)."""
    chunks: queue.Queue[Any] = queue.Queue(maxsize=64)
    token: list[trio.lowlevel.TrioToken] = []
    scope = trio.CancelScope()
    done = object()

    started = threading.Event()

    async def main() -> None:
        token.append(trio.lowlevel.current_trio_token())
        started.set()
        with scope:
            await stream_log(where, node_address, name, tail=tail, follow=follow, out=put)

    def put(data: bytes) -> None:
        while not scope.cancel_called:
            try:
                chunks.put(data, timeout=0.1)
                return
            except queue.Full:
                continue

    def run() -> None:
        try:
            trio.run(main)
            chunks.put(done)
        except BaseException as exc:  # handed to the consumer, who raises it
            chunks.put(exc)
        finally:
            started.set()

    thread = threading.Thread(target=run, name="actorlib-log", daemon=True)
    thread.start()
    try:
        while (item := chunks.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item.decode(errors="replace")
    finally:
        started.wait()
        if thread.is_alive() and token:
            try:
                trio.from_thread.run_sync(scope.cancel, trio_token=token[0])
            except trio.RunFinishedError:
                pass
            while thread.is_alive():  # drain so its last put() cannot block
                try:
                    chunks.get(timeout=0.1)
                except queue.Empty:
                    pass
            thread.join()
