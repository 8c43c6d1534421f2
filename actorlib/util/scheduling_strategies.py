"""Scheduling strategies for ``.options(scheduling_strategy=...)`` (Ray's names).

Besides these classes, ``"DEFAULT"`` (local node first, spilling to others
when it cannot run the task, or is busy while another is free) and
``"SPREAD"`` (round-robin over the nodes with room) are accepted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class NodeAffinitySchedulingStrategy:
    """Run on the node ``node_id`` (hex, as ``get_runtime_context().get_node_id()`` gives).

    If that node is dead or cannot satisfy the request: with ``soft=True`` the
    task or actor runs elsewhere; otherwise it fails (tasks) or dies (actors)
    with an error naming the node.
    """

    node_id: str
    soft: bool

    def __post_init__(self) -> None:
        try:
            bytes.fromhex(self.node_id)
        except (TypeError, ValueError):
            raise ValueError(f"node_id must be a node's hex id, got {self.node_id!r}") from None


@dataclass(frozen=True)
class PlacementGroupSchedulingStrategy:
    """Run in a bundle of ``placement_group`` (any bundle with room when the index is -1)."""

    placement_group: Any
    placement_group_bundle_index: int = -1
    placement_group_capture_child_tasks: bool | None = None
