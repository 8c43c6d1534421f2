"""The head's directory of live nodes."""

from __future__ import annotations

from typing import Any

from .._wire import NodeView


class Registry:
    """Nodes known to the head (for now: the node in the head's own process)."""

    def __init__(self) -> None:
        self._nodes: dict[bytes, Any] = {}

    def add(self, node: Any) -> None:
        self._nodes[node.node_id] = node

    def remove(self, node: Any) -> None:
        if self._nodes.get(node.node_id) is node:
            del self._nodes[node.node_id]

    def nodes(self) -> list[Any]:
        return list(self._nodes.values())

    def views(self) -> list[NodeView]:
        return [node.view() for node in self._nodes.values()]

    def head_node(self) -> NodeView | None:
        views = self.views()
        return next((v for v in views if v.is_head), views[0] if views else None)
