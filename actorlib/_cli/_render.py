"""Rendering state for the terminal with rich: the tree, tables, summaries (pure: no I/O)."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from ..util.state import ClusterTree

COLUMNS = {  # the columns of a listing without --detail
    "nodes": ["node_id", "node_ip", "state", "is_head_node", "pid", "resources_total"],
    "actors": ["actor_id", "class_name", "state", "name", "job_id", "node_id", "pid", "num_restarts", "death_cause"],
    "tasks": ["task_id", "name", "state", "type", "job_id", "node_id", "worker_pid", "error_message"],
    "jobs": ["job_id", "submission_id", "type", "status", "entrypoint", "driver_pid", "start_time", "end_time"],
    "workers": ["worker_id", "node_id", "pid", "worker_type", "state", "job_id", "class_name", "cpu_percent", "rss"],
    "objects": ["object_id", "node_id", "object_size", "owner_id", "sealed"],
    "placement_groups": ["placement_group_id", "name", "state", "strategy", "bundles", "job_id"],
    "logs": ["node_id", "name", "size", "pid", "stream"],
}
ID_LIKE = {"node_id", "actor_id", "task_id", "worker_id", "object_id", "owner_id", "placement_group_id"}
STATE_STYLES = {
    "running": "green", "ALIVE": "green", "RUNNING": "green", "FINISHED": "dim",
    "restarting": "yellow", "RESTARTING": "yellow", "starting": "cyan", "PENDING_CREATION": "cyan",
    "stopping": "yellow", "failed": "bold red", "escalated": "bold red", "DEAD": "red", "FAILED": "red",
    "stopped": "dim",
}  # fmt: skip


def size(n: int | float | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{seconds // 60:.0f}m{seconds % 60:02.0f}s"
    return f"{seconds // 3600:.0f}h{seconds % 3600 // 60:02.0f}m"


def resources(shape: dict[str, float]) -> str:
    return ", ".join(f"{k}: {size(v) if k in ('memory', 'object_store_memory') else f'{v:g}'}" for k, v in sorted(shape.items()))


def node_label(node: Any) -> Text:
    role = "head" if node.is_head else "node"
    text = Text.assemble((f"{role} {node.node_id}", "bold"), f"  {node.hostname} {node.ip}  pid {node.pid}")
    if not node.alive:
        text.append("  DEAD", style="bold red")
    if node.uptime is not None:
        text.append(f"  up {duration(node.uptime)}")
    if not node.is_head and node.alive:
        text.append(f"  beat {duration(node.seconds_since_heartbeat)} ago")
    if node.cpu_percent is not None:
        text.append(f"  cpu {node.cpu_percent:.1f}%  rss {size(node.rss)}")
    plain = {k: v for k, v in node.resources_total.items() if "_group_" not in k and k != "object_store_memory"}
    if plain:
        used = {k: v - node.resources_available.get(k, 0.0) for k, v in plain.items()}
        text.append("  " + ", ".join(f"{k} {_amount(k, used[k])}/{_amount(k, v)}" for k, v in sorted(plain.items())))
    if node.error:
        text.append(f"  ({node.error})", style="yellow")
    return text


def _amount(name: str, value: float) -> str:
    return size(value) if name == "memory" else f"{value:g}"


def child_label(child: Any) -> Text:
    text = Text(child.id, style="bold" if child.kind == "supervisor" else "")
    if child.kind == "supervisor":
        if child.strategy:
            text.append(f"  {child.strategy}", style="blue")
        intensity = child.intensity
        if intensity is not None and child.strategy != "pool":
            limit = "∞" if intensity.max_restarts >= 2**62 else str(intensity.max_restarts)
            window = f" in {intensity.within:g}s" if intensity.within is not None else " ever"
            text.append(f"  restarts {intensity.restarts}/{limit}{window}")
    if child.pid:
        text.append(f"  pid {child.pid}")
    text.append(f"  {child.state}", style=STATE_STYLES.get(child.state, ""))
    if child.restart_eta is not None:
        text.append(f"(eta {child.restart_eta:.1f}s)")
    if child.worker_state:
        text.append(f" {child.worker_state}", style="dim")
    if child.restarts:
        text.append(f"  restarts {child.restarts}", style="yellow")
    if child.kind != "supervisor" and child.uptime is not None:
        text.append(f"  up {duration(child.uptime)}")
    if child.cpu_percent is not None:
        text.append(f"  cpu {child.cpu_percent:.1f}%  rss {size(child.rss)}")
    if child.class_name and child.role == "actor":
        text.append(f"  {child.class_name}", style="magenta")
        if child.actor_name:
            text.append(f" {child.actor_name!r}", style="magenta")
    if child.job_id:
        text.append(f"  job {child.job_id}")
    if child.resources:
        text.append(f"  [{resources(child.resources)}]")
    if child.task:
        text.append(f"  running {child.task}", style="cyan")
    if child.last_exit is not None:
        ago = f", {duration(child.last_exit.ago)} ago" if child.last_exit.ago is not None else ""
        text.append(f"  last exit: {child.last_exit.reason}{ago}", style="red" if child.last_exit.kind == "abnormal" else "dim")
    return text


def _add(branch: Tree, node: Any) -> None:
    for child in node.children:
        _add(branch.add(child_label(child)), child)
    if node.elided:
        branch.add(Text(f"… {node.elided} more not shown", style="dim italic"))


def tree_renderable(tree: ClusterTree) -> RenderableType:
    """One rich Tree per node: its header, then its process's supervision tree."""
    parts: list[RenderableType] = []
    for node in tree.nodes:
        top = Tree(node_label(node))
        if node.root is not None:
            _add(top.add(child_label(node.root)), node.root)
        parts.append(top)
    if not parts:
        parts.append(Text("no nodes"))
    return Group(*parts)


def cell(name: str, value: Any) -> str:
    if value is None:
        return "-"
    if name in ("rss", "size", "object_size"):
        return size(value)
    if name in ("start_time", "end_time", "creation_time", "mtime") and isinstance(value, float):
        import time

        if not value:
            return "-"  # not started yet

        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(value))
    if isinstance(value, dict):
        return resources(value)
    if isinstance(value, list):
        return "; ".join(resources(v) if isinstance(v, dict) else str(v) for v in value)
    return str(value)


def table(kind: str, items: list[Any], total: int, detail: bool) -> Table:
    """A listing as a table: Ray's columns, or every field with ``detail``."""
    names = list(type(items[0]).__struct_fields__) if detail and items else COLUMNS[kind]
    grid = Table(box=None, header_style="bold", caption=_caption(len(items), total))
    for name in names:
        grid.add_column(name.upper(), overflow="fold")
    for item in items:
        grid.add_row(*(cell(name, getattr(item, name)) for name in names))
    return grid


def _caption(shown: int, total: int) -> str:
    return f"{shown} of {total} shown (use --limit)" if shown < total else f"{total} total"


def summary_table(summary: Any) -> Table:
    states = sorted(summary.by_state)
    grid = Table(box=None, header_style="bold", caption=f"{summary.total} {summary.kind} in total")
    grid.add_column("NAME" if summary.kind != "objects" else "NODE")
    for state in states:
        grid.add_column(state)
    if summary.kind == "objects":
        grid.add_column("BYTES")
    for name, counts in sorted(summary.by_name.items()):
        row = [name] + [str(counts.get(s, 0)) for s in states]
        if summary.kind == "objects":
            row.append(size(counts.get("bytes", 0)))
        grid.add_row(*row)
    return grid


MEMORY_SORTS = {
    "size": lambda row: (-row.size, row.object_id),
    "pid": lambda row: (row.pid, -row.size),
    "reference": lambda row: (row.reference, -row.size),
}


def _holder(row: Any) -> str:
    kind, _, ident = row.holder.partition(":")
    return f"actor {row.actor_id[:12]}" if row.actor_id else f"{kind} {ident[:12]}"


def _owner(row: Any, owners: dict[str, str]) -> str:
    """The owner as its holder label when it lists objects itself, else its address."""
    if row.owned:
        return "(itself)"
    return owners.get(row.owner) or row.owner.rpartition(";")[2] or row.owner


def _owners(result: Any) -> dict[str, str]:
    return {row.owner: _holder(row) for node in result.nodes for row in node.references if row.owned}


def memory_renderable(result: Any, stats_only: bool = False, sort_by: str = "size", limit: int | None = None) -> RenderableType:
    """``actorlib memory``: per node, a summary line, then its references and unreferenced store objects."""
    parts: list[RenderableType] = []
    stored_total = references = 0
    owners = _owners(result)
    for node in result.nodes:
        count = len(node.stored)
        stored_total += node.store_used
        references += len(node.references)
        head = Text.assemble((f"node {node.node_id[:12]}", "bold"), f"  {node.ip}")
        head.append(f"  store {size(node.store_used)} of {size(node.store_capacity)}, {count} object{'s' * (count != 1)}")
        head.append(f"  · {node.processes} process{'es' * (node.processes != 1)} hold {len(node.references)} reference{'s' * (len(node.references) != 1)}")
        head.append(f"  · inline {size(node.inline_bytes)}")
        if node.spilled_bytes:
            on_disk = sum(1 for obj in node.stored if obj.where == "SPILLED")
            head.append(f"  · spilled {size(node.spilled_bytes)} of {size(node.spill_limit)}, {on_disk} only on disk")
        if node.left_out:
            head.append(f"  ({node.left_out} more not listed)", style="yellow")
        parts.append(head)
        if stats_only:
            continue
        rows = sorted(node.references, key=MEMORY_SORTS[sort_by])[:limit]
        if rows:
            grid = Table(box=None, header_style="bold", padding=(0, 1))
            for name in ("OBJECT", "SIZE", "WHERE", "OWNER", "HOLDER", "PID", "REFERENCE", "REFS", "TASKS", "BORROWERS"):
                grid.add_column(name, overflow="fold")
            for row in rows:
                where = f"{row.where} {row.stored_on[:8]}" if row.stored_on else row.where
                if row.where == "PENDING" and not row.owned:
                    where = "not fetched"  # a borrowed ref whose value this process has not asked for
                grid.add_row(
                    row.object_id, size(row.size) if row.size >= 0 else "?", where, _owner(row, owners), _holder(row),
                    str(row.pid), row.reference, str(row.local_refs), str(row.task_refs),
                    ", ".join(b.partition(":")[0] + " " + b.partition(":")[2][:12] for b in row.borrowers) or "-",
                )  # fmt: skip
            parts.append(grid)
        orphans = [obj for obj in node.stored if not obj.references]
        if orphans:
            text = Text("  store objects no process reports a reference to: ", style="yellow")
            text.append(", ".join(f"{obj.object_id} ({size(obj.size)}, owner {obj.owner_id[:12]})" for obj in orphans))
            parts.append(text)
    if result.partial:
        parts.append(Text("did not answer: " + "; ".join(result.partial), style="yellow"))
    nodes = len(result.nodes)
    parts.append(Text(f"{nodes} node{'s' * (nodes != 1)}: {size(stored_total)} in stores, {references} references", style="bold"))
    return Group(*parts)
