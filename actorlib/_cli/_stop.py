"""``actorlib stop``: stop this user's actorlib heads and nodes on this machine, and nothing else."""

from __future__ import annotations

import signal
import time

import click
import psutil

from ..cluster import running_sessions


@click.command()
@click.option("--force", is_flag=True, help="SIGKILL at once instead of asking first.")
@click.option("--grace-period", type=float, default=10.0, show_default=True, help="Seconds to wait before SIGKILL.")
def stop(force: bool, grace_period: float) -> None:
    """Stop the heads and nodes this user started on this machine (gracefully, then forcibly).

    Processes are found through the session directories, and each is checked
    to be an actorlib head or node of this user before it is signalled.
    """
    processes = []
    for kind in ("node.json", "daemon.json", "head.json"):  # a daemon would restart its head
        for _session, info in running_sessions(kind):
            try:
                processes.append(psutil.Process(int(info["pid"])))  # type: ignore[arg-type]
            except psutil.NoSuchProcess:
                pass
    if not processes:
        click.echo("No actorlib processes of yours are running on this machine.")
        return
    for process in processes:
        _signal(process, signal.SIGKILL if force else signal.SIGTERM)
    alive = _wait_gone(processes, grace_period)
    for process in alive:
        _signal(process, signal.SIGKILL)
    _wait_gone(alive, 5)
    forced = f" ({len(alive)} had to be killed)" if alive and not force else ""
    click.echo(f"Stopped {len(processes)} actorlib process{'es' if len(processes) != 1 else ''}{forced}.")



def _wait_gone(processes: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Poll until every process has exited (or is a zombie its parent will reap); return the rest.

    Not ``psutil.wait_procs``: on recent kernels its ``pidfd_open`` of a process that is
    exiting can fail with ENOENT, which psutil does not expect, and these are not our
    children to reap anyway.
    """
    deadline = time.monotonic() + timeout
    while True:
        alive = [process for process in processes if _running(process)]
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.05)


def _running(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _signal(process: psutil.Process, sig: int) -> None:
    try:
        process.send_signal(sig)
    except psutil.NoSuchProcess:
        pass
