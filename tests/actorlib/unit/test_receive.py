"""Receiving through a scratch buffer: the same bytes as ``receive_some``/``recv``, without a
large allocation per call (which fragmented long-lived processes' C heaps: see _receive.py)."""

from __future__ import annotations

import os
import socket
import tracemalloc
from collections.abc import Iterator

import msgspec
import pytest
import trio
import trio.testing

from actorlib._wire import Channel, CoreMessage, GetObject
from actorlib._wire._blocking import BlockingChannel
from actorlib._wire._receive import SCRATCH_BYTES, read_small_file, receive_into, receive_some, recv, recv_fds, recv_into

LARGE = 64 * 1024  # far below the 256 KiB a call may return: what each call allocated before


def frame(message: object) -> bytes:
    payload = msgspec.msgpack.encode(message)
    return len(payload).to_bytes(4, "big") + payload


@pytest.fixture
def traced() -> Iterator[None]:
    tracemalloc.start()
    try:
        yield
    finally:
        tracemalloc.stop()


def peak_of_the_calls() -> int:
    """Bytes allocated at the peak since the last reset, beyond what is allocated now."""
    current, peak = tracemalloc.get_traced_memory()
    return peak - current


async def test_a_channel_receiving_small_messages_allocates_no_large_buffer(traced: None) -> None:
    ours, theirs = trio.socket.socketpair()
    channel = Channel(trio.SocketStream(ours), CoreMessage, peer="test")
    async with trio.SocketStream(theirs) as peer, channel.stream:
        await peer.send_all(frame(GetObject(req=0, object_id=b"warm")))
        assert (await channel.receive()).req == 0
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        for i in range(1, 200):
            await peer.send_all(frame(GetObject(req=i, object_id=i.to_bytes(4, "big"))))
            message = await channel.receive()
            assert (message.req, message.object_id) == (i, i.to_bytes(4, "big"))
        peak = tracemalloc.get_traced_memory()[1] - before
    assert peak < LARGE, f"receiving 199 small messages allocated {peak} bytes at once"


async def test_a_pipe_reads_the_same_bytes_without_a_large_buffer(traced: None) -> None:
    read, write = os.pipe()
    async with trio.lowlevel.FdStream(read) as stream:
        chunks = [b"x" * n for n in (1, 100, 511, 513, 4000)]
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        for chunk in chunks:
            os.write(write, chunk)
            assert await receive_some(stream, 65536) == chunk
        peak = tracemalloc.get_traced_memory()[1] - before
        os.close(write)
        assert await receive_some(stream, 65536) == b""
    assert peak < LARGE, peak


async def test_one_call_returns_at_most_max_bytes_and_at_most_the_scratch_buffer() -> None:
    ours, theirs = trio.socket.socketpair()
    async with trio.SocketStream(ours) as stream, trio.SocketStream(theirs) as peer:
        data = os.urandom(SCRATCH_BYTES + 1000)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(peer.send_all, data)
            assert await receive_some(stream, 10) == data[:10]
            got = b""
            while len(got) < len(data) - 10:
                chunk = await receive_some(stream, 2 * SCRATCH_BYTES)
                assert 0 < len(chunk) <= SCRATCH_BYTES
                got += chunk
        assert got == data[10:]


async def test_a_receive_waiting_when_the_stream_is_closed_raises_closed_resource_error() -> None:
    ours, theirs = trio.socket.socketpair()
    stream = trio.SocketStream(ours)
    with theirs:

        async def close_soon() -> None:
            await trio.testing.wait_all_tasks_blocked()
            await stream.aclose()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(close_soon)
            with pytest.raises(trio.ClosedResourceError):
                await receive_some(stream, 100)
        with pytest.raises(trio.ClosedResourceError):
            await receive_some(stream, 100)  # and once closed


async def test_a_cancelled_receive_loses_no_bytes() -> None:
    ours, theirs = trio.socket.socketpair()
    async with trio.SocketStream(ours) as stream, trio.SocketStream(theirs) as peer:
        with trio.move_on_after(0.01) as scope:
            await receive_some(stream, 100)  # nothing sent yet: waits, then is cancelled
        assert scope.cancelled_caught
        await peer.send_all(b"after")
        assert await receive_some(stream, 100) == b"after"


async def test_other_streams_are_read_as_they_read_themselves() -> None:
    send, receive = trio.testing.memory_stream_pair()
    await send.send_all(b"in memory")
    assert await receive_some(receive, 100) == b"in memory"
    with pytest.raises(ValueError, match="at least 1"):
        await receive_some(receive, 0)


def test_a_blocking_channel_receives_small_messages_without_a_large_buffer(traced: None) -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        channel = BlockingChannel(ours, CoreMessage, peer="test")
        theirs.sendall(frame(GetObject(req=0, object_id=b"warm")))
        assert [m.req for m in channel.receive_available()] == [0]
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        for i in range(1, 100):
            theirs.sendall(frame(GetObject(req=i, object_id=b"o")))
            assert [m.req for m in channel.receive_available()] == [i]
        peak = tracemalloc.get_traced_memory()[1] - before
        theirs.sendall(b"tail")
        assert recv(ours, 100) == b"tail"
    assert peak < LARGE, peak


async def test_a_burst_of_frames_costs_the_frames_and_no_copies_of_the_burst(traced: None) -> None:
    """Regression: a burst read at once was copied out of the scratch buffer, appended to the
    frame reader's buffer, then sliced and copied per frame: three short-lived blocks the size
    of the burst (100 KB a round in the soak's head) besides the frames themselves."""
    ours, theirs = trio.socket.socketpair()
    channel = Channel(trio.SocketStream(ours), CoreMessage, peer="test")
    burst = b"".join(frame(GetObject(req=i, object_id=bytes(190))) for i in range(500))
    async with trio.SocketStream(theirs) as peer, channel.stream:
        await peer.send_all(frame(GetObject(req=0, object_id=b"warm")))
        assert (await channel.receive()).req == 0
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        await peer.send_all(burst)
        assert [(await channel.receive()).req for _ in range(500)] == list(range(500))
        peak = tracemalloc.get_traced_memory()[1] - before
    assert peak < 1.5 * len(burst), f"receiving a {len(burst)}-byte burst allocated {peak} bytes at once"


async def test_receive_into_hands_over_what_arrived_and_none_at_the_end() -> None:
    ours, theirs = trio.socket.socketpair()
    async with trio.SocketStream(ours) as stream, trio.SocketStream(theirs) as peer:
        await peer.send_all(b"hello")
        assert await receive_into(stream, 100, bytes) == b"hello"
        await peer.send_eof()
        assert await receive_into(stream, 100, bytes) is None
    send, receive = trio.testing.memory_stream_pair()
    await send.send_all(b"in memory")
    assert await receive_into(receive, 100, bytes) == b"in memory"


def test_recv_into_and_recv_fds_read_like_the_socket_module() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        theirs.sendall(b"plain")
        assert recv_into(ours, 100, bytes) == b"plain"
        read, write = os.pipe()
        try:
            socket.send_fds(theirs, [b"with fds"], [read, write])
            data, fds, flags = recv_fds(ours, 100, 4)
            assert (data, len(fds), flags) == (b"with fds", 2, 0)
            os.write(fds[1], b"x")
            assert os.read(fds[0], 1) == b"x"  # the same pipe, through the received descriptors
            for fd in fds:
                os.close(fd)
        finally:
            os.close(read)
            os.close(write)
        theirs.close()
        assert recv_into(ours, 100, bytes) is None


def test_a_small_file_is_read_whole_and_a_large_one_is_refused(tmp_path) -> None:
    small = tmp_path / "small"
    small.write_bytes(b"MemTotal: 1 kB\n" * 100)
    assert read_small_file(small) == small.read_bytes()
    assert read_small_file("/proc/self/status").startswith(b"Name:")
    large = tmp_path / "large"
    large.write_bytes(bytes(SCRATCH_BYTES + 1))
    with pytest.raises(ValueError, match="more than"):
        read_small_file(large)
    with pytest.raises(FileNotFoundError):
        read_small_file(tmp_path / "missing")
