"""Node providers: where the autoscaler's nodes come from (this machine, SSH hosts, Kubernetes)."""

from __future__ import annotations

from typing import Any

from .._config import ClusterConfig, KubernetesProvider, LocalProvider, SshProvider
from ._base import Instance, LaunchError, NodeProvider, Placement

__all__ = ["Instance", "LaunchError", "NodeProvider", "Placement", "make_provider"]


def make_provider(config: ClusterConfig, placement: Placement, state_dir: Any = None) -> NodeProvider:
    """The provider ``config.provider`` names, launching nodes that join the head in ``placement``."""
    if isinstance(config.provider, LocalProvider):
        from ._local import LocalNodeProvider

        return LocalNodeProvider(config, placement)
    if isinstance(config.provider, SshProvider):
        from ._ssh import SshNodeProvider

        return SshNodeProvider(config, placement, state_dir)
    assert isinstance(config.provider, KubernetesProvider)
    from ._kubernetes import KubernetesNodeProvider

    return KubernetesNodeProvider(config, placement)
