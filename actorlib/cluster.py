"""Operating clusters from outside: find a running one, start head and node processes, read its nodes.

This is what the ``actorlib`` command uses (it reaches the runtime only
through public modules: this one, ``actorlib.util.state`` and ``actorlib``),
and what an operator's script may use too. The state of a running cluster
(trees, listings, logs) is ``actorlib.util.state``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import trio

from ._autoscaler import ClusterConfig, ConfigError, load_config
from ._autoscaler import _launcher as launcher  # up/down/exec/attach: clusters from a cluster config
from ._driver._local import start_local_cluster
from ._driver._options import InitOptions
from ._environ import ADDRESS_ENV
from ._driver._discovery import TOKEN_ENV, TOKEN_FILE_ENV, Found, find, running_sessions
from ._session import head_address
from ._placement import is_group_resource
from ._session import new_session
from .util._state_client import lone
from ._wire import (
    AutoscalerView, ClusterInfoReply, ClusterInfoRequest, HeadMessage, NodeView, PlacementGroupView, connect, is_loopback, parts,
    check_token, read_token, split_host_port, write_token,
)  # fmt: skip

__all__ = [
    "ADDRESS_ENV", "TOKEN_ENV", "TOKEN_FILE_ENV", "AutoscalerView", "ClusterConfig", "ClusterInfo", "ConfigError", "Found",
    "InitOptions", "NodeView", "adopt_token", "check_token_file", "launcher", "load_config",
    "PlacementGroupView", "cluster_info", "find", "head_address", "is_group_resource", "is_loopback", "new_session", "parts",
    "running_sessions", "split_host_port", "start_local_cluster",
]  # fmt: skip


@dataclass(frozen=True)
class ClusterInfo:
    """A running cluster's nodes (dead ones too) and placement groups, as its head sees them."""

    head: str
    nodes: list[NodeView]
    groups: list[PlacementGroupView]
    autoscaler: AutoscalerView | None = None  # what its autoscaler does (None: it does not scale)


def cluster_info(address: str = "auto", timeout: float = 30.0) -> ClusterInfo:
    """Ask the head at ``address`` for its nodes and placement groups (blocking).

    Raises ConnectionError if no cluster is found or the head cannot be reached,
    TimeoutError if it does not answer within ``timeout`` seconds.
    """
    found = find(address)
    try:
        reply = trio.run(_ask, found.head, found.token, timeout)
    except trio.TooSlowError:
        raise TimeoutError(f"the head at {found.head} did not answer within {timeout:g}s") from None
    except BaseExceptionGroup as group:  # a failed connect, wrapped by the nursery
        raise lone(group) from None
    return ClusterInfo(found.head, reply.nodes, reply.groups, reply.autoscaler)


async def _ask(head: str, token: str, timeout: float) -> ClusterInfoReply:
    with trio.fail_after(timeout):
        async with trio.open_nursery() as nursery:
            channel = await connect(nursery, head, token, HeadMessage, name=f"cli:{os.getpid():08x}")
            try:
                channel.send_nowait(ClusterInfoRequest(req=1))
                reply = await channel.receive()
                while not isinstance(reply, ClusterInfoReply):  # skip broadcasts (NodeDied)
                    reply = await channel.receive()
            finally:
                await channel.aclose()
                nursery.cancel_scope.cancel()
    return reply


def check_token_file(token_file: str | os.PathLike[str]) -> None:
    """Raise ValueError if the token in ``token_file`` is too short for a head to serve."""
    from pathlib import Path

    check_token(read_token(Path(token_file)), str(token_file))


def adopt_token(session: str | os.PathLike[str], token_file: str | os.PathLike[str]) -> None:
    """Make a new head session use the cluster token in ``token_file`` instead of its own
    (``actorlib start --head --token-file``, as ``actorlib up`` starts heads).
    Raises ValueError if that token is too short to protect anything."""
    from pathlib import Path

    token = check_token(read_token(Path(token_file)), str(token_file))
    path = Path(session) / "token"
    path.unlink(missing_ok=True)
    write_token(path, token)
