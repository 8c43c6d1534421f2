"""Channels over real Unix sockets: handshake, bursts, and bad peers closing only their own connection."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import sys
import tempfile
import threading
from collections import deque
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import msgspec
import pytest
import trio
import trio.testing

from actorlib._wire import (
    AuthenticationError,
    CancelTask,
    Channel,
    ConnectionFailed,
    CoreMessage,
    FrameReader,
    GetObject,
    ProtocolError,
    connect,
    serve,
    unix_address,
)
from actorlib._wire import _auth
from actorlib._wire._address import open_listener, open_stream
from actorlib._wire._channel import HANDSHAKE_TIMEOUT
from actorlib._wire._messages import PROTOCOL_VERSION, Auth, Handshake, Hello, Refused, Welcome

TOKEN = "the-cluster-token"


@pytest.fixture
def address() -> Iterator[str]:
    # Not tmp_path: its paths can exceed the 107-byte limit of a Unix socket path.
    directory = tempfile.mkdtemp(prefix="al-", dir="/tmp")
    try:
        yield unix_address(Path(directory) / "s.sock")
    finally:
        shutil.rmtree(directory, ignore_errors=True)


class Echo:
    """A connection handler that echoes every message and records what happened."""

    def __init__(self) -> None:
        self.peers: list[str] = []
        self.received: list[Any] = []
        self.failures: list[BaseException] = []
        self.ended = 0
        self.changed = trio.Event()

    async def __call__(self, channel: Channel) -> None:
        self.peers.append(channel.peer)
        try:
            async for message in channel:
                self.received.append(message)
                channel.send_nowait(message)
                self._changed()
        except Exception as exc:
            self.failures.append(exc)
            raise
        finally:
            self.ended += 1
            self._changed()

    def _changed(self) -> None:
        self.changed.set()
        self.changed = trio.Event()

    async def wait_until(self, predicate: Any) -> None:
        with trio.fail_after(10):
            while not predicate():
                await self.changed.wait()


class Server:
    """A running ``serve()`` and the client channels connected to it (closed at the end)."""

    def __init__(self, nursery: trio.Nursery, address: str) -> None:
        self.nursery = nursery
        self.address = address
        self.clients: list[Channel] = []

    async def connect(self, name: str, token: str = TOKEN) -> Channel:
        channel = await connect(self.nursery, self.address, token, CoreMessage, name=name)
        self.clients.append(channel)
        return channel


@asynccontextmanager
async def serving(address: str, handler: Any) -> AsyncIterator[Server]:
    async with trio.open_nursery() as nursery:
        server = Server(nursery, await nursery.start(serve, address, TOKEN, CoreMessage, handler))
        try:
            yield server
        finally:
            for channel in server.clients:
                await channel.aclose()
            nursery.cancel_scope.cancel()


def frame(payload: bytes) -> bytes:
    return len(payload).to_bytes(4, "big") + payload


class Frames:
    """The frames arriving on a raw stream, one at a time (for peers that speak the protocol by hand)."""

    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self.stream = stream
        self.reader = FrameReader()
        self.ready: deque[bytes] = deque()

    async def next(self) -> bytes | None:
        """The next frame, or None at the end of the stream."""
        with trio.fail_after(60):  # longer than the server's handshake timeout
            while not self.ready:
                data = await self.stream.receive_some()
                if not data:
                    return None
                self.ready.extend(self.reader.feed(data))
        return self.ready.popleft()


async def echo_once(channel: Channel, message: Any) -> Any:
    channel.send_nowait(message)
    with trio.fail_after(10):
        return await channel.receive()


# ---- handshake ------------------------------------------------------------------------


async def test_same_token_handshake_succeeds_and_names_the_peer(address: str) -> None:
    echo = Echo()
    async with serving(address, echo) as server:
        assert server.address == address
        client = await server.connect("driver-7")
        assert await echo_once(client, CancelTask(task_id=b"t1")) == CancelTask(task_id=b"t1")
        assert echo.peers == ["driver-7"]


async def test_wrong_token_raises_and_the_server_keeps_serving(address: str) -> None:
    echo = Echo()
    async with serving(address, echo) as server:
        with pytest.raises(AuthenticationError, match="invalid cluster token"):
            await server.connect("intruder", token="not-the-token")
        client = await server.connect("friend")
        assert await echo_once(client, CancelTask(task_id=b"t")) == CancelTask(task_id=b"t")
        assert echo.peers == ["friend"]  # the intruder never reached the handler


async def test_server_refuses_another_protocol_version(address: str) -> None:
    decoder = msgspec.msgpack.Decoder(Handshake)
    async with serving(address, Echo()) as server:
        stream = await open_stream(server.address)
        async with stream:
            frames = Frames(stream)
            hello = decoder.decode(await frames.next())
            assert isinstance(hello, Hello)
            auth = Auth(
                version=PROTOCOL_VERSION + 1,
                proof=_auth.client_proof(TOKEN, hello.nonce),
                nonce=_auth.nonce(),
                peer="from-the-future",
            )
            await stream.send_all(frame(msgspec.msgpack.encode(auth)))
            refused = decoder.decode(await frames.next())
            assert isinstance(refused, Refused)
            assert "protocol version" in refused.reason
            assert await frames.next() is None


@pytest.mark.parametrize("forgery", ["other-token", "replayed-client-proof"])
async def test_client_refuses_a_server_that_cannot_prove_the_token(forgery: str) -> None:
    client_side, server_side = trio.testing.memory_stream_pair()
    client = Channel(client_side, CoreMessage, peer="fake-server")
    decoder = msgspec.msgpack.Decoder(Handshake)

    async def fake_server() -> None:
        frames = Frames(server_side)
        await server_side.send_all(frame(msgspec.msgpack.encode(Hello(version=PROTOCOL_VERSION, nonce=_auth.nonce()))))
        auth = decoder.decode(await frames.next())
        assert isinstance(auth, Auth)
        if forgery == "other-token":
            proof = _auth.server_proof("other-token", auth.nonce)
        else:
            proof = auth.proof
        await server_side.send_all(frame(msgspec.msgpack.encode(Welcome(proof=proof))))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(fake_server)
        with pytest.raises(AuthenticationError, match="could not prove"):
            await client.handshake_client(TOKEN, "careful-client")


async def test_a_client_that_never_answers_the_challenge_is_dropped(address: str, autojump_clock: Any) -> None:
    echo = Echo()
    async with serving(address, echo) as server:
        silent = await open_stream(server.address)
        async with silent:
            frames = Frames(silent)
            assert await frames.next() is not None  # the Hello
            start = trio.current_time()
            assert await frames.next() is None  # the server hangs up...
            assert trio.current_time() - start >= HANDSHAKE_TIMEOUT - 1  # ...at its (virtual) timeout
        client = await server.connect("next")
        assert await echo_once(client, CancelTask(task_id=b"t")) == CancelTask(task_id=b"t")
        assert echo.peers == ["next"]


async def test_before_the_handshake_a_frame_larger_than_an_auth_is_refused_at_its_header(autojump_clock: Any) -> None:
    near, far = trio.testing.memory_stream_pair()
    server = Channel(near, CoreMessage, peer="stranger")
    await far.send_all((1 << 20).to_bytes(4, "big") + b"x" * 100)  # 1 MiB claimed: far under the 256 MiB limit
    with trio.fail_after(60), pytest.raises(ProtocolError, match="during the handshake.*exceeds the 16384-byte limit"):
        await server.handshake_server(TOKEN)  # at once, not after buffering (or waiting for) the megabyte


async def test_a_client_refuses_an_oversized_hello_at_its_header(autojump_clock: Any) -> None:
    near, far = trio.testing.memory_stream_pair()
    client = Channel(near, CoreMessage, peer="fake-server")
    await far.send_all((1 << 20).to_bytes(4, "big") + b"x" * 100)
    with trio.fail_after(60), pytest.raises(ProtocolError, match="during the handshake"):
        await client.handshake_client(TOKEN, "careful-client")


async def test_after_the_handshake_large_frames_are_fine_again(address: str) -> None:
    async with serving(address, Echo()) as server:
        client = await server.connect("bulky")
        big = CancelTask(task_id=b"x" * (1 << 20))
        assert await echo_once(client, big) == big


async def test_connect_to_nobody_raises_connection_failed(address: str) -> None:
    async with trio.open_nursery() as nursery:
        with pytest.raises(ConnectionFailed, match="cannot connect to") as caught:
            await connect(nursery, address, TOKEN, CoreMessage, name="lonely")
    assert caught.value.address == address
    assert isinstance(caught.value, OSError)  # what callers handled before: still handled


async def _raw_peer(address: str, behave: Any, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    """A listener that treats each connection with ``behave(stream)`` (a peer gone wrong)."""
    listener, _ = await open_listener(address)
    async with listener:
        task_status.started()
        stream = await listener.accept()
        async with stream:
            await behave(stream)


async def _close_at_once(stream: trio.SocketStream) -> None:
    pass  # a process that exits before it says hello


async def _close_after_hello(stream: trio.SocketStream) -> None:
    await stream.send_all(frame(msgspec.msgpack.encode(Hello(version=PROTOCOL_VERSION, nonce=_auth.nonce()))))
    await Frames(stream).next()  # the Auth; then it goes away instead of answering


async def _garbage(stream: trio.SocketStream) -> None:
    await stream.send_all(frame(b"\xc1 not msgpack"))
    await trio.sleep_forever()


async def _frozen(stream: trio.SocketStream) -> None:
    await trio.sleep_forever()  # accepted (or in the backlog) but never answers: SIGSTOPped


@pytest.mark.parametrize(
    "behave, cause",
    [(_close_at_once, EOFError), (_close_after_hello, EOFError), (_garbage, ProtocolError), (_frozen, trio.TooSlowError)],
)
async def test_every_way_a_handshake_fails_is_one_connection_failed(
    address: str, autojump_clock: Any, behave: Any, cause: type[BaseException]
) -> None:
    async with trio.open_nursery() as nursery:
        await nursery.start(_raw_peer, address, behave)
        with pytest.raises(ConnectionFailed) as caught:
            await connect(nursery, address, TOKEN, CoreMessage, name="hopeful")
        nursery.cancel_scope.cancel()
    assert isinstance(caught.value.__cause__, cause)
    assert caught.value.address == address and address in str(caught.value)


async def test_a_wrong_token_is_a_connection_failed_too(address: str) -> None:
    async with serving(address, Echo()) as server:
        with pytest.raises(ConnectionFailed) as caught:
            await server.connect("intruder", token="not-the-token")
    assert isinstance(caught.value, AuthenticationError)


# ---- traffic ------------------------------------------------------------------------------


async def test_a_burst_of_send_nowait_arrives_complete_and_in_order(address: str) -> None:
    n = 5000
    echo = Echo()
    async with serving(address, echo) as server:
        client = await server.connect("bursty")
        for i in range(n):  # no checkpoint in between: all of it queues at once
            client.send_nowait(GetObject(req=i, object_id=i.to_bytes(4, "big")))
        with trio.fail_after(10):
            replies = [await client.receive() for _ in range(n)]
        assert [r.req for r in echo.received] == list(range(n))
        assert [r.req for r in replies] == list(range(n))
        assert all(r.object_id == r.req.to_bytes(4, "big") for r in replies)


async def test_iterating_a_channel_ends_when_the_peer_closes(address: str) -> None:
    echo = Echo()
    async with serving(address, echo) as server:
        client = await server.connect("short-lived")
        await echo_once(client, CancelTask(task_id=b"t"))
        await client.aclose()
        await echo.wait_until(lambda: echo.ended == 1)
        assert echo.failures == []
        assert client.closed
        with pytest.raises(trio.ClosedResourceError):
            client.send_nowait(CancelTask(task_id=b"late"))


async def test_messages_queued_before_aclose_are_delivered(address: str) -> None:
    echo = Echo()
    async with serving(address, echo) as server:
        client = await server.connect("polite")
        client.send_nowait(CancelTask(task_id=b"last words"))
        await client.aclose()
        await echo.wait_until(lambda: echo.ended == 1)
    assert echo.received == [CancelTask(task_id=b"last words")]


# ---- bad peers ------------------------------------------------------------------------------


GARBAGE = {
    "not-msgpack": frame(b"\xc1\xc1\xc1"),
    "a-handshake-message": frame(msgspec.msgpack.encode(Refused(reason="?"))),
    "wrong-typed-field": frame(msgspec.msgpack.encode(["cancel", 42])),
    "oversized-length": b"\xff\xff\xff\xff",
}


@pytest.mark.parametrize("garbage", GARBAGE.values(), ids=GARBAGE.keys())
async def test_garbage_closes_only_that_connection(address: str, garbage: bytes) -> None:
    echo = Echo()
    async with serving(address, echo) as server:
        good = await server.connect("good")
        bad = await server.connect("bad")
        await bad.stream.send_all(garbage)
        with trio.fail_after(10), pytest.raises(EOFError):
            await bad.receive()
        assert [type(f) for f in echo.failures] == [ProtocolError]
        assert await echo_once(good, CancelTask(task_id=b"still here")) == CancelTask(task_id=b"still here")
        late = await server.connect("late")
        assert await echo_once(late, CancelTask(task_id=b"new")) == CancelTask(task_id=b"new")


async def test_garbage_before_the_handshake_is_dropped(address: str) -> None:
    echo = Echo()
    async with serving(address, echo) as server:
        rude = await open_stream(server.address)
        async with rude:
            frames = Frames(rude)
            await rude.send_all(frame(b"\xc1"))
            assert await frames.next() is not None  # the Hello
            assert await frames.next() is None
        client = await server.connect("polite")
        assert await echo_once(client, CancelTask(task_id=b"t")) == CancelTask(task_id=b"t")
        assert echo.peers == ["polite"]


NOT_UTF8 = frame(msgspec.msgpack.encode(["cancel", b"t"]).replace(b"\xa6cancel", b"\xa6\xff\xfe\xfd\xfc\xfb\xfa"))


async def test_a_frame_with_invalid_utf8_closes_only_that_connection(address: str) -> None:
    echo = Echo()
    async with serving(address, echo) as server:
        good = await server.connect("good")
        bad = await server.connect("bad")
        await bad.stream.send_all(NOT_UTF8)
        with trio.fail_after(10), pytest.raises(EOFError):
            await bad.receive()
        assert await echo_once(good, CancelTask(task_id=b"ok")) == CancelTask(task_id=b"ok")


async def test_a_frame_with_invalid_utf8_is_a_protocol_error() -> None:
    near, far = trio.testing.memory_stream_pair()
    channel = Channel(near, CoreMessage, peer="far")
    await far.send_all(NOT_UTF8)
    with pytest.raises(ProtocolError):
        await channel.receive()


async def test_serve_removes_its_socket_file_when_it_stops(address: str) -> None:
    async with serving(address, Echo()):
        assert os.path.exists(address.removeprefix("unix:"))
    assert not os.path.exists(address.removeprefix("unix:"))


# ---- a peer that stops reading ------------------------------------------------------------


async def test_a_peer_that_stops_reading_is_cut_off_not_buffered_for_ever(address: str) -> None:
    async def never_reads(channel: Channel) -> None:
        await trio.sleep_forever()

    async with serving(address, never_reads) as server:
        client = await server.connect("chatty")
        client.max_queued = 1 << 20
        message = CancelTask(task_id=b"x" * 50_000)
        most = 0
        with trio.fail_after(30):
            while not client.closed:
                try:
                    client.send_nowait(message)
                except trio.ClosedResourceError:
                    break
                most = max(most, client.queued)
                await trio.sleep(0)  # the sender writes what the socket takes
            await client.closed_event.wait()
        assert most <= client.max_queued
        assert isinstance(client.error, BufferError) and "unread" in str(client.error)
        with pytest.raises(trio.ClosedResourceError):
            client.send_nowait(message)


async def test_threads_sending_while_the_channel_closes_never_write_into_a_reused_fd(address: str) -> None:
    async def reads(channel: Channel) -> None:
        async for _ in channel:
            pass

    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # interleave the threads as finely as the interpreter allows
    try:
        async with serving(address, reads) as server:
            for _ in range(60):
                client = await server.connect("threads")
                stop = threading.Event()

                def send() -> None:
                    while not stop.is_set():
                        try:
                            client.send_threadsafe(CancelTask(task_id=b"x"))
                        except (trio.ClosedResourceError, trio.RunFinishedError):
                            return

                threads = [threading.Thread(target=send) for _ in range(4)]
                for thread in threads:
                    thread.start()
                await trio.sleep(0.001)
                await client.aclose()
                mine, other = socket.socketpair()  # takes the lowest free fds: often the one just closed
                try:
                    stop.set()
                    await trio.to_thread.run_sync(lambda: [thread.join() for thread in threads])
                    other.setblocking(False)
                    with pytest.raises(BlockingIOError):
                        other.recv(1 << 16)  # nothing a sender wrote after the close landed here
                finally:
                    mine.close()
                    other.close()
    finally:
        sys.setswitchinterval(previous)


async def test_strangers_connecting_in_a_loop_get_a_bounded_number_of_warnings(
    address: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from actorlib._wire import _channel
    from actorlib._wire._throttle import Throttle

    monkeypatch.setattr(_channel, "CONNECTIONS", Throttle(burst=3, period=3600.0))
    echo = Echo()
    with caplog.at_level(logging.WARNING, logger="actorlib.wire"):
        async with serving(address, echo) as server:
            for _ in range(20):
                rude = await open_stream(server.address)
                async with rude:
                    frames = Frames(rude)
                    await rude.send_all(frame(b"\xc1"))
                    assert await frames.next() is not None  # the Hello
                    assert await frames.next() is None  # then it hung up
            client = await server.connect("polite")
            assert await echo_once(client, CancelTask(task_id=b"t")) == CancelTask(task_id=b"t")
    refused = [m for m in caplog.messages if m.startswith("closing connection")]
    assert len(refused) == 3, caplog.messages
