"""Turn samples into one table: medians per system, actorlib's ratios, and notes. Pure."""

import statistics
from typing import Any

from .catalog import REFERENCE, WORKLOADS, Workload

RATIO_BASES = ("ray", "ppe")  # actorlib/ray and actorlib/ppe


def summarize(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """One cell: its status and the median of each figure over the successful samples."""
    ok = [s for s in samples if s["status"] == "ok"]
    if ok:
        status = "ok"
    elif any(s["status"] == "unavailable" for s in samples):
        status = "unavailable"
    else:
        status = "error"
    return {"status": status, "runs": len(samples), "ok_runs": len(ok),
            "median": median_figures([s["figures"] for s in ok]), "samples": samples}


def median_figures(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per key: the median of numbers; for other scalars the common value, else "mixed".

    Lists and dicts (such as process lists) stay in the samples only.
    """
    merged: dict[str, Any] = {}
    for key in sorted({k for run in runs for k in run}):
        values = [run[key] for run in runs if key in run and run[key] is not None]
        if any(isinstance(v, list | dict) for v in values):
            continue
        if not values:
            merged[key] = None
        elif all(_is_number(v) for v in values):
            merged[key] = statistics.median(values)
        else:
            merged[key] = values[0] if all(v == values[0] for v in values) else "mixed"
    return merged


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if abs(value) >= 100:
            return f"{value:,.0f}"
        return f"{value:.2f}" if abs(value) >= 1 else f"{value:.3g}"
    return str(value)


def ratio(top: Any, bottom: Any) -> str:
    if not (_is_number(top) and _is_number(bottom)) or bottom == 0:
        return ""
    r = top / bottom
    return f"{r:.2f}x" if r >= 0.1 else f"{r:.2g}x"


def _cell_text(workload: Workload, system: str, cell: dict[str, Any] | None, key: str, absent: str) -> str:
    if system not in workload.systems:
        return "n/a"
    if cell is None:
        return absent
    if cell["status"] != "ok":
        return cell["status"]
    value = cell["median"].get(key, "n/a")
    flag = "!" if cell["ok_runs"] < cell["runs"] else ""
    return fmt(value) + flag


def table_rows(cells: dict[str, dict[str, Any]], systems: list[str], absent: dict[str, str]) -> list[list[str]]:
    """The table as rows of strings, header first; `absent[system]` fills cells never run."""
    bases = [b for b in RATIO_BASES if "actorlib" in systems and b in systems]
    header = ["workload", "figure", "unit", "best", *systems, *[f"actorlib/{b}" for b in bases]]
    rows = [header]
    for name, workload in WORKLOADS.items():
        if name not in cells or REFERENCE in workload.systems:
            continue
        for i, fig in enumerate(workload.figures):
            by_system = cells[name]
            texts = [_cell_text(workload, s, by_system.get(s), fig.key, absent.get(s, "-")) for s in systems]
            medians = {s: c["median"].get(fig.key) for s, c in by_system.items() if c["status"] == "ok"}
            ratios = [ratio(medians.get("actorlib"), medians.get(b)) if fig.better else "" for b in bases]
            rows.append([name if i == 0 else "", fig.label, fig.unit, fig.better, *texts, *ratios])
    return rows


def render(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    numeric_from = 4  # system and ratio columns are right-aligned
    lines = []
    for row in rows:
        cells = [c.ljust(w) if i < numeric_from else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def notes(cells: dict[str, dict[str, Any]]) -> list[str]:
    """Why a cell is not a number, and any process that outlived its workload."""
    out: list[str] = []
    seen_unavailable: set[tuple[str, str]] = set()
    for name, by_system in cells.items():
        for system, cell in by_system.items():
            for sample in cell["samples"]:
                reason = sample["figures"].get("unavailable")
                if sample["status"] == "unavailable" and (system, reason) not in seen_unavailable:
                    seen_unavailable.add((system, reason))
                    out.append(f"{system} unavailable ({name}, and likely others): {reason}")
                elif sample["status"] == "error":
                    tail = "\n      ".join(sample.get("stderr_tail", "").splitlines())
                    out.append(f"{system} {name}: {sample['error']}\n      {tail}")
                if sample.get("survivors"):
                    listed = "\n      ".join(sample["survivors"])
                    out.append(f"{system} {name}: {len(sample['survivors'])} processes alive "
                               f"30 s after exit (killed):\n      {listed}")
    return out


def yardstick(cells: dict[str, dict[str, Any]]) -> list[str]:
    """Sync actor call latency against the bare trio round trip (target: actorlib within 3x)."""
    ref = cells.get("trio_rtt", {}).get(REFERENCE)
    if ref is None or ref["status"] != "ok":
        return [] if ref is None else [f"trio round trip: {ref['status']}"]
    rtt = ref["median"]["rtt_us"]
    lines = [f"Yardstick: bare trio Unix-socket round trip of a small msgspec message: {rtt:.1f} µs"]
    for system, cell in cells.get("actor_calls", {}).items():
        if cell["status"] == "ok":
            call_us = 1e6 / cell["median"]["calls_per_s"]
            target = "  (target for actorlib: within 3x)" if system == "actorlib" else ""
            lines.append(f"  {system} sync actor call: {call_us:.0f} µs = {call_us / rtt:.1f}x the yardstick{target}")
    return lines


def cold_start_yardstick(cells: dict[str, dict[str, Any]]) -> list[str]:
    """Cold start against the interpreter's own start (target: actorlib within 6x of importing numpy)."""
    ref = cells.get("python_start", {}).get(REFERENCE)
    if ref is None or ref["status"] != "ok":
        return [] if ref is None else [f"python start: {ref['status']}"]
    bare, numpy = ref["median"]["bare_s"], ref["median"]["numpy_s"]
    lines = [f"Yardstick: python -c pass {bare:.3f} s; python -c \"import numpy\" {numpy:.3f} s (spawn to exit)"]
    for system, cell in cells.get("cold_start", {}).items():
        if cell["status"] == "ok":
            cold = cell["median"]["cold_start_s"]
            target = "  (target for actorlib: within 6x)" if system == "actorlib" else ""
            lines.append(f"  {system} cold start: {cold:.3f} s = {cold / numpy:.1f}x importing numpy{target}")
    return lines


def footer(lines: list[str], notes: list[str], duration: float) -> str:
    """What follows a table: its summary lines, its notes, the total run time."""
    parts = []
    if lines:
        parts.append("\n" + "\n".join(lines))
    if notes:
        parts.append("\nNotes:\n" + "\n".join(f"  - {note}" for note in notes))
    parts.append(f"\nTotal run time: {duration:.0f} s")
    return "\n".join(parts)
