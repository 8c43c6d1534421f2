"""Tools for testing programs that run on actorlib.

- ``actorlib.testing.chaos``: a fault injector — kill random task workers, actor
  processes, nodes or the head of a running cluster (SIGKILL), or freeze them
  (SIGSTOP, then SIGCONT), at an interval; the same engine as ``actorlib chaos``.
"""

from . import chaos

__all__ = ["chaos"]
