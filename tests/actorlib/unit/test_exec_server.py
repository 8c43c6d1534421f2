"""A worker's exec socket (blocking I/O on its main thread): strangers never stall the callers it serves."""

from __future__ import annotations

import select
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
import trio

from actorlib._wire import CancelTask, CoreMessage, FrameReader, connect, unix_address
from actorlib._worker._exec import ExecServer

TOKEN = "the-cluster-token"
STOP = CancelTask(task_id=b"stop")


class Running:
    """An ExecServer on its own thread, echoing every message; STOP ends it."""

    def __init__(self, address: str, handshake_timeout: float) -> None:
        self.server = ExecServer(address, TOKEN, self._handle, handshake_timeout=handshake_timeout)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _handle(self, message: Any, channel: Any) -> bool:
        channel.send_threadsafe(message)
        return message != STOP

    def stop(self) -> None:
        async def send_stop() -> None:
            await echo(self.server.address, STOP)

        trio.run(send_stop)
        self.thread.join(10)
        assert not self.thread.is_alive()
        self.server.close()


@pytest.fixture
def exec_server() -> Iterator[Any]:
    directory = tempfile.mkdtemp(prefix="al-", dir="/tmp")
    running: list[Running] = []

    def start(handshake_timeout: float = 3600.0) -> Running:
        running.append(Running(unix_address(Path(directory) / "x.sock"), handshake_timeout))
        return running[-1]

    try:
        yield start
    finally:
        for server in running:
            server.stop()
        shutil.rmtree(directory, ignore_errors=True)


async def echo(address: str, message: Any) -> Any:
    async with trio.open_nursery() as nursery:
        channel = await connect(nursery, address, TOKEN, CoreMessage, name="caller")
        channel.send_nowait(message)
        with trio.fail_after(30):
            reply = await channel.receive()
        await channel.aclose()
        return reply


def stranger(address: str) -> socket.socket:
    """A raw connection that has read the server's Hello (and says nothing yet)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(address.removeprefix("unix:"))
    sock.settimeout(30)
    reader = FrameReader()
    while not reader.feed(sock.recv(4096)):
        pass
    return sock


def still_open(sock: socket.socket) -> bool:
    """Whether the server has not closed ``sock`` (nothing to read: no EOF, no reply)."""
    readable, _, _ = select.select([sock], [], [], 0)
    return not readable


def closed_by_server(sock: socket.socket) -> bool:
    try:
        while data := sock.recv(65536):
            del data
        return True
    except ConnectionResetError:
        return True


def test_a_silent_stranger_does_not_stall_the_callers_behind_it(exec_server) -> None:
    running = exec_server()
    with stranger(running.server.address) as silent:
        # Served at once, while the stranger still holds its half-open handshake (a blocking
        # handshake on the main thread would serve nobody until the stranger timed out).
        assert trio.run(echo, running.server.address, CancelTask(task_id=b"t")) == CancelTask(task_id=b"t")
        assert still_open(silent)


def test_a_stranger_dribbling_its_auth_byte_by_byte_does_not_stall_others(exec_server) -> None:
    running = exec_server()
    auth = msgspec.msgpack.encode(["auth", 1, b"p" * 32, b"n" * 32, "slow"])
    framed = len(auth).to_bytes(4, "big") + auth
    with stranger(running.server.address) as slow:
        for i, byte in enumerate(framed[:-1]):
            slow.send(bytes([byte]))
            if i % 20 == 0:
                assert trio.run(echo, running.server.address, CancelTask(task_id=b"%d" % i)) == CancelTask(task_id=b"%d" % i)
        assert still_open(slow)
        slow.send(framed[-1:])  # complete, but with a wrong proof: refused and closed
        assert closed_by_server(slow)


def test_a_stranger_is_dropped_at_its_handshake_deadline(exec_server) -> None:
    running = exec_server(handshake_timeout=0.2)
    with stranger(running.server.address) as silent:
        assert closed_by_server(silent)  # the server closes it by itself (else recv times out after 30 s)
    assert trio.run(echo, running.server.address, CancelTask(task_id=b"t")) == CancelTask(task_id=b"t")


def test_an_oversized_frame_before_the_handshake_is_refused_at_its_header(exec_server) -> None:
    running = exec_server()  # an hour to finish the handshake: a close now is the size check's
    with stranger(running.server.address) as rude:
        rude.sendall((1 << 20).to_bytes(4, "big") + b"x" * 100)  # a 1 MiB "Auth", far under the 256 MiB frame limit
        assert closed_by_server(rude)
    assert trio.run(echo, running.server.address, CancelTask(task_id=b"t")) == CancelTask(task_id=b"t")


def test_garbage_after_the_handshake_closes_only_that_connection(exec_server) -> None:
    running = exec_server()

    async def scenario() -> None:
        async with trio.open_nursery() as nursery:
            good = await connect(nursery, running.server.address, TOKEN, CoreMessage, name="good")
            bad = await connect(nursery, running.server.address, TOKEN, CoreMessage, name="bad")
            await bad.stream.send_all(b"\x00\x00\x00\x03\xc1\xc1\xc1")
            with trio.fail_after(30), pytest.raises(EOFError):
                await bad.receive()
            good.send_nowait(CancelTask(task_id=b"ok"))
            with trio.fail_after(30):
                assert await good.receive() == CancelTask(task_id=b"ok")
            await good.aclose()
            await bad.aclose()

    trio.run(scenario)
