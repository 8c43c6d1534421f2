"""Driver start-up on the runtime's loop: find or start the cluster, register, connect."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .. import _ids
from .._core import Runtime
from .._session import session_of
from .._wire import (
    AuthenticationError,
    DriverRegistered,
    HeadMessage,
    LogBatch,
    RegisterDriver,
    SubscribeLogs,
    read_token,
    unix_address,
)
from ._local import start_local_cluster
from ._options import InitOptions

ADDRESS_ENV = "ACTORLIB_ADDRESS"
TOKEN_ENV = "ACTORLIB_TOKEN"


async def bootstrap_driver(runtime: Runtime, options: InitOptions) -> None:
    ident = runtime.identity
    if options.address is None:
        cluster = await start_local_cluster(runtime.nursery, options)
        runtime.on_teardown.append(cluster.stop)
        session, head = cluster.session, cluster.head_address
    else:
        session, head = _resolve(options.address)
    ident.session_dir = session
    runtime.head_address = head  # type: ignore[attr-defined]
    ident.token = os.environ.get(TOKEN_ENV) or read_token(session / "token")
    try:
        channel = await runtime.connect(head, HeadMessage)
    except OSError as exc:
        raise ConnectionError(f"cannot reach the actorlib cluster at {head}: {exc}") from None
    except AuthenticationError as exc:
        raise ConnectionError(f"the cluster at {head} refused this driver: {exc}") from None
    ident.head_address = head
    await runtime.head.attach(channel)
    entrypoint = " ".join(sys.argv)[:200]
    reply = await runtime.head.request(
        lambda req: RegisterDriver(req=req, pid=os.getpid(), namespace=options.namespace, entrypoint=entrypoint)
    )
    assert isinstance(reply, DriverRegistered)
    node = reply.node
    ident.job_id = reply.job_id
    ident.namespace = options.namespace or f"anonymous-{reply.job_id}"  # Ray: each job its own, unless named
    ident.node_id = node.node_id
    ident.node_address = node.address
    ident.store_address = node.store
    ident.address = unix_address(session / "sockets" / f"d-{_ids.short(ident.core_id)}.sock")
    ident.address = await runtime.nursery.start(runtime.peers.serve, ident.address)
    await runtime.peers.connect_node()
    if options.log_to_driver:
        runtime.peers.on_logs = print_logs
        runtime.peers.node_send(SubscribeLogs(job_id=ident.job_id))


def _resolve(address: str) -> tuple[Path, str]:
    session = session_of(address)
    if session is None:
        raise ValueError(f"cannot connect to {address!r}: only unix:<session>/sockets/head.sock addresses are supported")
    return session, address


def print_logs(batch: LogBatch) -> None:
    """Print worker output in the driver's terminal, prefixed like ``(square pid=1234)``."""
    for line in batch.lines:
        stream = sys.stderr if line.stream == "err" else sys.stdout
        stream.write(f"({line.name or 'worker'} pid={line.pid}) {line.text}\n")
    sys.stdout.flush()
    sys.stderr.flush()
