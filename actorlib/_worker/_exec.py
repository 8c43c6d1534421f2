"""The exec socket: tasks and sync actor calls read, run and answered on the main thread.

Calls on this socket never touch the runtime thread, which saves a thread
hop each way on the hot path. Everything else a worker serves (cancels,
object requests, async and threaded actors) stays on its core socket.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from .._wire import AuthenticationError, BlockingChannel, CancelTask, CoreMessage, ProtocolError, is_unix, join, parts, split_host_port, unix_path
from .._wire._throttle import CONNECTIONS

log = logging.getLogger("actorlib.worker")
HANDSHAKE_TIMEOUT = 10.0
LOOK_AGAIN_AFTER = 0.001  # seconds a call ran after which the socket is checked for cancels


class ExecServer:
    """A blocking accept/select loop; ``handle(message, channel)`` runs each message inline.

    ``handle`` returns False to stop serving (the main thread then has other work).
    Handshakes advance in the same loop as calls, each as its bytes arrive, and a
    connection that has not proved the token within ``handshake_timeout`` seconds
    is dropped: a silent or dribbling stranger never stalls the callers.
    """

    def __init__(
        self, address: str, token: str, handle: Callable[[Any, BlockingChannel], bool], *,
        handshake_timeout: float = HANDSHAKE_TIMEOUT,
    ) -> None:  # fmt: skip
        self._token = token
        self._handle = handle
        self._handshake_timeout = handshake_timeout
        self._listeners: dict[int, socket.socket] = {}
        bound = []
        for part in parts(address):
            listener, where = _listen(part)
            self._listeners[listener.fileno()] = listener
            bound.append(where)
        self.address = join(bound)
        self._connections: dict[int, BlockingChannel] = {}
        self._handshaking: dict[int, tuple[BlockingChannel, float]] = {}  # fd -> (channel, deadline)

    def serve_forever(self) -> None:
        while True:
            timeout = None
            if self._handshaking:
                timeout = max(0.0, min(deadline for _, deadline in self._handshaking.values()) - time.monotonic())
            readable, _, _ = select.select([*self._listeners, *self._connections, *self._handshaking], [], [], timeout)
            for fd in readable:
                if fd in self._listeners:
                    self._accept(self._listeners[fd])
                elif fd in self._handshaking:
                    self._advance(fd)
                elif fd in self._connections and not self._serve(self._connections[fd]):
                    return
            self._expire()

    def _accept(self, listener: socket.socket) -> None:
        sock, _ = listener.accept()
        if sock.family != socket.AF_UNIX:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        channel = BlockingChannel(sock, CoreMessage, peer=f"{self.address} client")
        try:
            channel.start_handshake(self._token)
        except OSError as exc:
            CONNECTIONS.warning(log, "exec socket: %s", exc)
            channel.close()
            return
        self._handshaking[channel.fileno()] = (channel, time.monotonic() + self._handshake_timeout)

    def _advance(self, fd: int) -> None:
        channel, _ = self._handshaking[fd]
        try:
            if channel.continue_handshake() is None:
                return
        except (OSError, EOFError, ProtocolError, AuthenticationError) as exc:
            CONNECTIONS.warning(log, "exec socket: %s", exc)
            del self._handshaking[fd]
            channel.close()
            return
        del self._handshaking[fd]
        self._connections[fd] = channel

    def _expire(self) -> None:
        now = time.monotonic()
        for fd, (channel, deadline) in list(self._handshaking.items()):
            if deadline <= now:
                CONNECTIONS.warning(log, "exec socket: %s did not complete the handshake within %gs", channel.peer, self._handshake_timeout)
                del self._handshaking[fd]
                channel.close()

    def _serve(self, channel: BlockingChannel) -> bool:
        """Run what ``channel`` sent. Cancels go before the calls read with them, and after a
        call that took a while the socket is looked at again for cancels that came meanwhile:
        a cancel is sent after its call, and must still reach a call queued behind a long one
        (behind quick ones, it would come too late anyway)."""
        messages: deque[Any] = deque()
        look = True
        while True:
            if look:
                try:
                    arrived = channel.receive_available()
                except (EOFError, OSError, ProtocolError) as exc:
                    if isinstance(exc, ProtocolError):
                        CONNECTIONS.warning(log, "closing exec connection: %s", exc)
                    self._drop(channel)
                    return True
                for message in arrived:
                    if type(message) is not CancelTask:
                        messages.append(message)
                    elif not self._handle(message, channel):
                        return False
            if not messages:
                return True
            started = time.perf_counter()
            if not self._handle(messages.popleft(), channel):
                return False
            if not messages:
                return True
            look = time.perf_counter() - started > LOOK_AGAIN_AFTER and _readable(channel)

    def _drop(self, channel: BlockingChannel) -> None:
        self._connections.pop(channel.fileno(), None)
        channel.close()

    def close(self) -> None:
        """Close every connection and listener (after :meth:`serve_forever` returned)."""
        for channel, _ in self._handshaking.values():
            channel.close()
        for channel in self._connections.values():
            channel.close()
        for listener in self._listeners.values():
            if listener.family == socket.AF_UNIX:
                with contextlib.suppress(OSError):
                    os.unlink(listener.getsockname())
            listener.close()
        self._handshaking.clear()
        self._connections.clear()
        self._listeners.clear()


def _readable(channel: BlockingChannel) -> bool:
    readable, _, _ = select.select([channel], [], [], 0)
    return bool(readable)


def _listen(address: str) -> tuple[socket.socket, str]:
    """A blocking listener on one address (TCP port 0 picks one); and the bound address."""
    if is_unix(address):
        path = unix_path(address)
        if os.path.exists(path):
            os.unlink(path)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        os.chmod(path, 0o600)
    else:
        host, port = split_host_port(address)
        listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        address = f"{host}:{listener.getsockname()[1]}"
    listener.listen(128)
    return listener, address
