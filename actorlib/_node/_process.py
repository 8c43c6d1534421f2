"""A node process: ``python -m actorlib._node CONFIG_JSON`` (started by ``actorlib start --address``).

::

    node-host (one_for_one)            + a zygote forking the workers
    ├─ node-<id>      the node subtree (workers, actors, jobs, service)
    └─ head-link      registration, heartbeats, the head's commands (significant)

If the head stays unreachable past the grace period, the head link ends and
the whole node shuts down (exit status 3): no zombie nodes.
"""

from __future__ import annotations

import logging
import os
import resource
import sys
from pathlib import Path
from typing import Any

import msgspec
import trio

import supervisors

from .._phases import mark
from .._titles import set_title
from .._wire import read_token
from .._wire._messages import prepare_decoders
from ._config import NodeConfig
from ._head_link import HeadLink
from ._tree import node_spec

WORKER_MODULES = ["actorlib._worker._process"]
FENCED_EXIT = 3


def main(argv: list[str]) -> None:
    run_node_process(argv, _serve, "node")


def run_node_process(argv: list[str], serve: Any, role: str) -> None:
    """The body of a head or node process: ``serve(link, config, zygote)`` as a supervised child.

    ``argv[0]`` is its NodeConfig as JSON. The zygote is forked first, while this process
    has one thread and no Trio loop.
    """
    config = msgspec.json.decode(argv[0], type=NodeConfig)
    set_title(f"{role} {config.ip}" if config.tcp else role)
    configure_logging()
    raise_fd_limit()
    zygote = supervisors.Zygote.fork(preload=WORKER_MODULES, setup=_zygote_setup)
    mark(f"{role}: zygote forked")
    try:
        supervisors.run_child(serve, config, zygote)
    finally:
        zygote.close()


def _zygote_setup() -> None:
    set_title("zygote")
    prepare_decoders()  # before the zygote freezes its objects and forks workers
    _warm_trio()


def _warm_trio() -> None:
    """Run one empty Trio loop (and end it) in the zygote: what a first ``trio.run`` sets up
    once per process is then shared by every worker it forks, not written into each (about
    0.3 MiB of private memory per worker). No loop runs when the zygote forks."""

    async def nothing() -> None:
        await trio.sleep(0)

    trio.run(nothing)


def configure_logging() -> None:
    """Head and node processes log INFO and above to stderr (their session's ``logs/*.err``):
    nodes joining and dying, the autoscaler's launches, recoveries."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("hypercorn").propagate = False  # it has a handler of its own


tree_log = logging.getLogger("actorlib.tree")


def log_tree_event(event: supervisors.Event) -> None:
    """The ``on_event`` of a head's or node's root supervisor (inherited by the subtrees that
    have none of their own; the worker and actor pools have theirs): a service task that
    fails is restarted in the process, and without this its error would be said nowhere."""
    exit = event.exit
    who = event.path if event.pid is None else f"{event.path} (pid {event.pid})"
    if event.type == "exited" and exit is not None:
        if exit.kind is supervisors.ExitKind.ABNORMAL:
            tail = f"\n{exit.traceback.rstrip()}" if exit.traceback else ""
            tree_log.warning("%s failed: %s%s", who, exit.reason, tail)
        else:
            tree_log.info("%s ended: %s", who, exit.reason)
    elif event.type == "restarting":
        tree_log.warning("%s: restarting in %.2f s", who, event.delay or 0.0)
    elif event.type == "escalated":
        tree_log.error("%s gave up (too many restarts): %s", who, exit.reason if exit else "")


def raise_fd_limit() -> None:
    """The object store holds one file descriptor per object: allow as many as we may."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def write_ready_file(session: str | Path, name: str, info: dict[str, object]) -> None:
    """Publish a process's pid and addresses in its session (for ``actorlib stop``/``status``)."""
    path = Path(session) / name
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(msgspec.json.encode({"pid": os.getpid(), **info}))
    tmp.replace(path)


async def _serve(link: supervisors.ParentLink, config: NodeConfig, zygote: supervisors.Zygote) -> None:
    token = os.environ.get("ACTORLIB_TOKEN") or read_token(config.token_path)
    head = HeadLink(config.head_address, token, grace=config.grace)
    roots: list[supervisors.Supervisor] = []  # for the state API's tree, once it runs
    children = [
        node_spec(config, token, head, zygote, root=lambda: roots[0] if roots else None),
        supervisors.ChildSpec(
            id="head-link", start=lambda: supervisors.TaskChild(head.run), restart="temporary", significant=True
        ),
    ]
    async with trio.open_nursery() as nursery:
        await nursery.start(zygote.run)
        async with supervisors.open_supervisor(
            children, id="node-host", auto_shutdown="any_significant", on_event=log_tree_event
        ) as root:
            roots.append(root)
            service = head.service
            info = {"address": service.address, "node_id": config.node_id, "ip": config.ip, "labels": config.labels}
            write_ready_file(config.session_dir, "node.json", info)
            link.ready({"address": service.address})
            while root.state == "running":
                await trio.sleep(0.5)
        nursery.cancel_scope.cancel()
    why = "declared dead by the head" if head.refused else "cut off from the head"
    print(f"actorlib node {config.short}: {why} at {config.head_address}; stopped", file=sys.stderr)
    sys.exit(FENCED_EXIT)


if __name__ == "__main__":
    main(sys.argv[1:])
