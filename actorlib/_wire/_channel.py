"""Channels: authenticated, framed msgspec message streams over Trio streams.

Sends never block the caller: messages are encoded into one outgoing buffer
and a sender task writes whatever has accumulated with a single
``send_all``, so bursts coalesce into few system calls. The buffer is bounded:
a peer that leaves more than ``max_queued`` bytes unread is cut off (its
channel closes with a BufferError), and senders of what may be dropped (worker
logs) look at :attr:`Channel.queued` first. A malformed frame or message
closes that one channel with a ProtocolError; it never propagates further.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import threading
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import msgspec
import trio

from . import _auth, _receive
from ._address import is_unix, join, open_listener, open_stream, parts, unix_path
from ._errors import ConnectionFailed
from ._framing import DEFAULT_MAX_FRAME, HANDSHAKE_MAX_FRAME, FrameReader, ProtocolError
from ._messages import PROTOCOL_VERSION, Auth, Handshake, Hello, Refused, Welcome, decoder_for
from ._throttle import CONNECTIONS

log = logging.getLogger("actorlib.wire")

HANDSHAKE_TIMEOUT = 10.0
RECEIVE_CHUNK = 1 << 18
FLUSH_ON_CLOSE = 1.0
MAX_QUEUED = 2 * DEFAULT_MAX_FRAME  # bytes a peer may leave unread (a frame fits) before it is cut off


class Channel:
    """One connection's message stream in both directions."""

    def __init__(
        self, stream: trio.abc.Stream, decode_type: Any, *, peer: str, max_frame: int = DEFAULT_MAX_FRAME,
        max_queued: int = MAX_QUEUED,
    ) -> None:  # fmt: skip
        self.stream = stream
        self.max_queued = max_queued
        self.peer = peer
        self._reader = FrameReader(max_frame)
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder = decoder_for(decode_type)
        self._handshake_decoder = decoder_for(Handshake)
        self._inbox: deque[bytes | bytearray] = deque()
        self._out = bytearray()
        self._sending = False  # the sender task is writing: append, never write past it
        self._lock = threading.Lock()
        self._wake = trio.Event()
        self._token = trio.lowlevel.current_trio_token()
        socket = getattr(stream, "socket", None)
        self._fd: int | None = socket.fileno() if socket is not None else None
        self._closed = False
        self._cut_off = False  # closed by us for not reading: the sender closes the stream
        self._send_scope = trio.CancelScope()
        self.closed_event = trio.Event()
        self.error: BaseException | None = None

    # ---- sending ---------------------------------------------------------

    def send_nowait(self, message: Any) -> None:
        """Send ``message`` without blocking (from the channel's Trio thread).

        Written to the socket at once when nothing is queued before it, else
        queued for the sender task. Raises ClosedResourceError if closed.
        """
        if self._write(message):
            self._wake_sender()

    def send_threadsafe(self, message: Any) -> None:
        """Like :meth:`send_nowait`, from any thread."""
        if self._write(message):
            self._token.run_sync_soon(self._wake_sender)

    def _wake_sender(self) -> None:
        self._wake.set()
        if self._cut_off:
            self._send_scope.cancel()  # a send_all that waits for the peer would wait for ever

    @property
    def queued(self) -> int:
        """Bytes sent but not yet written to the socket (the peer is not reading fast enough)."""
        return len(self._out)

    def _write(self, message: Any) -> bool:
        """Write or queue one frame; True if the sender task must be woken."""
        with self._lock:  # checked under the lock that aclose() takes: never a closed (or reused) fd
            if self._closed:
                raise trio.ClosedResourceError(f"channel to {self.peer} is closed")
            out = self._out
            start = len(out)
            out += b"\x00\x00\x00\x00"
            self._encoder.encode_into(message, out, -1)
            out[start : start + 4] = (len(out) - start - 4).to_bytes(4, "big")
            if len(out) > self.max_queued:
                self._out = bytearray()  # a peer that stopped reading does not grow us without bound
                self._closed = self._cut_off = True
                self.error = BufferError(f"{self.peer} left {len(out)} bytes unread (more than {self.max_queued}): cut off")
                return True
            if start or self._sending or self._fd is None:
                return True
            try:
                written = os.write(self._fd, out)
            except BlockingIOError:
                return True
            except OSError as exc:
                self._out = bytearray()
                self._closed = True  # the reader sees the EOF and finishes closing, on its thread
                self.error = exc
                return True
            del out[:written]
            return bool(out)

    async def run_sender(self) -> None:
        """Write queued messages until the channel closes (and what was queued before it did)."""
        try:
            while not self.closed_event.is_set() or self._out:
                if self._closed and not self.closed_event.is_set() and not self._out:
                    self._mark_closed(self.error)
                    if self._cut_off:  # wake our reader too: the peer is alive, only slow
                        log.warning("closing the connection to %s: %s", self.peer, self.error)
                        with self._lock:
                            self._fd = None
                        await self.stream.aclose()
                    break
                if not self._out:
                    await self._wake.wait()
                    self._wake = trio.Event()
                await self._flush()
        except (trio.BrokenResourceError, trio.ClosedResourceError, trio.BusyResourceError, OSError) as exc:
            self._mark_closed(exc)
            self._out = bytearray()

    async def _flush(self) -> None:
        with self._lock:
            if not self._out:
                return
            data, self._out = self._out, bytearray()
            self._sending = True
            self._send_scope = scope = trio.CancelScope()
        try:
            with scope:
                await self.stream.send_all(data)
        finally:
            with self._lock:
                self._sending = False

    async def _send_direct(self, message: Any) -> None:
        payload = self._encoder.encode(message)
        await self.stream.send_all(len(payload).to_bytes(4, "big") + payload)

    # ---- receiving -------------------------------------------------------

    async def receive(self) -> Any:
        """The next message. Raises EOFError at a clean end, ProtocolError on garbage."""
        return self._decode(await self._next_frame(), self._decoder)

    async def _next_frame(self) -> bytes | bytearray:
        while not self._inbox:
            try:
                frames = await _receive.receive_into(self.stream, RECEIVE_CHUNK, self._reader.feed)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                self._mark_closed(exc)
                raise EOFError(f"connection to {self.peer} lost: {exc}") from exc
            if frames is None:
                self._mark_closed(None)
                raise EOFError(f"{self.peer} closed the connection")
            self._inbox.extend(frames)
        return self._inbox.popleft()

    def _decode(self, frame: bytes | bytearray, decoder: msgspec.msgpack.Decoder[Any]) -> Any:
        try:
            return decoder.decode(frame)
        except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as exc:
            raise ProtocolError(f"bad message from {self.peer}: {exc}") from None

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Any]:
        while True:
            try:
                yield await self.receive()
            except EOFError:
                return

    # ---- closing ---------------------------------------------------------

    def _mark_closed(self, error: BaseException | None) -> None:
        """On the Trio thread: record the end of the channel and wake whoever waits for it."""
        if not self.closed_event.is_set():
            self._closed = True
            self.error = self.error or error
            self._wake.set()
            self.closed_event.set()

    @property
    def closed(self) -> bool:
        return self._closed

    async def aclose(self) -> None:
        """Send what is queued (for up to a second), then close."""
        self._mark_closed(None)
        with trio.CancelScope(shield=True):
            with trio.move_on_after(FLUSH_ON_CLOSE):
                try:
                    await self._flush()
                except (trio.BrokenResourceError, trio.ClosedResourceError, trio.BusyResourceError, OSError):
                    pass
            with self._lock:  # a thread in _write holds it: it finishes before the fd goes away
                self._out = bytearray()
                self._fd = None
            await self.stream.aclose()

    # ---- handshake -------------------------------------------------------

    async def _handshake_frame(self) -> bytes | bytearray:
        """The next frame from a peer not yet authenticated: no larger than an Auth needs."""
        limit, self._reader.max_frame = self._reader.max_frame, HANDSHAKE_MAX_FRAME
        try:
            return await self._next_frame()
        except ProtocolError as exc:
            raise ProtocolError(f"during the handshake with {self.peer}: {exc}") from None
        finally:
            self._reader.max_frame = limit

    async def handshake_server(self, token: str) -> str:
        """Challenge the client; return the peer name it gave. Raises AuthenticationError."""
        challenge = _auth.nonce()
        await self._send_direct(Hello(version=PROTOCOL_VERSION, nonce=challenge))
        reply = self._decode(await self._handshake_frame(), self._handshake_decoder)
        if not isinstance(reply, Auth):
            raise ProtocolError(f"expected auth from {self.peer}, got {type(reply).__name__}")
        if reply.version != PROTOCOL_VERSION:
            await self._refuse(f"protocol version {reply.version} is not {PROTOCOL_VERSION}")
        if not _auth.check(_auth.client_proof(token, challenge), reply.proof):
            await self._refuse("invalid cluster token")
        await self._send_direct(Welcome(proof=_auth.server_proof(token, reply.nonce)))
        self.peer = reply.peer
        return reply.peer

    async def _refuse(self, reason: str) -> None:
        await self._send_direct(Refused(reason=reason))
        raise _auth.AuthenticationError(f"refused {self.peer}: {reason}")

    async def handshake_client(self, token: str, name: str) -> None:
        """Prove the token and check the server's proof. Raises AuthenticationError."""
        hello = self._decode(await self._handshake_frame(), self._handshake_decoder)  # nothing may follow it yet
        if not isinstance(hello, Hello):
            raise ProtocolError(f"expected hello from {self.peer}, got {type(hello).__name__}")
        mine = _auth.nonce()
        proof = _auth.client_proof(token, hello.nonce)
        await self._send_direct(Auth(version=PROTOCOL_VERSION, proof=proof, nonce=mine, peer=name))
        answer = self._decode(await self._next_frame(), self._handshake_decoder)
        if isinstance(answer, Refused):
            raise _auth.AuthenticationError(f"{self.peer} refused the connection: {answer.reason}")
        if not isinstance(answer, Welcome) or not _auth.check(_auth.server_proof(token, mine), answer.proof):
            raise _auth.AuthenticationError(f"{self.peer} could not prove it holds the cluster token")


async def connect(
    nursery: trio.Nursery, address: str, token: str, decode_type: Any, *, name: str
) -> Channel:
    """Connect, authenticate, and start the channel's sender in ``nursery``.

    Raises ConnectionFailed, however the attempt fails: nobody listens, the
    peer closes the connection or stays silent for HANDSHAKE_TIMEOUT seconds
    (a frozen process), sends garbage, or refuses the token
    (AuthenticationError, a subclass). Nothing else escapes but cancellation.
    """
    try:
        stream = await open_stream(address)
    except OSError as exc:
        raise _failed(address, exc) from exc
    channel = Channel(stream, decode_type, peer=address)
    try:
        with trio.fail_after(HANDSHAKE_TIMEOUT):
            await channel.handshake_client(token, name)
    except _CONNECT_ERRORS as exc:
        await channel.aclose()
        if isinstance(exc, ConnectionFailed):
            raise
        raise _failed(address, exc) from exc
    except BaseException:
        await channel.aclose()
        raise
    nursery.start_soon(channel.run_sender)
    return channel


# What a connection attempt can run into, besides cancellation.
_CONNECT_ERRORS = (OSError, EOFError, trio.TooSlowError, trio.BrokenResourceError, trio.ClosedResourceError, ProtocolError)


def _failed(address: str, exc: BaseException) -> ConnectionFailed:
    if isinstance(exc, ConnectionFailed):
        return exc
    if isinstance(exc, trio.TooSlowError):
        why = f"no handshake within {HANDSHAKE_TIMEOUT:g}s (is the process frozen?)"
    else:
        why = str(exc) or type(exc).__name__
    return ConnectionFailed(f"cannot connect to {address}: {why}", address=address)


Handler = Callable[[Channel], Awaitable[None]]


async def serve(
    address: str,
    token: str,
    decode_type: Any,
    handler: Handler,
    *,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Accept connections on ``address`` forever; run ``handler(channel)`` for each.

    Reports the bound address through ``task_status``. A connection that
    fails the handshake, sends garbage or whose handler raises
    ProtocolError is closed; the server keeps serving.
    """
    opened = [await open_listener(part) for part in parts(address)]
    listeners = [listener for listener, _ in opened]
    bound = join([where for _, where in opened])
    conn_ids = itertools.count(1)

    async def handle(stream: trio.SocketStream) -> None:
        channel = Channel(stream, decode_type, peer=f"{bound}#{next(conn_ids)}")
        try:
            async with trio.open_nursery() as nursery:
                try:
                    with trio.fail_after(HANDSHAKE_TIMEOUT):
                        await channel.handshake_server(token)
                    nursery.start_soon(channel.run_sender)
                    await handler(channel)
                finally:
                    channel._mark_closed(None)
        except* (ProtocolError, _auth.AuthenticationError, trio.TooSlowError) as group:
            CONNECTIONS.warning(log, "closing connection %s: %s", channel.peer, group.exceptions[0])
        except* (EOFError, trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        except* Exception:
            log.exception("connection handler for %s failed", channel.peer)
        finally:
            await channel.aclose()

    try:
        task_status.started(bound)
        await trio.serve_listeners(handle, listeners)
    finally:
        for listener, where in opened:
            with trio.CancelScope(shield=True):
                await listener.aclose()
            if is_unix(where):
                with contextlib.suppress(OSError):
                    os.unlink(unix_path(where))
