"""The exec socket: tasks and sync actor calls read, run and answered on the main thread.

Calls on this socket never touch the runtime thread, which saves a thread
hop each way on the hot path. Everything else a worker serves (cancels,
object requests, async and threaded actors) stays on its core socket.
"""

from __future__ import annotations

import logging
import os
import select
import socket
from collections.abc import Callable
from typing import Any

from .._wire import AuthenticationError, BlockingChannel, CoreMessage, ProtocolError, unix_path

log = logging.getLogger("actorlib.worker")
HANDSHAKE_TIMEOUT = 10.0


def exec_address(core_address: str) -> str:
    """A worker's exec socket, next to its core socket."""
    return core_address.removesuffix(".sock") + "-x.sock"


class ExecServer:
    """A blocking accept/select loop; ``handle(message, channel)`` runs each message inline.

    ``handle`` returns False to stop serving (the main thread then has other work).
    """

    def __init__(self, address: str, token: str, handle: Callable[[Any, BlockingChannel], bool]) -> None:
        self.address = address
        self._token = token
        self._handle = handle
        path = unix_path(address)
        if os.path.exists(path):
            os.unlink(path)
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(path)
        os.chmod(path, 0o600)
        self._listener.listen(128)
        self._connections: dict[int, BlockingChannel] = {}

    def serve_forever(self) -> None:
        listener = self._listener.fileno()
        while True:
            readable, _, _ = select.select([listener, *self._connections], [], [])
            for fd in readable:
                if fd == listener:
                    self._accept()
                elif fd in self._connections and not self._serve(self._connections[fd]):
                    return

    def _accept(self) -> None:
        sock, _ = self._listener.accept()
        channel = BlockingChannel(sock, CoreMessage, peer=f"{self.address} client")
        try:
            sock.settimeout(HANDSHAKE_TIMEOUT)
            channel.handshake_server(self._token)
            sock.settimeout(None)
        except (OSError, EOFError, ProtocolError, AuthenticationError) as exc:
            log.warning("exec socket: %s", exc)
            channel.close()
            return
        self._connections[channel.fileno()] = channel

    def _serve(self, channel: BlockingChannel) -> bool:
        try:
            messages = channel.receive_available()
        except (EOFError, OSError, ProtocolError) as exc:
            if isinstance(exc, ProtocolError):
                log.warning("closing exec connection: %s", exc)
            self._drop(channel)
            return True
        for message in messages:
            if not self._handle(message, channel):
                return False
        return True

    def _drop(self, channel: BlockingChannel) -> None:
        self._connections.pop(channel.fileno(), None)
        channel.close()
