"""``actorlib list|get|summary``: the state listings, with Ray's names and filters."""

from __future__ import annotations

import click

from ..util import state
from ..util.state import DEFAULT_LIMIT, KINDS, ListResult, QueryError, parse_filter
from ._query import address_option, call, console, echo_json, fetch
from ._render import summary_table, table

LIST_KINDS = ["nodes", "actors", "tasks", "jobs", "workers", "objects", "placement-groups", "logs"]
GET_KINDS = ["actor", "task", "node", "job", "worker", "placement-group"]
SUMMARY_KINDS = ["tasks", "actors", "objects"]


@click.command(name="list")
@click.argument("kind", type=click.Choice(LIST_KINDS))
@address_option
@click.option("--filter", "-f", "filters", multiple=True, metavar="KEY=VALUE", help="Keep items whose field KEY is (or with != is not) VALUE; repeatable.")
@click.option("--limit", type=click.IntRange(min=1), default=DEFAULT_LIMIT, show_default=True, help="At most this many items.")
@click.option("--detail", is_flag=True, help="Every field, not only the main columns.")
@click.option("--json", "as_json", is_flag=True, help="Print the items as a JSON list.")
def list_(kind: str, address: str, filters: tuple[str, ...], limit: int, detail: bool, as_json: bool) -> None:
    """List the cluster's nodes, actors, tasks, jobs, workers, objects, placement groups or log files.

    Tasks come from a bounded recent history each node keeps (the newest first).
    """
    kind = kind.replace("-", "_")
    try:
        predicates = [parse_filter(text) for text in filters]
    except QueryError as exc:
        raise click.BadParameter(str(exc), param_hint="--filter") from None
    lister = getattr(state, f"list_{kind}")
    items = fetch(f"listing {kind.replace('_', ' ')}…", lister, address, predicates, limit, detail=detail, raise_on_missing_output=False)
    if as_json:
        echo_json(items)
        return
    console().print(table(kind, items, _total(kind, address, predicates, len(items), limit), detail))


def _total(kind: str, address: str, predicates: list, shown: int, limit: int) -> int:
    """How many matched in all (asked again only when the listing was cut at ``limit``)."""
    if shown < limit:
        return shown
    import msgspec

    payload = call(state.query, kind, address=address, filters=predicates, limit=limit)
    return msgspec.msgpack.decode(payload, type=ListResult[KINDS[kind]]).total  # type: ignore[valid-type]


@click.command()
@click.argument("kind", type=click.Choice(GET_KINDS))
@click.argument("id")
@address_option
@click.option("--json", "as_json", is_flag=True, help="Print it as JSON.")
def get(kind: str, id: str, address: str, as_json: bool) -> None:
    """Show one actor, task, node, job, worker or placement group by its id (or a prefix of it)."""
    getter = getattr(state, f"get_{kind.replace('-', '_')}")
    item = call(getter, id, address)
    if item is None:
        raise click.ClickException(f"no {kind} with an id starting with {id!r}")
    if as_json:
        echo_json(item)
        return
    out = console()
    width = max(len(name) for name in type(item).__struct_fields__)
    for name in type(item).__struct_fields__:
        out.print(f"{name:<{width}}  {getattr(item, name)}", highlight=False, markup=False)


@click.command()
@click.argument("kind", type=click.Choice(SUMMARY_KINDS))
@address_option
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def summary(kind: str, address: str, as_json: bool) -> None:
    """Count tasks or actors by state and by function or class (objects: by node)."""
    result = fetch(f"summarising {kind}…", getattr(state, f"summarize_{kind}"), address)
    if as_json:
        echo_json(result)
        return
    console().print(summary_table(result))
