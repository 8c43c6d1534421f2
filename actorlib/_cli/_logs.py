"""``actorlib logs``: list the log files per node, or stream one from the node that has it."""

from __future__ import annotations

import sys

import click

from ..util import state
from ._query import address_option, call, console
from ._render import table


@click.command()
@address_option
@click.option("--actor", "actor_id", help="The log of this actor's current process.")
@click.option("--task", "task_id", help="The log of the worker that ran this task (from the recent task history).")
@click.option("--node", "node_id", help="This node's own log, or with --worker/--file one of its files.")
@click.option("--worker", "pid", type=int, help="The log of the worker with this pid (with --node).")
@click.option("--file", "filename", help="This file of the node's logs directory (with --node).")
@click.option("--err", is_flag=True, help="The stderr log (.err) instead of stdout (.out).")
@click.option("--tail", type=int, default=-1, help="Start this many lines before the end.")
@click.option("--follow", "-f", is_flag=True, help="Keep printing what is appended (Ctrl-C to stop).")
def logs(address: str, actor_id: str | None, task_id: str | None, node_id: str | None, pid: int | None,
         filename: str | None, err: bool, tail: int, follow: bool) -> None:  # fmt: skip
    """Print a worker's, an actor's or a node's log, read through the node that has it.

    With no target, list the log files of every node.
    """
    if not (actor_id or task_id or node_id):
        if pid or filename:
            raise click.UsageError("--worker and --file need --node")
        files = call(state.list_logs, address, limit=10_000, raise_on_missing_output=False)
        console().print(table("logs", files, len(files), detail=False))
        return
    chunks = call(
        state.get_log, address, node_id=node_id, filename=filename, actor_id=actor_id, task_id=task_id, pid=pid,
        suffix="err" if err else "out", tail=tail, follow=follow,
    )  # fmt: skip
    try:
        for chunk in chunks:
            sys.stdout.write(chunk)
            sys.stdout.flush()
    except KeyboardInterrupt:
        pass
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        chunks.close()
