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

import array
import errno
import mmap
import os
import socket
import threading
from collections.abc import Callable
from typing import TypeVar

import trio

T = TypeVar("T")

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
    data = await receive_into(stream, max_bytes, bytes)
    return b"" if data is None else data


async def receive_into(stream: trio.abc.ReceiveStream, max_bytes: int, consume: Callable[[memoryview], T]) -> T | None:
    """What ``consume`` makes of the bytes that arrived (at most ``max_bytes``), handed to it
    as a view of the scratch buffer, valid only during the call (a FrameReader's ``feed``
    copies each frame out once); None at the end of the stream.

    Raises trio.ClosedResourceError if the stream was closed, OSError if reading failed,
    and what ``consume`` raises.
    """
    if max_bytes < 1:
        raise ValueError(f"max_bytes must be at least 1, not {max_bytes}")
    fd = _fileno(stream)
    if fd is None:
        data = await stream.receive_some(max_bytes)
        return consume(memoryview(data)) if data else None
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
        if not count:
            return None
        result = consume(view[:count])  # before anything else may run on this thread and read
        await trio.lowlevel.cancel_shielded_checkpoint()
        return result


def recv(sock: socket.socket, max_bytes: int) -> bytes:
    """Like ``sock.recv(max_bytes)`` on a blocking (or non-blocking) socket."""
    return recv_into(sock, max_bytes, bytes) or b""


def recv_into(sock: socket.socket, max_bytes: int, consume: Callable[[memoryview], T]) -> T | None:
    """Like :func:`receive_into`, on a blocking (or non-blocking) socket."""
    view = _scratch(max_bytes)
    count = sock.recv_into(view)
    return consume(view[:count]) if count else None


def recv_fds(sock: socket.socket, max_bytes: int, max_fds: int, flags: int = 0) -> tuple[bytes, list[int], int]:
    """Like ``socket.recv_fds`` (data, file descriptors, flags), without its allocation of
    ``max_bytes`` per call."""
    view = _scratch(max_bytes)
    fds = array.array("i")
    count, ancillary, msg_flags, _ = sock.recvmsg_into([view], socket.CMSG_SPACE(max_fds * fds.itemsize), flags)
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
    return bytes(view[:count]), list(fds), msg_flags


def read_small_file(path: str | os.PathLike[str]) -> bytes:
    """The content of a small file (a kernel's ``/proc`` or cgroup file, read again and again).

    ``open(path).read()`` allocates a read buffer per call (psutil asks for 32 KiB),
    one more short-lived block of the kind that fragments a long-lived process's C
    heap; this reads through the scratch buffer instead. Raises OSError, and ValueError
    if the file holds more than the scratch buffer does.
    """
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        view = _scratch(SCRATCH_BYTES)
        size = 0
        while count := os.readv(fd, [view[size:]]):
            size += count
            if size == len(view):
                raise ValueError(f"{os.fspath(path)} holds more than {SCRATCH_BYTES} bytes")
        return bytes(view[:size])
    finally:
        os.close(fd)
