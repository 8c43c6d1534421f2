"""Filtering, limiting and summarising listings (pure: no I/O, tested without a cluster)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from ._schema import ID_FIELDS, KINDS, ListResult, Summary

Filter = tuple[str, str, str]
OPERATORS = ("=", "!=")
DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
SUMMARY_KEYS = {"tasks": "name", "actors": "class_name", "objects": "node_id"}


class QueryError(ValueError):
    """A query that cannot be answered as asked: an unknown kind, field or operator."""


def check_kind(kind: str) -> str:
    kind = kind.replace("-", "_")
    if kind not in KINDS:
        raise QueryError(f"unknown kind {kind!r}; expected one of {', '.join(sorted(KINDS))}")
    return kind


def parse_filter(text: str) -> Filter:
    """``key=value`` or ``key!=value`` (the CLI's ``--filter``) as a predicate tuple."""
    for op in ("!=", "="):
        key, sep, value = text.partition(op)
        if sep and key.strip():
            return key.strip(), op, value.strip()
    raise QueryError(f"bad filter {text!r}: expected key=value or key!=value")


def check_filters(kind: str, filters: Iterable[Sequence[str]]) -> list[Filter]:
    """Validate predicates against the kind's fields; raise QueryError naming the problem."""
    fields = set(KINDS[check_kind(kind)].__struct_fields__)
    checked = []
    for item in filters:
        if len(item) != 3:
            raise QueryError(f"bad filter {item!r}: expected (key, operator, value)")
        key, op, value = (str(part) for part in item)
        if key not in fields:
            raise QueryError(f"{kind} have no field {key!r}; fields: {', '.join(sorted(fields))}")
        if op not in OPERATORS:
            raise QueryError(f"bad operator {op!r} in filter on {key!r}; expected one of {', '.join(OPERATORS)}")
        checked.append((key, op, value))
    return checked


def check_limit(limit: int) -> int:
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise QueryError(f"limit must be a positive integer, got {limit!r}")
    return min(limit, MAX_LIMIT)


def matches(item: Any, filters: list[Filter]) -> bool:
    for key, op, value in filters:
        equal = _text(getattr(item, key)) == value.lower()
        if equal != (op == "="):
            return False
    return True


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value).lower()


def select(kind: str, items: list[Any], filters: list[Filter], limit: int, partial: list[str] = []) -> ListResult[Any]:
    """The items matching every filter, at most ``limit`` of them (newest-first order is the caller's)."""
    kept = [item for item in items if matches(item, filters)]
    return ListResult(kind=kind, items=kept[:limit], total=len(kept), partial=list(partial))


def by_id(kind: str, items: list[Any], ident: str) -> list[Any]:
    """Items whose id equals ``ident`` or starts with it (ids are shown shortened)."""
    field = ID_FIELDS[kind]
    ident = ident.lower()
    exact = [item for item in items if getattr(item, field) == ident]
    return exact or [item for item in items if str(getattr(item, field)).startswith(ident)]


STARTED = frozenset({"RUNNING", "FINISHED", "FAILED"})  # what workers report; the rest comes from owners


def merge_tasks(tasks: list[Any]) -> list[Any]:
    """Workers' records and owners' pending ones as one listing: a task its worker reports
    (running or done) is not also listed as pending by its owner; running and pending ones
    first (newest first), then finished ones, most recently ended first."""
    started = {(task.task_id, task.attempt) for task in tasks if task.state in STARTED}
    seen: set[tuple[str, int]] = set()
    merged = []
    for task in tasks:
        key = (task.task_id, task.attempt)
        if task.state not in STARTED:
            if key in started or key in seen:
                continue
            seen.add(key)
        merged.append(task)
    merged.sort(key=lambda t: (t.end_time is not None, -(t.end_time or t.start_time or t.creation_time or 0.0)))
    return merged


def summarize(kind: str, items: list[Any], partial: list[str] = []) -> Summary:
    """Counts by state and by name (function, class, or node for objects)."""
    key = SUMMARY_KEYS.get(kind)
    if key is None:
        raise QueryError(f"no summary of {kind}; summaries exist for {', '.join(sorted(SUMMARY_KEYS))}")
    by_state: dict[str, int] = {}
    by_name: dict[str, dict[str, int]] = {}
    for item in items:
        state = _state_of(kind, item)
        by_state[state] = by_state.get(state, 0) + 1
        counts = by_name.setdefault(str(getattr(item, key)), {})
        counts[state] = counts.get(state, 0) + 1
        if kind == "objects":
            counts["bytes"] = counts.get("bytes", 0) + item.object_size
    return Summary(kind=kind, total=len(items), by_state=by_state, by_name=by_name, partial=list(partial))


def _state_of(kind: str, item: Any) -> str:
    if kind == "objects":
        return "SEALED" if item.sealed else "CREATING"
    return str(item.state)


def to_builtins(value: Any) -> Any:
    """Structs as plain dicts and lists (what the Python API and ``--json`` give)."""
    return msgspec.to_builtins(value)
