"""The head's directory of nodes: live ones (in this process or connected), and the dead."""

from __future__ import annotations

import time
from typing import Any

import msgspec

from .._history import History
from .._wire import NodeView
from ._nodes import RemoteNode

DEAD_NODES_KEPT = 1000  # as Ray's maximum_gcs_dead_node_cached_count: the oldest are forgotten


class Registry:
    """Nodes known to the head."""

    def __init__(self) -> None:
        self._nodes: dict[bytes, Any] = {}
        self._dead: History[bytes, NodeView] = History(DEAD_NODES_KEPT)
        self.scalable: list[dict[str, float]] = []  # resources of node types the autoscaler may add
        # After a head restart, until the old nodes have had their grace period to register again
        # (time.monotonic()): a request no node known so far can run waits instead of failing.
        self.settling_until = 0.0

    def add(self, node: Any) -> None:
        self._nodes[node.node_id] = node
        self._dead.pop(node.node_id)

    def remove(self, node: Any) -> None:
        if self._nodes.get(node.node_id) is node:
            del self._nodes[node.node_id]

    def mark_dead(self, node: Any, reason: str) -> bool:
        """Move a node to the dead list; False if it was not live."""
        if self._nodes.get(node.node_id) is not node:
            return False
        del self._nodes[node.node_id]
        self._dead.add(node.node_id, msgspec.structs.replace(node.view(), alive=False))
        return True

    def live(self, node: Any) -> bool:
        return self._nodes.get(node.node_id) is node

    def declared_dead(self, node_id: bytes) -> bool:
        """Whether this head declared the node dead (and remembers it): it may not come back."""
        return node_id in self._dead

    def nodes(self) -> list[Any]:
        return list(self._nodes.values())

    def node_types(self) -> list[dict[str, float]]:
        return self.scalable

    def settling(self) -> bool:
        """Whether nodes of the head's previous life may still register again."""
        return time.monotonic() < self.settling_until

    def remote_nodes(self) -> list[RemoteNode]:
        return [node for node in self._nodes.values() if isinstance(node, RemoteNode)]

    def views(self, dead: bool = False) -> list[NodeView]:
        views = [node.view() for node in self._nodes.values()]
        return views + list(self._dead.values()) if dead else views

    def head_node(self) -> NodeView | None:
        views = self.views()
        return next((v for v in views if v.is_head), views[0] if views else None)
