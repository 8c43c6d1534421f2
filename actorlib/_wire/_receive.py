"""Receiving bytes without a large allocation per call.

``socket.recv(n)`` and ``os.read(fd, n)`` allocate ``n`` bytes before they know how
many will arrive, then shrink the result to what did. Channels ask for 256 KiB (a
large frame arrives in few calls), so every message a process received cost a
256 KiB ``malloc`` given back, all but its first bytes, by a ``realloc``. In a
long-lived process these large short-lived blocks among long-lived small ones
fragment the C heap: the head's free heap space, and with it its RSS, grew by
about a kilobyte a round of the soak for as long as it ran (docs/reliability.md,
"Soak"), and so did a driver's.

Here bytes are read into one scratch buffer per thread and copied out at their
size: a small message is a small allocation (Python's small-object allocator
takes those up to 512 bytes), a large one an allocation of exactly its size. The
scratch buffer is an anonymous mapping: only the pages large reads touch are
resident.
"""

from __future__ import annotations

import errno
import mmap
import os
import socket
import threading

import trio

SCRATCH_BYTES = 1 << 18  # the most one call returns

_local = threading.local()


def _scratch(size: int) -> memoryview:
    view: memoryview | None = getattr(_local, "view", None)
    if view is None:
        view = _local.view = memoryview(mmap.mmap(-1, SCRATCH_BYTES))
    return view[: min(size, SCRATCH_BYTES)]


def _fileno(stream: trio.abc.ReceiveStream) -> int | None:
    if isinstance(stream, trio.SocketStream):
        return stream.socket.fileno()
    if isinstance(stream, trio.lowlevel.FdStream):
        return stream.fileno()
    return None


async def receive_some(stream: trio.abc.ReceiveStream, max_bytes: int) -> bytes:
    """Like ``stream.receive_some(max_bytes)`` (``b""`` at the end of the stream); a socket
    or pipe stream is read through the scratch buffer, any other stream as it reads itself.

    Raises trio.ClosedResourceError if the stream was closed, OSError if reading failed.
    """
    if max_bytes < 1:
        raise ValueError(f"max_bytes must be at least 1, not {max_bytes}")
    fd = _fileno(stream)
    if fd is None:
        return await stream.receive_some(max_bytes)
    await trio.lowlevel.checkpoint_if_cancelled()
    while True:
        view = _scratch(max_bytes)
        try:
            count = os.readv(fd, [view])
        except BlockingIOError:
            await trio.lowlevel.wait_readable(fd)  # raises ClosedResourceError if closed meanwhile
            continue
        except OSError as exc:
            if exc.errno == errno.EBADF:
                raise trio.ClosedResourceError("the stream was closed") from None
            raise
        data = bytes(view[:count])  # before anything else may run on this thread and read
        await trio.lowlevel.cancel_shielded_checkpoint()
        return data


def recv(sock: socket.socket, max_bytes: int) -> bytes:
    """Like ``sock.recv(max_bytes)`` on a blocking (or non-blocking) socket."""
    view = _scratch(max_bytes)
    return bytes(view[: sock.recv_into(view)])
