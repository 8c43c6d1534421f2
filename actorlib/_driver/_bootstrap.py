"""Driver start-up on the runtime's loop: find or start the cluster, register, connect."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from .. import _ids
from .._core import Runtime
from .._core._packages import upload
from .._early_head import EarlyHead
from .._environ import ADDRESS_ENV, JOB_RUNTIME_ENV, NODE_ID_ENV, SUBMISSION_ID_ENV
from .._options import merge_runtime_env
from .._phases import mark
from .._runtime_env import check_runtime_env, env_of
from .._session import sessions_root
from .._wire import (
    AuthenticationError,
    Channel,
    ConnectionFailed,
    DriverRegistered,
    HeadMessage,
    LogBatch,
    NodeView,
    RegisterDriver,
    is_unix,
    join,
    local_part,
    parts,
    read_token,
    unix_address,
)
from ._discovery import Found, find
from ._local import start_local_cluster
from ._options import InitOptions



async def bootstrap_driver(runtime: Runtime, options: InitOptions, early: EarlyHead | None = None) -> None:
    """Start (or adopt ``early``, started already) or find the cluster, then register and connect."""
    ident = runtime.identity
    if options.address is None:
        cluster = await start_local_cluster(runtime.nursery, options, early)
        mark("driver: head ready")
        runtime.on_teardown.append(cluster.stop)
        ident.dashboard_url = cluster.dashboard_url or ""
        found = Found(cluster.head_address, read_token(cluster.session / "token"), cluster.session)
    else:
        found = find(options.address)
    session = found.session or _scratch_session(runtime)
    ident.session_dir = session
    ident.token = found.token
    ident.head_address = found.head
    try:
        channel = await runtime.connect(found.head, HeadMessage)
    except AuthenticationError as exc:
        raise ConnectionError(f"the cluster at {found.head} refused this driver: {exc}") from None
    except ConnectionFailed as exc:
        raise ConnectionError(f"cannot reach the actorlib cluster at {found.head}: {exc}") from None
    await runtime.head.attach(channel)
    ident.env = env_of(await upload(runtime, _job_runtime_env(options)))
    entrypoint = " ".join(sys.argv)[:200]
    submission_id = os.environ.get(SUBMISSION_ID_ENV, "")
    reply = await runtime.head.request(
        lambda req: RegisterDriver(
            req=req, pid=os.getpid(), namespace=options.namespace, entrypoint=entrypoint, submission_id=submission_id,
            node_id=_own_node(),
        )  # fmt: skip
    )
    assert isinstance(reply, DriverRegistered)
    node = reply.node
    ident.job_id = reply.job_id
    ident.namespace = options.namespace or f"anonymous-{reply.job_id}"  # Ray: each job its own, unless named
    ident.node_id = node.node_id
    ident.node_address = node.address
    ident.store_address = local_part(node.store) or node.store
    ident.store_public = node.store
    listen = [unix_address(session / "sockets" / f"d-{_ids.short(ident.core_id)}.sock")]
    ip = _tcp_ip(channel, node)
    if ip:
        listen.append(f"{ip}:0")
    ident.address = await runtime.nursery.start(runtime.peers.serve, join(listen))
    await runtime.peers.connect_node()
    if options.log_to_driver:
        runtime.peers.on_logs = print_logs
        runtime.peers.subscribe_logs(ident.job_id)
    runtime.warm_store()  # the driver is where most puts happen
    mark("driver: registered and connected")


def _own_node() -> bytes:
    """The node this process runs on, if it was started by one (a job's entrypoint is)."""
    try:
        return bytes.fromhex(os.environ.get(NODE_ID_ENV, ""))
    except ValueError:
        return b""


def _job_runtime_env(options: InitOptions) -> dict[str, object]:
    """A submitted job's runtime_env (from its manager), overridden field by field by init()'s."""
    inherited = os.environ.get(JOB_RUNTIME_ENV)
    try:
        job = check_runtime_env(json.loads(inherited), where="the job") if inherited else {}
    except (ValueError, TypeError):
        job = {}  # not ours to judge here: the job manager checked it
    return merge_runtime_env(job, options.runtime_env)


def _tcp_ip(channel: Channel, node: NodeView) -> str | None:
    """The IP to listen on, in a multi-node cluster (None in a single-node one)."""
    if all(is_unix(part) for part in parts(node.address)):
        return None
    sock = getattr(getattr(channel, "stream", None), "socket", None)
    try:
        local = sock.getsockname() if sock is not None else None
    except OSError:
        local = None
    return local[0] if isinstance(local, tuple) else node.ip


def _scratch_session(runtime: Runtime) -> Path:
    """A directory for this driver's sockets when the cluster has no session on this machine."""
    session = Path(tempfile.mkdtemp(prefix="driver_", dir=_ensure(sessions_root())))
    (session / "sockets").mkdir()
    (session / "logs").mkdir()

    async def remove() -> None:
        shutil.rmtree(session, ignore_errors=True)

    runtime.on_teardown.append(remove)
    return session


def _ensure(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def print_logs(batch: LogBatch) -> None:
    """Print worker output in the driver's terminal, prefixed like ``(square pid=1234)``."""
    for line in batch.lines:
        stream = sys.stderr if line.stream == "err" else sys.stdout
        stream.write(f"({line.name or 'worker'} pid={line.pid}) {line.text}\n")
    sys.stdout.flush()
    sys.stderr.flush()
