"""A worker process: ``python -m actorlib._worker`` (started by its node, never by hand)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import supervisors

from .. import _ids
from .._core import Identity, Runtime, set_current
from .._wire import WorkerBlocked, WorkerUnblocked, read_token, unix_address
from ._exec import ExecServer, exec_address
from ._executor import Executor


def main() -> None:
    link = supervisors.connect_parent()
    env = os.environ
    session = Path(env["ACTORLIB_SESSION_DIR"])
    worker_id = bytes.fromhex(env["ACTORLIB_WORKER_ID"])
    identity = Identity(
        mode="worker",
        core_id=worker_id,
        session_dir=session,
        token=read_token(session / "token"),
        address=unix_address(session / "sockets" / f"w-{_ids.short(worker_id)}.sock"),
        node_id=bytes.fromhex(env["ACTORLIB_NODE_ID"]),
        node_address=env["ACTORLIB_NODE_ADDRESS"],
        store_address=env["ACTORLIB_STORE_ADDRESS"],
        head_address=env.get("ACTORLIB_HEAD_ADDRESS", ""),
    )
    runtime = Runtime(identity)
    runtime.executor = executor = Executor(runtime)
    server = ExecServer(exec_address(identity.address), identity.token, executor.handle)

    def blocked(is_blocked: bool) -> None:
        message = (WorkerBlocked if is_blocked else WorkerUnblocked)(worker_id=worker_id)
        runtime.soon(_send_quietly, runtime, message)

    runtime.blocked_hook = blocked
    runtime.start(_bootstrap)
    set_current(runtime)
    link.on_stop(lambda reason: _exit_now())
    link.ready()
    server.serve_forever()


async def _bootstrap(runtime: Runtime) -> None:
    await runtime.nursery.start(runtime.peers.serve, runtime.identity.address)
    await runtime.peers.connect_node()


def _send_quietly(runtime: Runtime, message: object) -> None:
    try:
        runtime.peers.node_send(message)
    except Exception:
        pass  # the node is gone; this process is about to be stopped


def _exit_now() -> None:
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(0)
