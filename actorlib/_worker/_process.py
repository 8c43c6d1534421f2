"""A worker process: ``python -m actorlib._worker`` (started by its node, never by hand)."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import supervisors

from .._phases import mark
from .. import _ids
from .._titles import set_title
from .._core import Identity, Runtime, set_current
from .._runtime_env import inherited_env
from .._environ import ACTOR_PROCESS_ENV
from .._wire import ActorInitDone, ActorReady, ActorSpecRequest, InitActor, WorkerBlocked, WorkerUnblocked, join, read_token, unix_address
from ._exec import ExecServer
from ._executor import Executor
from ._packages import enter_packages
from ._task_events import TaskRecorder


log = logging.getLogger("actorlib.worker")

def main() -> None:
    set_title("IDLE")
    link = supervisors.connect_parent()
    env = os.environ
    actor = bool(env.pop(ACTOR_PROCESS_ENV, ""))  # not for what this process starts
    session = Path(env["ACTORLIB_SESSION_DIR"])
    worker_id = bytes.fromhex(env["ACTORLIB_WORKER_ID"])
    core, exec_ = _listen_addresses(session, worker_id, env.get("ACTORLIB_NODE_IP", ""))
    token = read_token(Path(env.get("ACTORLIB_TOKEN_FILE") or session / "token"))
    try:
        packages = enter_packages(env, session, env.get("ACTORLIB_HEAD_ADDRESS", ""), token)
    except RuntimeError as exc:
        link.report_failure(exc)
        print(exc, file=sys.stderr, flush=True)
        sys.exit(1)
    identity = Identity(
        mode="worker",
        core_id=worker_id,
        session_dir=session,
        token=token,
        address=core,
        node_id=bytes.fromhex(env["ACTORLIB_NODE_ID"]),
        node_address=env["ACTORLIB_NODE_ADDRESS"],
        store_address=env["ACTORLIB_STORE_ADDRESS"],
        store_public=env.get("ACTORLIB_STORE_PUBLIC", ""),
        head_address=env.get("ACTORLIB_HEAD_ADDRESS", ""),
        env={**inherited_env(env), **packages},  # its tasks' own tasks and actors inherit its runtime_env
    )
    runtime = Runtime(identity)
    runtime.task_events = TaskRecorder(worker_id, os.getpid(), lambda message: _send_quietly(runtime, message))
    runtime.executor = executor = Executor(runtime)
    server = ExecServer(exec_, identity.token, executor.handle)

    def blocked(is_blocked: bool) -> None:
        message = (WorkerBlocked if is_blocked else WorkerUnblocked)(worker_id=worker_id)
        runtime.soon(_send_quietly, runtime, message)

    runtime.blocked_hook = blocked
    runtime.on_fenced = lambda reason: _fenced(link, identity.node_id, reason)
    try:
        runtime.start(_bootstrap)
    except Exception as exc:  # e.g. its node did not answer the handshake in time: say so, not just "exit code 1"
        link.report_failure(exc)
        raise
    set_current(runtime)
    link.on_stop(lambda reason: _exit_now())
    mark("worker: ready")
    link.ready({"core": identity.address, "exec": server.address})
    if actor and not _become_actor(runtime, executor, worker_id):
        return  # it ran its async actor's event loop until the process ended
    server.serve_forever()


def _become_actor(runtime: Runtime, executor: Executor, worker_id: bytes) -> bool:
    """Ask the node which actor this process is, over the connection it already has (no
    connection and handshake of the node's own), and become it on this thread: ``__init__``
    runs, then ActorInitDone goes back the same way. False once an async actor's loop ended."""
    reply = runtime.call(runtime.peers.node_request, lambda req: ActorSpecRequest(req=req, worker_id=worker_id))
    return executor.handle(InitActor(req=0, spec=reply.spec, incarnation=0), _ToNode(runtime, worker_id))


class _ToNode:
    """Where the actor's ActorReady goes: this process's connection to its node, as ActorInitDone."""

    closed = False

    def __init__(self, runtime: Runtime, worker_id: bytes) -> None:
        self._runtime = runtime
        self._worker_id = worker_id

    def send_threadsafe(self, ready: ActorReady) -> None:
        done = ActorInitDone(worker_id=self._worker_id, error=ready.error, exec=ready.exec)
        self._runtime.soon(_send_quietly, self._runtime, done)


def _listen_addresses(session: Path, worker_id: bytes, ip: str) -> tuple[str, str]:
    """Where this worker listens: Unix sockets, plus TCP on ``ip`` in a multi-node cluster."""
    sockets = session / "sockets"
    short = _ids.short(worker_id)
    core = [unix_address(sockets / f"w-{short}.sock")]
    exec_ = [unix_address(sockets / f"w-{short}-x.sock")]
    if ip:
        core.append(f"{ip}:0")
        exec_.append(f"{ip}:0")
    return join(core), join(exec_)


async def _bootstrap(runtime: Runtime) -> None:
    ident = runtime.identity
    ident.address = await runtime.nursery.start(runtime.peers.serve, ident.address)
    await runtime.peers.connect_node()
    runtime.nursery.start_soon(runtime.task_events.run)
    if os.environ.get("ACTORLIB_HEAD_NODE"):
        # The head never declares its own node dead: hear other nodes' deaths only once this
        # worker owns work that may be there (a head connection per actor costs the head).
        runtime.listen_at_first_submit = True
    else:
        runtime.nursery.start_soon(runtime.head.listen)  # to hear if its node is declared dead


def _send_quietly(runtime: Runtime, message: object) -> None:
    try:
        runtime.peers.node_send(message)
    except Exception:
        pass  # the node is gone; this process is about to be stopped


def _fenced(link: supervisors.ParentLink, node_id: bytes, reason: str) -> None:
    """The head declared this worker's node dead (its node froze, say) and has its work run
    elsewhere: stop now, with anything this worker started, rather than run it twice."""
    print(f"actorlib: the head declared node {node_id.hex()} dead ({reason}); this worker stops", file=sys.stderr, flush=True)
    link.die()


def _exit_now() -> None:
    try:
        report = sys.modules.get("actorlib._app_metrics._report")  # loaded once it recorded a metric
        if report is not None:
            report.report_at_exit()
    except Exception:  # a bug in the report must not keep this process from exiting now
        log.exception("the last application metrics were not sent; the node keeps what came before")
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(0)
