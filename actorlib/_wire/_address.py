"""Addresses: ``unix:/path/to.sock`` within a machine, ``host:port`` across machines.

A server may listen on several at once; its address is then the list joined
by ``;`` (``unix:/tmp/.../w-1.sock;10.0.0.5:41234``). A client tries them in
order, skipping Unix sockets that do not exist on its machine, so processes
on one machine talk over Unix sockets and others over TCP.
"""

from __future__ import annotations

import ipaddress
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


SEPARATOR = ";"


def parts(address: str) -> list[str]:
    """The single addresses in an address list."""
    return [part for part in address.split(SEPARATOR) if part]


def join(addresses: list[str]) -> str:
    return SEPARATOR.join(addresses)


def reachable(address: str) -> list[str]:
    """The parts of an address list worth trying from this machine, in order."""
    return [part for part in parts(address) if not is_unix(part) or os.path.exists(unix_path(part))]


def local_part(address: str) -> str | None:
    """The Unix socket of an address list, if it has one."""
    return next((part for part in parts(address) if is_unix(part)), None)


async def open_stream(address: str) -> trio.SocketStream:
    """Connect to ``address`` (a single address or a list). Raises OSError if nobody answers."""
    error: OSError | None = None
    for part in reachable(address) or parts(address):
        try:
            if is_unix(part):
                return await trio.open_unix_socket(unix_path(part))
            host, port = split_host_port(part)
            return await trio.open_tcp_stream(host, port)
        except OSError as exc:
            error = exc
    raise error or OSError(f"no address to connect to in {address!r}")


async def open_listener(address: str) -> tuple[trio.SocketListener, str]:
    """Listen on ``address`` (port 0 picks one); return the listener and the bound address."""
    if is_unix(address):
        path = unix_path(address)
        if len(path.encode()) > MAX_UNIX_PATH:
            raise ValueError(f"unix socket path is too long ({len(path)} > {MAX_UNIX_PATH}): {path}")
        if os.path.exists(path):
            os.unlink(path)
        raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        # Bound here, as quick as the unlink above: trio's bind would start a thread for it
        # (one more thread, with its stack and malloc arena, in every worker and actor).
        raw.bind(path)
        sock = trio.socket.from_stdlib_socket(raw)
        os.chmod(path, 0o600)
        sock.listen(512)
        return trio.SocketListener(sock), address
    host, port = split_host_port(address)
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound_port = listeners[0].socket.getsockname()[1]
    for extra in listeners[1:]:
        await extra.aclose()
    return listeners[0], f"{host}:{bound_port}"


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an IP, IPv6 in brackets or not) is this machine's loopback."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
