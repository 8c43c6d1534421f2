"""The embedded local cluster: a head process (with its node) supervised by the driver."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import msgspec
import trio

import supervisors

from .._early_head import EarlyHead
from .._environ import with_own_code
from .._session import head_address, new_session, remove_sockets
from ._options import InitOptions

HEAD_SHUTDOWN = 10.0
HEAD_START_TIMEOUT = 60.0


class LocalCluster:
    """A running embedded cluster: its session, head address, and how to stop it."""

    def __init__(
        self, session: Path, head_address: str, supervisor: supervisors.Supervisor, finished: trio.Event, dashboard_url: str = ""
    ) -> None:
        self.session = session
        self.head_address = head_address
        self.dashboard_url = dashboard_url  # its HTTP API, if init(include_dashboard=True)
        self.supervisor = supervisor
        self._finished = finished

    async def stop(self) -> None:
        """Stop the head (and so every worker) and wait for it. Idempotent."""
        self.supervisor.request_stop("actorlib.shutdown()")
        await self._finished.wait()
        remove_sockets(self.session)


async def start_local_cluster(nursery: trio.Nursery, options: InitOptions, early: EarlyHead | None = None) -> LocalCluster:
    """Start a head process in a new session (or adopt ``early``, started for these options
    already), supervised by a task in ``nursery``.

    The head is a temporary child of a small supervisor: it is stopped (with
    its workers) by :meth:`LocalCluster.stop`, and dies with this process if
    this process is killed. Raises RuntimeError with the head's stderr if it
    fails to start.
    """
    spawned: supervisors.Spawned | None
    if early is not None:
        session, spawned = early.session, early.spawned
        argv = list(spawned.popen.args)  # type: ignore[arg-type]
    else:
        session, spawned = new_session(), None
        argv = [sys.executable, "-m", "actorlib._head", msgspec.json.encode(options.local_config(session)).decode()]
    logs = session / "logs"
    heads: list[supervisors.ProcessChild] = []

    def start_head() -> supervisors.ProcessChild:
        nonlocal spawned
        env = with_own_code(dict(os.environ))  # its code is this driver's (the early head's too)
        heads.append(supervisors.ProcessChild(argv, env=env, stdout=logs / "head.out", stderr=logs / "head.err", spawned=spawned))
        spawned = None
        return heads[-1]

    spec = supervisors.ChildSpec(
        id="head",
        start=start_head,
        restart="temporary",
        shutdown=HEAD_SHUTDOWN,
        start_timeout=HEAD_START_TIMEOUT,
    )
    supervisor = supervisors.Supervisor([spec], id="driver")
    finished = trio.Event()
    failure: list[BaseException] = []

    async def run(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            await supervisor.run(task_status=task_status)
        except supervisors.StartError as exc:
            failure.append(exc)
            task_status.started()
        finally:
            finished.set()

    await nursery.start(run)
    if failure:
        raise RuntimeError(f"the local cluster failed to start: {failure[0]}\n{_tail(logs / 'head.err')}")
    dashboard = heads[-1].ready_info.get("dashboard", "") if heads else ""
    return LocalCluster(session, head_address(session), supervisor, finished, dashboard)


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
