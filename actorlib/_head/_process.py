"""The head process: ``python -m actorlib._head CONFIG_JSON``.

Its root supervisor runs the head service and the head machine's node::

    cluster (one_for_one, 3 restarts in 60 s)         + a zygote forking the workers
    ├─ head                  the head service (task)
    ├─ node-<id>             one_for_all
    │  ├─ workers            pool of worker processes
    │  ├─ actors             pool of actor supervisors
    │  ├─ jobs               pool of the job entrypoints placed on this node
    │  └─ service            leases, object store, logs (task)
    ├─ jobs
    │  └─ manager            the job manager: records, placement of entrypoints (task)
    ├─ http                  the HTTP API and dashboard (task; only with a dashboard port)
    ├─ dashboard             samples nodes' stats for the dashboard's plots (task; with http)
    └─ autoscaler            with a cluster config: launches and stops worker nodes (task)
"""

from __future__ import annotations

import sys
from pathlib import Path

import msgspec
import trio

import supervisors

from .._node import NodeConfig, node_spec
from .._node._process import log_tree_event, run_node_process, write_ready_file
from .._phases import mark
from .._wire import read_token
from ._registry import Registry
from ._service import HeadService
from ._services import HeadServices
from ._state import MemoryState, SqliteState

ROOT_INTENSITY = supervisors.Intensity(max_restarts=3, within=60)


def main(argv: list[str]) -> None:
    """``CONFIG_JSON``, or ``--local SESSION INIT_OPTIONS_JSON``: the head of a driver's local
    cluster, started before the driver has imported what it needs to write the config."""
    if argv[:1] == ["--local"] and len(argv) == 3:
        argv = [msgspec.json.encode(local_config(Path(argv[1]), argv[2])).decode()]
    run_node_process(argv, _serve, "head")


def local_config(session: Path, init_options: str) -> NodeConfig:
    """The node config ``init(**init_options)`` asks for (raises ValueError/TypeError as init() does)."""
    from .._driver._options import InitOptions

    return InitOptions.check(None, **msgspec.json.decode(init_options)).local_config(session)


async def _serve(link: supervisors.ParentLink, config: NodeConfig, zygote: supervisors.Zygote) -> None:
    token = read_token(config.token_path)
    registry = Registry()
    durable = config.tcp  # a standalone cluster keeps state across head restarts
    state_file = Path(config.session_dir) / "state.db"
    restarted = durable and state_file.exists()  # an earlier head of this cluster wrote it
    state = SqliteState(state_file) if durable else MemoryState()
    head = HeadService(
        config.head_listen, token, registry, heartbeat=config.heartbeat, node_timeout=config.node_timeout,
        state=state, recovery_grace=config.grace + config.node_timeout if durable else 0.0, restarted=restarted,
    )  # fmt: skip
    services = HeadServices(config, token, head, state)
    roots: list[supervisors.Supervisor] = []  # for the state API's tree, once it runs
    children = [
        supervisors.ChildSpec(id="head", start=lambda: supervisors.TaskChild(head.run)),
        node_spec(config, token, registry, zygote, root=lambda: roots[0] if roots else None),
        *services.children(),
    ]
    if config.autoscaling_config:  # `actorlib up`, or `start --head --autoscaling-config`
        from .._autoscaler import autoscaler_spec

        children.append(autoscaler_spec(config.autoscaling_config, head, str(config.token_path), config.session_dir))
    async with trio.open_nursery() as nursery:
        await nursery.start(zygote.run)
        async with supervisors.open_supervisor(
            children, id="cluster", intensity=ROOT_INTENSITY, on_event=log_tree_event
        ) as root:
            roots.append(root)
            if config.tcp:  # a standalone cluster: findable by `init(address="auto")` and `actorlib stop`
                info = {"address": head.address, "node_id": config.node_id, **services.ready_info()}
                write_ready_file(config.session_dir, "head.json", info)
            mark("head: ready")
            link.ready({"address": head.address, **services.ready_info()})
            await trio.sleep_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
