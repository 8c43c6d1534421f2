"""Tools for testing programs that run on actorlib.

- ``actorlib.testing.chaos``: a fault injector — kill random task workers, actor
  processes, nodes or the head of a running cluster (SIGKILL), or freeze them
  (SIGSTOP, then SIGCONT), at an interval; the same engine as ``actorlib chaos``.
- ``actorlib.testing.Cluster``: a head and nodes on this machine's loopback
  addresses (127.0.0.1, 127.0.0.2, ...), real processes started with the CLI, in
  a temporary directory of their own; it says which processes outlived it.
"""

from . import chaos
from ._cluster import Cluster

__all__ = ["Cluster", "chaos"]
