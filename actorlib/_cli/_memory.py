"""``actorlib memory`` (Ray's ``ray memory``): objects per node and who holds references to them."""

from __future__ import annotations

import click

from ..util import state
from ._query import address_option, console, echo_json, fetch
from ._render import MEMORY_SORTS, memory_renderable


@click.command()
@address_option
@click.option("--node", "node_prefix", default="", metavar="ID", help="Only the node whose id starts with ID.")
@click.option("--sort-by", type=click.Choice(sorted(MEMORY_SORTS)), default="size", show_default=True, help="Order of each node's references.")
@click.option("--num-entries", "limit", type=click.IntRange(min=1), default=None, help="At most this many references per node.")
@click.option("--stats-only", is_flag=True, help="Only each node's summary line.")
@click.option("--json", "as_json", is_flag=True, help="Print the whole answer as JSON.")
def memory(address: str, node_prefix: str, sort_by: str, limit: int | None, stats_only: bool, as_json: bool) -> None:
    """Objects per node: what each store holds, and every reference the node's drivers and
    workers hold (size, where the value lives, owner, kind of reference, borrowers).

    The first place to look for a leak: a reference kept by mistake shows up with its holder's
    pid; a store object that no process reports a reference to is flagged.
    """
    result = fetch("collecting objects…", state.memory, address)
    if node_prefix:
        result.nodes = [node for node in result.nodes if node.node_id.startswith(node_prefix)]
        if not result.nodes:
            raise click.ClickException(f"no live node whose id starts with {node_prefix!r}")
    if as_json:
        echo_json(result)
        return
    console().print(memory_renderable(result, stats_only, sort_by, limit))
