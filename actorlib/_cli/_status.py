"""``actorlib status``: nodes, resources used/total, pending demands; once or live (``--watch``)."""

from __future__ import annotations

import click
from rich.live import Live
from rich.text import Text

from ..cluster import AutoscalerView, NodeView, PlacementGroupView, cluster_info, is_group_resource
from ._query import console

MIN_INTERVAL = 1.0


@click.command()
@click.option("--address", envvar="ACTORLIB_ADDRESS", default="auto", show_default=True, help="The head's address.")
@click.option("-v", "--verbose", is_flag=True, help="Also show each node.")
@click.option("--watch", is_flag=True, help="Refresh the report in place until Ctrl-C.")
@click.option("--interval", type=float, default=2.0, show_default=True, help="Seconds between refreshes with --watch (at least 1).")
def status(address: str, verbose: bool, watch: bool, interval: float) -> None:
    """Show the cluster's nodes, resource usage and pending demands."""
    if not watch:
        click.echo(_report(address, verbose))
        return
    with Live(console=console(), auto_refresh=False) as live:
        try:
            while True:
                try:
                    text = Text(_report(address, verbose))
                except click.ClickException as exc:
                    text = Text(f"error: {exc.format_message()}", style="red")
                live.update(text, refresh=True)
                _pause(max(MIN_INTERVAL, interval))
        except KeyboardInterrupt:
            pass


def _pause(seconds: float) -> None:
    import time

    time.sleep(seconds)  # the CLI's own pace between refreshes; Ctrl-C interrupts it


def _report(address: str, verbose: bool) -> str:
    try:
        info = cluster_info(address)
    except (ConnectionError, OSError, TimeoutError) as exc:
        raise click.ClickException(str(exc)) from None
    return render(info.head, info.nodes, verbose, info.groups, info.autoscaler)


def _add(total: dict[str, float], more: dict[str, float]) -> None:
    for name, qty in more.items():
        total[name] = total.get(name, 0.0) + qty


UNRESPONSIVE = 1.0  # seconds without a heartbeat (two periods) before a node is shown as unresponsive


def render(
    head: str,
    nodes: list[NodeView],
    verbose: bool,
    groups: list[PlacementGroupView] = (),  # type: ignore[assignment]
    autoscaler: AutoscalerView | None = None,
) -> str:
    """The status report (pure: tested without a cluster)."""
    alive = [n for n in nodes if n.alive]
    stopped = [n for n in nodes if not n.alive and n.draining]  # drained, then stopped by the autoscaler
    dead = [n for n in nodes if not n.alive and not n.draining]
    quiet = [n for n in alive if n.silent > UNRESPONSIVE]
    counts = f"Nodes: {len(alive) - len(quiet)} healthy, {len(quiet)} unresponsive, {len(dead)} dead"
    lines = [f"Cluster at {head}", counts + (f", {len(stopped)} stopped by the autoscaler" if stopped else "")]
    for node in quiet:
        lines.append(f"  unresponsive: {node.node_id.hex()[:12]} ({node.ip}), no heartbeat for {node.silent:.1f} s")
    for node in dead:
        lines.append(f"  dead: {node.node_id.hex()[:12]} ({node.ip})")
    total: dict[str, float] = {}
    free: dict[str, float] = {}
    for node in alive:
        _add(total, node.total)
        _add(free, node.available)
    lines.append("Resources (used / total):")
    lines += [f"  {line}" for line in _usage(total, free)]
    lines.append("Pending demands:")
    demands = _demands(alive, groups)
    lines += [f"  {line}" for line in demands] or ["  (none)"]
    if autoscaler is not None:
        lines += render_autoscaler(autoscaler, nodes)
    if verbose:
        for node in alive:
            role = "head" if node.is_head else "node"
            lines.append(f"{role} {node.node_id.hex()[:12]} at {node.ip} (pid {node.pid}), {node.pending} pending")
            lines += [f"    {line}" for line in _usage(node.total, node.available)]
    return "\n".join(lines)


def render_autoscaler(view: AutoscalerView, nodes: list[NodeView]) -> list[str]:
    """The autoscaler's part of the report: workers per type, launches, failures, drains."""
    import time

    workers = ", ".join(f"{count} {name}" for name, count in sorted(view.workers.items())) or "none"
    lines = [f"Autoscaler ({view.provider} provider, cluster {view.cluster_name!r}): workers {workers} (max {view.max_workers})"]
    now = time.time()
    lines.append("Pending launches:")
    lines += [f"  {l.node_type} {l.instance_id}, for {max(0.0, now - l.since):.0f}s" for l in view.launching] or ["  (none)"]
    if view.failed:
        lines.append("Recent failed launches:")
        for failure in view.failed:
            retry = f"; {failure.node_type} is tried again in {failure.retry_in:g}s" if failure.retry_in else ""
            lines.append(f"  {failure.node_type} {failure.instance_id}, {max(0.0, now - failure.since):.0f}s ago: {failure.error}{retry}")
    if view.draining:
        ips = {n.node_id: n.ip for n in nodes}
        lines.append("Draining (taking no new work, stopped once idle):")
        lines += [f"  node {node_id.hex()[:12]} ({ips.get(node_id, '?')})" for node_id in view.draining]
    if view.requested:
        lines.append("Requested (request_resources): " + ", ".join(_describe(b) for b in view.requested))
    if view.infeasible:
        lines.append("Infeasible (no node type can hold these):")
        lines += [f"  {_describe(shape)}" for shape in view.infeasible]
    return lines


def _usage(total: dict[str, float], free: dict[str, float]) -> list[str]:
    """A line per plain resource; what placement groups reserve of it is said beside it."""
    lines = []
    for name in sorted(n for n in total if not is_group_resource(n)):
        line = _line(name, total[name] - free.get(name, 0.0), total[name])
        group_names = [n for n in total if _wildcard_of(n) == name]
        reserved = sum(total[n] for n in group_names)
        if reserved:
            busy = reserved - sum(free.get(n, 0.0) for n in group_names)
            line += f"  ({_amount(name, reserved)} reserved in placement groups, {_amount(name, busy)} of it in use)"
        lines.append(line)
    return lines


def _demands(nodes: list[NodeView], groups: list[PlacementGroupView]) -> list[str]:
    counts: dict[str, int] = {}
    for node in nodes:
        for demand in node.demands:
            what = "task lease requests" if demand.kind == "task" else "actors"
            key = f"{_describe(demand.shape)} ({what})"
            counts[key] = counts.get(key, 0) + demand.count
    lines = [f"{count} x {key}" for key, count in sorted(counts.items())]
    for group in groups:
        if group.state in ("PENDING", "RESCHEDULING"):
            bundles = ", ".join(_describe(b) for b in group.bundles)
            name = f" {group.name!r}" if group.name else ""
            why = f": {group.reason}" if group.reason else ""
            lines.append(f"placement group {group.pg_id.hex()[:12]}{name} {group.strategy} [{bundles}] {group.state}{why}")
    return lines


def _wildcard_of(name: str) -> str | None:
    """``CPU`` for ``CPU_group_<pg>`` (a group's total of CPUs on a node), else None."""
    base, sep, rest = name.rpartition("_group_")
    return base if sep and "_" not in rest and base != "bundle" else None


def _describe(shape: dict[str, float]) -> str:
    """``{CPU: 1}``, or ``{CPU: 1} in placement group 1a2b3c`` for a shape asked of a group."""
    plain = {n: q for n, q in shape.items() if not is_group_resource(n)}
    groups = {name.rpartition("_group_")[2] for name in shape if _wildcard_of(name) is not None}
    for name, qty in shape.items():
        base = _wildcard_of(name)
        if base is not None:
            plain[base] = qty
    text = "{" + ", ".join(f"{n}: {_amount(n, q)}" for n, q in sorted(plain.items())) + "}"
    return text + (f" in placement group {sorted(groups)[0][:12]}" if groups else "")


def _amount(name: str, qty: float) -> str:
    return f"{qty / 2**30:.2f} GiB" if name in ("memory", "object_store_memory") else f"{qty:g}"


def _line(name: str, used: float, total: float) -> str:
    if name in ("memory", "object_store_memory"):
        return f"{name:<22} {used / 2**30:8.2f} / {total / 2**30:.2f} GiB"
    return f"{name:<22} {used:8g} / {total:g}"
