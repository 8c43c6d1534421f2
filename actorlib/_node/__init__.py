"""A node: its worker pool, leases, object store and logs, under a node supervisor."""

from ._config import NodeConfig
from ._service import NodeService, NodeState
from ._tree import node_spec
