"""What the fault injector may hit: a cluster's processes, as its state API lists them.

Targets come from the head (``actorlib.util.state``): nodes with their pids,
the task workers and actor processes each node supervises. Nothing scans the
process table to find them. Before a signal is sent, the pid is checked
against this machine's process table only to make sure it is still the
process that was listed: it exists, it is titled ``actorlib::...``, and it was
started before it was listed (a pid reused since then is a newer process).
"""

from __future__ import annotations

import ipaddress
import time

import msgspec
import psutil

from .._titles import is_actorlib_title
from ..util import state

KINDS = ("workers", "actors", "nodes", "head")
LIMIT = 100_000  # every worker of a large cluster: a listing is cut to this many


class Target(msgspec.Struct, frozen=True, kw_only=True):
    """One process of the cluster the injector may signal."""

    kind: str  # workers | actors | nodes | head
    pid: int
    node_id: str
    node_ip: str
    name: str = ""  # the actor's class, "worker", "node", "head"
    actor_id: str = ""
    busy: bool = False  # a task worker that holds a lease (it runs, or is about to run, tasks)
    listed: float = 0.0  # time.time() when the head listed it


def list_targets(kind: str, address: str | None = None, timeout: float = 30.0) -> list[Target]:
    """The live processes of ``kind`` on this machine, as the cluster's head lists them now.

    Processes of nodes on other machines are left out (a pid means nothing here).
    Raises ValueError for an unknown kind, ConnectionError/TimeoutError if the head
    cannot be asked.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown target kind {kind!r}: expected one of {', '.join(KINDS)}")
    listed = time.time()
    nodes = state.list_nodes(address=address, limit=LIMIT, timeout=timeout, raise_on_missing_output=False)
    local = {n.node_id: n.node_ip for n in nodes if n.state == "ALIVE" and is_local(n.node_ip)}
    if kind in ("nodes", "head"):
        want_head = kind == "head"
        return [
            Target(kind=kind, pid=n.pid, node_id=n.node_id, node_ip=n.node_ip, name="head" if want_head else "node", listed=listed)
            for n in nodes
            if n.node_id in local and n.pid and n.is_head_node == want_head
        ]
    if kind == "actors":  # the head's directory: ALIVE means its __init__ returned
        actors = state.list_actors(
            address=address, filters=[("state", "=", "ALIVE")], limit=LIMIT, timeout=timeout, raise_on_missing_output=False
        )
        return [
            Target(
                kind=kind, pid=a.pid, node_id=a.node_id, node_ip=local[a.node_id], name=a.class_name,
                actor_id=a.actor_id, listed=listed,
            )  # fmt: skip
            for a in actors
            if a.node_id in local and a.pid
        ]
    workers = state.list_workers(
        address=address, filters=[("worker_type", "=", "WORKER")], limit=LIMIT, timeout=timeout,
        raise_on_missing_output=False,
    )  # fmt: skip
    return [
        Target(
            kind=kind, pid=w.pid, node_id=w.node_id, node_ip=local[w.node_id], name="worker", busy=w.state == "LEASED",
            listed=listed,
        )  # fmt: skip
        for w in workers
        if w.node_id in local and w.pid and w.state not in ("DEAD", "STARTING")
    ]


def is_local(ip: str) -> bool:
    """Whether ``ip`` is an address of this machine (loopback, or one of its interfaces)."""
    try:
        if ipaddress.ip_address(ip).is_loopback:
            return True
    except ValueError:
        return False
    return any(addr.address == ip for addrs in psutil.net_if_addrs().values() for addr in addrs)


def still_listed(target: Target) -> psutil.Process | None:
    """The process ``target`` names, if it is still the one the head listed (else None)."""
    try:
        process = psutil.Process(target.pid)
        with process.oneshot():
            if process.status() == psutil.STATUS_ZOMBIE:
                return None
            title = process.cmdline()
            started = process.create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None
    if not is_actorlib_title(title):
        return None
    if target.listed and started > target.listed + 0.01:  # started after it was listed: a reused pid
        return None
    return process
