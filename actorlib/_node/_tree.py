"""The supervision subtree of one node: ``node-<id>`` (one_for_all) over ``workers`` and ``service``."""

from __future__ import annotations

from collections.abc import Callable

import supervisors

from ._config import NodeConfig
from ._service import NodeService, NodeState, Registry

NODE_INTENSITY = supervisors.Intensity(max_restarts=3, within=60)


def node_spec(
    config: NodeConfig,
    token: str,
    registry: Registry,
    zygote: supervisors.Zygote | None = None,
    root: Callable[[], supervisors.Supervisor | None] | None = None,
) -> supervisors.ChildSpec:
    """The node subtree as a child spec for the process's root supervisor.

    ``one_for_all``: the service's leases, store and actor records describe
    the worker and actor processes, so if one side dies all restart together.
    """

    def children() -> list[supervisors.ChildSpec]:
        state = NodeState()

        def workers() -> supervisors.Child:
            pool = supervisors.Supervisor(id="workers", strategy="pool", backoff=None, on_event=state.on_pool_event)
            state.pool_supervisor = pool
            return supervisors.SupervisorChild(pool)

        def actors() -> supervisors.Child:
            pool = supervisors.Supervisor(id="actors", strategy="pool", backoff=None, on_event=state.on_actor_event)
            state.actors_supervisor = pool
            return supervisors.SupervisorChild(pool)

        def jobs() -> supervisors.Child:
            pool = supervisors.Supervisor(id="jobs", strategy="pool", backoff=None)
            state.jobs_supervisor = pool
            return supervisors.SupervisorChild(pool)

        def service() -> supervisors.Child:
            return supervisors.TaskChild(NodeService(config, token, registry, state, zygote, root).run)

        return [
            supervisors.ChildSpec(id="workers", start=workers),
            supervisors.ChildSpec(id="actors", start=actors),
            supervisors.ChildSpec(id="jobs", start=jobs),
            supervisors.ChildSpec(id="service", start=service),
        ]

    return supervisors.supervisor_spec(
        f"node-{config.short}", children, strategy="one_for_all", intensity=NODE_INTENSITY
    )
