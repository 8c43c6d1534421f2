"""``actorlib timeline``: recent tasks and actor calls as a Chrome trace."""

from __future__ import annotations

import click

from ..util import state
from ._query import address_option, fetch


@click.command()
@address_option
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False, writable=True), required=True, help="Where to write the trace (JSON).")
def timeline(address: str, output: str) -> None:
    """Write recent tasks and actor calls as a Chrome trace: open it in Perfetto or chrome://tracing.

    One process row per node, one thread row per worker; the tasks are those in
    the nodes' bounded task histories.
    """
    events = fetch("collecting task events…", state.timeline, address, output)
    tasks = sum(1 for event in events if event.get("ph") == "X")
    click.echo(f"wrote {tasks} tasks to {output}")
