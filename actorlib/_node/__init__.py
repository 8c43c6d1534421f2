"""A node: its worker pool, leases, object store and logs, under a node supervisor.

Its names are loaded when first used: a driver needs ``NodeConfig`` (and ``_resources``),
not the node's service, pool and store, which would cost its cold start ~50 ms of imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._config import NodeConfig
    from ._service import NodeService, NodeState
    from ._tree import node_spec

__all__ = ["NodeConfig", "NodeService", "NodeState", "node_spec"]

_WHERE = {"NodeConfig": "._config", "NodeService": "._service", "NodeState": "._service", "node_spec": "._tree"}


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(where, __name__), name)
