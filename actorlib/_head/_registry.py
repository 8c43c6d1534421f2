"""The head's directory of nodes: live ones (in this process or connected), and the dead."""

from __future__ import annotations

import itertools
from typing import Any

import msgspec

from .._node import _resources as res
from .._wire import NodeView
from ._nodes import RemoteNode


class Registry:
    """Nodes known to the head."""

    def __init__(self) -> None:
        self._nodes: dict[bytes, Any] = {}
        self._dead: dict[bytes, NodeView] = {}
        self._spread = itertools.count()

    def add(self, node: Any) -> None:
        self._nodes[node.node_id] = node
        self._dead.pop(node.node_id, None)

    def remove(self, node: Any) -> None:
        if self._nodes.get(node.node_id) is node:
            del self._nodes[node.node_id]

    def mark_dead(self, node: Any, reason: str) -> bool:
        """Move a node to the dead list; False if it was not live."""
        if self._nodes.get(node.node_id) is not node:
            return False
        del self._nodes[node.node_id]
        self._dead[node.node_id] = msgspec.structs.replace(node.view(), alive=False)
        return True

    def nodes(self) -> list[Any]:
        return list(self._nodes.values())

    def remote_nodes(self) -> list[RemoteNode]:
        return [node for node in self._nodes.values() if isinstance(node, RemoteNode)]

    def views(self, dead: bool = False) -> list[NodeView]:
        views = [node.view() for node in self._nodes.values()]
        return views + list(self._dead.values()) if dead else views

    def head_node(self) -> NodeView | None:
        views = self.views()
        return next((v for v in views if v.is_head), views[0] if views else None)

    def pick(self, shape: dict[str, float], strategy: str, exclude: bytes = b"") -> NodeView | None:
        """A node where ``shape`` fits now (SPREAD: round-robin over them; else the least loaded).

        Falls back to a node where it could ever fit; None if none could.
        """
        views = [v for v in self.views() if v.node_id != exclude]
        now = [v for v in views if res.fits(shape, v.available)]
        if now:
            if strategy == "SPREAD":
                return now[next(self._spread) % len(now)]
            return max(now, key=lambda v: v.available.get(res.CPU, 0.0))
        ever = [v for v in views if res.infeasible_reason(shape, v.total) is None]
        return ever[0] if ever else None
