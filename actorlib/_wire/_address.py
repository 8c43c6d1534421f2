"""Addresses: ``unix:/path/to.sock`` within a machine, ``host:port`` across machines."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import trio

UNIX_PREFIX = "unix:"
MAX_UNIX_PATH = 107


def unix_address(path: str | Path) -> str:
    return f"{UNIX_PREFIX}{path}"


def is_unix(address: str) -> bool:
    return address.startswith(UNIX_PREFIX)


def unix_path(address: str) -> str:
    return address[len(UNIX_PREFIX) :]


def split_host_port(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"address {address!r} is neither unix:/path nor HOST:PORT")
    return host.strip("[]"), int(port)


async def open_stream(address: str) -> trio.SocketStream:
    """Connect to ``address``. Raises OSError if nobody listens there."""
    if is_unix(address):
        return await trio.open_unix_socket(unix_path(address))
    host, port = split_host_port(address)
    return await trio.open_tcp_stream(host, port)


async def open_listener(address: str) -> tuple[trio.SocketListener, str]:
    """Listen on ``address`` (port 0 picks one); return the listener and the bound address."""
    if is_unix(address):
        path = unix_path(address)
        if len(path.encode()) > MAX_UNIX_PATH:
            raise ValueError(f"unix socket path is too long ({len(path)} > {MAX_UNIX_PATH}): {path}")
        if os.path.exists(path):
            os.unlink(path)
        sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        await sock.bind(path)
        os.chmod(path, 0o600)
        sock.listen(512)
        return trio.SocketListener(sock), address
    host, port = split_host_port(address)
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound_port = listeners[0].socket.getsockname()[1]
    for extra in listeners[1:]:
        await extra.aclose()
    return listeners[0], f"{host}:{bound_port}"
