"""The yardstick for actor call latency: a bare trio round trip between two processes.

A small msgspec message, length-prefixed, over a Unix socket, trio on both ends.
``measure()`` runs the parent side; ``python -m benchmarks.trio_roundtrip PATH`` the echo.
"""

import struct
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec
import trio

WARMUP = 1_000
ROUND_TRIPS = 20_000
_HEADER = struct.Struct(">I")


class Call(msgspec.Struct, frozen=True):
    """A message shaped like a small actor call: parent to echo and back."""

    seq: int
    method: str
    args: list[int]


class _Frames:
    """Length-prefixed msgspec frames over one trio stream."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self._stream = stream
        self._buf = bytearray()
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder = msgspec.msgpack.Decoder(Call)

    async def send(self, msg: Call) -> None:
        payload = self._encoder.encode(msg)
        await self._stream.send_all(_HEADER.pack(len(payload)) + payload)

    async def receive(self) -> Call | None:
        """The next message, or None at end of stream."""
        while True:
            if len(self._buf) >= _HEADER.size:
                (size,) = _HEADER.unpack_from(self._buf)
                end = _HEADER.size + size
                if len(self._buf) >= end:
                    msg = self._decoder.decode(self._buf[_HEADER.size : end])
                    del self._buf[:end]
                    return msg
            chunk = await self._stream.receive_some(65536)
            if not chunk:
                return None
            self._buf += chunk


async def _round_trips(frames: _Frames, n: int) -> float:
    t0 = time.perf_counter()
    for seq in range(n):
        await frames.send(Call(seq=seq, method="incr", args=[1, 2, 3]))
        reply = await frames.receive()
        assert reply is not None and reply.seq == seq
    return time.perf_counter() - t0


async def _parent() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-rtt-") as tmp:
        path = str(Path(tmp) / "echo.sock")
        sock = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
        await sock.bind(path)
        sock.listen(1)
        listener = trio.SocketListener(sock)
        proc = await trio.lowlevel.open_process([sys.executable, "-m", __spec__.name, path])
        try:
            async with listener, await listener.accept() as stream:
                frames = _Frames(stream)
                await _round_trips(frames, WARMUP)
                elapsed = await _round_trips(frames, ROUND_TRIPS)
        finally:
            with trio.CancelScope(shield=True):
                with trio.move_on_after(5):
                    await proc.wait()  # the echo exits at end of stream
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
    return {"rtt_us": elapsed / ROUND_TRIPS * 1e6}


async def _echo(path: str) -> None:
    async with await trio.open_unix_socket(path) as stream:
        frames = _Frames(stream)
        while (msg := await frames.receive()) is not None:
            await frames.send(msg)


def measure(_: object = None) -> dict[str, Any]:
    """Run the round trips; returns ``{"rtt_us": mean microseconds per round trip}``."""
    return trio.run(_parent)


if __name__ == "__main__":
    trio.run(_echo, sys.argv[1])
