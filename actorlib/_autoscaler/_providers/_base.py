"""The one small interface every node provider implements: create, terminate, list."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class LaunchError(Exception):
    """A node could not be launched; the message says why (shown by ``actorlib status``)."""


@dataclass(frozen=True)
class Instance:
    """A machine, process or pod the provider runs for the cluster."""

    instance_id: str
    node_type: str
    ip: str = ""
    state: str = "running"  # pending | running


@dataclass(frozen=True)
class Placement:
    """Where new nodes go: the head they join, and the token file they prove themselves with."""

    head_address: str  # HEAD_IP:PORT, reachable from worker nodes
    token_file: str  # the cluster token on the head's machine


class NodeProvider(Protocol):
    """Launches and stops worker nodes. Every method is async and may be cancelled."""

    name: str

    async def create(self, node_type: str, instance_id: str) -> Instance:
        """Start one node of ``node_type``; return once it was started (it joins the head later).
        Raises LaunchError."""

    async def terminate(self, instance_id: str) -> None:
        """Stop the node (after the autoscaler drained it). Idempotent."""

    async def list(self) -> list[Instance]:
        """The cluster's instances that exist now."""
