"""``python -m benchmarks.cluster``: a 3-node loopback cluster, actorlib beside Ray.

Per repetition, each in fresh processes and a fresh cluster: the loopback TCP
yardstick, then actorlib's cluster, then Ray's (``cluster_child.py`` does the work).
Measures node join, how soon the driver sees a SIGKILLed and a frozen (SIGSTOP) node
as dead, a 100 MiB cross-node transfer against loopback TCP, and whether a consumer of
a 100 MiB object runs where the object is (locality). Prints one table of
medians with actorlib's ratios to Ray; optionally writes every sample as JSON.
Progress goes to stderr.
"""

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from . import launcher, report

ROOT = str(Path(__file__).resolve().parent.parent)
SYSTEMS = ("actorlib", "ray")
TCP = "tcp"
JOIN_TARGET_S = 1.0
TCP_RATIO_TARGET = 0.5
STOP_GRACE_S = 5.0  # cluster_child: `actorlib stop --grace-period 5`; Ray: SIGTERM, then 5 s

# (group, key, label, unit, best): the table, in order.
FIGURES = (
    ("join", "join_s", "start command to node alive (driver polls 10 ms)", "s", "low"),
    ("", "join_cli_s", "start command to its exit", "s", "low"),
    ("", "head_start_s", "head start + driver connect (reference)", "s", "low"),
    ("death", "kill_detect_s", "node SIGKILLed (ray: its raylet) -> seen dead", "s", "low"),
    ("", "freeze_detect_s", "node SIGSTOPped (frozen) -> seen dead", "s", "low"),
    ("transfer", "transfer_remote_s", "100 MiB made on A: consumer task on B", "s", "low"),
    ("", "transfer_local_s", "same consumer on A (local read)", "s", "low"),
    ("", "transfer_mb_s", "bandwidth: size / task on B", "MB/s", "high"),
    ("", "transfer_net_mb_s", "bandwidth: size / (task on B - task on A)", "MB/s", "high"),
    ("", "tcp_ratio", "size / task on B, over loopback TCP", "x", "high"),
    ("", "tcp_net_ratio", "size / (B - A), over loopback TCP", "x", "high"),
    ("", "tcp_fresh_ratio", "size / task on B, over TCP into fresh memory", "x", "high"),
    ("", "transfer_first_mb_s", "first round only (B's first 100 MiB read)", "MB/s", "high"),
    ("", "tcp_first_ratio", "first round, over loopback TCP", "x", "high"),
    ("", "tcp_first_fresh_ratio", "first round, over TCP into fresh memory", "x", "high"),
    ("locality", "locality_on_holder", "100 MiB made on A: DEFAULT consumer runs on A", "share", "high"),
    ("", "locality_moved_mib", "bytes moved between nodes for it (ray: inferred)", "MiB", "low"),
    ("", "locality_s", "consumer's get() time", "s", "low"),
)
DETECT_KEYS = ("kill_detect_s", "freeze_detect_s")  # None in a sample: not seen dead by the deadline


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cluster", description=__doc__)
    parser.add_argument("--ray-python", default=sys.executable,
                        help="interpreter that has ray installed (default: this one)")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated subset of %(default)s")
    parser.add_argument("--repeat", type=int, default=3, help="fresh clusters per system; the median is shown")
    parser.add_argument("--deadline", type=float, default=90.0,
                        help="seconds to wait for a killed or frozen node to be seen dead (default 90)")
    parser.add_argument("--rounds", type=int, default=3, help="100 MiB transfers per cluster; their median is kept")
    parser.add_argument("--timeout", type=float, default=480.0, help="seconds per cluster process")
    parser.add_argument("--json", dest="json_path", help="write every sample here")
    args = parser.parse_args(argv)
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    if unknown := [s for s in systems if s not in SYSTEMS]:
        parser.error(f"unknown {', '.join(unknown)}; choose from {', '.join(SYSTEMS)}")
    args.systems = [s for s in SYSTEMS if s in systems]
    if args.repeat < 1 or args.rounds < 1:
        parser.error("--repeat and --rounds must be at least 1")
    return args


def _installed(python: str, module: str) -> bool:
    probe = "import importlib.util, sys; sys.exit(importlib.util.find_spec(sys.argv[1]) is None)"
    try:
        return subprocess.run([python, "-c", probe, module], capture_output=True, timeout=60).returncode == 0
    except OSError:
        return False


def _environment() -> dict[str, str]:
    # Workers on every node unpickle the child's functions; the repository root on the
    # path of every process keeps `benchmarks` importable there.
    path = os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH", "")) if p)
    return os.environ | {"PYTHONPATH": path}


def run_one(system: str, python: str, args: argparse.Namespace) -> dict[str, Any]:
    """One fresh cluster process; returns its sample."""
    cmd = [python, "-m", "benchmarks.cluster_child", "--system", system,
           "--deadline", str(args.deadline), "--rounds", str(args.rounds)]
    outcome = launcher.launch(cmd, cwd=ROOT, env=_environment(), timeout=args.timeout, holds=False)
    figures = dict(outcome.figures or {})
    errors = list(figures.get("errors", []))
    if outcome.error:
        errors.append(outcome.error)
    status = "unavailable" if "unavailable" in figures else "error" if outcome.error else \
        "partial" if errors else "ok"
    sample = {"system": system, "status": status, "figures": figures, "errors": errors,
              "exit_code": outcome.exit_code, "wall_s": outcome.wall_s, "teardown_s": outcome.teardown_s,
              "survivors": outcome.survivors}
    if status != "ok":
        sample["stderr_tail"] = outcome.stderr_tail
    return sample


def _add_tcp_ratios(sample: dict[str, Any], tcp: dict[str, Any] | None) -> None:
    """Bandwidth over the loopback TCP bandwidth measured in the same repetition."""
    yardsticks = (tcp or {}).get("figures", {})
    figures = sample["figures"]
    for key, tcp_key, ratio_key in (("transfer_mb_s", "tcp_mb_s", "tcp_ratio"),
                                    ("transfer_net_mb_s", "tcp_mb_s", "tcp_net_ratio"),
                                    ("transfer_mb_s", "tcp_fresh_mb_s", "tcp_fresh_ratio"),
                                    ("transfer_first_mb_s", "tcp_mb_s", "tcp_first_ratio"),
                                    ("transfer_first_mb_s", "tcp_fresh_mb_s", "tcp_first_fresh_ratio")):
        if yardsticks.get(tcp_key) and figures.get(key):
            figures[ratio_key] = figures[key] / yardsticks[tcp_key]


def median_of(samples: list[dict[str, Any]], key: str) -> tuple[float | None, int]:
    """The median of `key` over the samples that have it, and how many do.

    For a death detection, a sample that timed out counts as infinitely slow.
    """
    values = []
    for s in samples:
        figures = s["figures"]
        if key in figures and figures[key] is None and key in DETECT_KEYS:
            values.append(math.inf)
        elif isinstance(figures.get(key), int | float):
            values.append(figures[key])
    if not values:
        return None, 0
    return statistics.median(values), len(values)


def _cell(value: float | None, n: int, runs: int, deadline: float) -> str:
    if value is None:
        return "-"
    text = f"> {deadline:g}" if math.isinf(value) else report.fmt(value)
    return text + ("!" if n < runs else "")


def _ratio(top: float | None, bottom: float | None, deadline: float) -> str:
    if top is None or bottom is None:
        return ""
    if math.isinf(top) and math.isinf(bottom):
        return ""
    if math.isinf(bottom):
        return "< " + report.ratio(top, deadline)
    if math.isinf(top):
        return "> " + report.ratio(deadline, bottom)
    return report.ratio(top, bottom)


def table(samples: dict[str, list[dict[str, Any]]], systems: list[str], absent: dict[str, str],
          repeat: int, deadline: float) -> list[list[str]]:
    with_ray = "actorlib" in systems and "ray" in systems
    rows = [["", "figure", "unit", "best", *systems, *(["actorlib/ray"] if with_ray else [])]]
    for group, key, label, unit, best in FIGURES:
        medians, texts = {}, []
        for system in systems:
            if system in absent:
                texts.append(absent[system])
                continue
            ran = samples.get(system, [])
            if ran and all(s["status"] == "unavailable" for s in ran):
                texts.append("unavailable")
                continue
            medians[system], n = median_of(ran, key)
            texts.append(_cell(medians[system], n, repeat, deadline) if n else "error" if ran else "-")
        ratio = [_ratio(medians.get("actorlib"), medians.get("ray"), deadline)] if with_ray else []
        rows.append([group, label, unit, best, *texts, *ratio])
    return rows


def summary(samples: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    keys = [key for _, key, *_ in FIGURES] + ["tcp_mb_s", "tcp_fresh_mb_s"]
    out: dict[str, dict[str, Any]] = {}
    for system, ss in samples.items():
        cell = {}
        for key in keys:
            value, n = median_of(ss, key)
            if n:
                cell[key] = None if value is not None and math.isinf(value) else value
                cell[f"{key}_runs"] = n
        out[system] = cell
    return out


def notes(samples: dict[str, list[dict[str, Any]]], deadline: float) -> list[str]:
    out = []
    for system, ss in samples.items():
        for i, s in enumerate(ss, 1):
            where = f"{system} run {i}"
            for error in s["errors"]:
                out.append(f"{where}: {error}".replace("\n", "\n      "))
            if s["status"] == "unavailable":
                out.append(f"{where}: unavailable: {s['figures']['unavailable']}")
            if s["status"] in ("error", "unavailable") and s.get("stderr_tail"):
                out.append(f"{where}: stderr tail:\n      " + "\n      ".join(s["stderr_tail"].splitlines()))
            for key in DETECT_KEYS:
                if key in s["figures"] and s["figures"][key] is None:
                    out.append(f"{where}: {key}: the node was not seen dead within {deadline:g} s")
            killed = s["figures"].get("force_killed") or []
            if killed:
                names = ", ".join(sorted({_short(k) for k in killed}))
                out.append(f"{where}: {_count(len(killed))} still alive after the cluster's stop "
                           f"(grace {STOP_GRACE_S:g} s), SIGKILLed by pid: {names}")
            if s["survivors"]:
                out.append(f"{where}: {_count(len(s['survivors']))} outlived the run (killed): "
                           + "; ".join(s["survivors"]))
    return out


def _count(n: int) -> str:
    return f"{n} process" + ("" if n == 1 else "es")


def _short(description: str) -> str:
    """'1234 /path/to/python -u /path/monitor.py --x' -> 'monitor.py'."""
    words = description.split()[1:]
    for word in words:
        if word.endswith(".py") or "/" in word and not os.path.basename(word).startswith("python"):
            return os.path.basename(word)
    return " ".join(words[:2]) or description


def _targets(samples: dict[str, list[dict[str, Any]]]) -> list[str]:
    lines = []
    tcp, n_tcp = median_of(samples.get(TCP, []), "tcp_mb_s")
    fresh, _ = median_of(samples.get(TCP, []), "tcp_fresh_mb_s")
    if n_tcp:
        lines.append(f"Loopback TCP yardstick: two processes, a socket pair over 127.0.0.x, 100 MiB sent with sendall "
                     f"(4 MiB chunks) -> recv_into:\n  {report.fmt(tcp)} MB/s into a preallocated buffer, "
                     f"{report.fmt(fresh)} MB/s into a buffer allocated inside the timing (bytearray)")
    ours = samples.get("actorlib", [])
    join, n = median_of(ours, "join_s")
    if n:
        verdict = "met" if join < JOIN_TARGET_S else "NOT met"
        lines.append(f"  actorlib node join {join:.2f} s (target: under {JOIN_TARGET_S:g} s): {verdict}")
    ratio, n = median_of(ours, "tcp_ratio")
    if n:
        bandwidth, _ = median_of(ours, "transfer_mb_s")
        verdict = "met" if ratio >= TCP_RATIO_TARGET else "NOT met"
        lines.append(f"  actorlib cross-node transfer {report.fmt(bandwidth)} MB/s = {ratio:.2f}x loopback TCP "
                     f"(target: at least {TCP_RATIO_TARGET:g}x): {verdict}")
    ray_ratio, n = median_of(samples.get("ray", []), "tcp_ratio")
    if n:
        bandwidth, _ = median_of(samples["ray"], "transfer_mb_s")
        lines.append(f"  ray cross-node transfer {report.fmt(bandwidth)} MB/s = {ray_ratio:.2f}x loopback TCP")
    return lines


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    started = time.time()
    if not launcher.become_subreaper():
        print("warning: cannot become a child subreaper; orphaned processes may go unseen", file=sys.stderr)
    pythons = {"actorlib": sys.executable, "ray": args.ray_python, TCP: sys.executable}
    absent = {s: "not installed" for s in args.systems if not _installed(pythons[s], s)}
    runnable = [TCP, *(s for s in args.systems if s not in absent)]
    plan = [(rep, system) for rep in range(args.repeat) for system in runnable]
    samples: dict[str, list[dict[str, Any]]] = {}
    tcp_of_rep: dict[int, dict[str, Any]] = {}
    for i, (rep, system) in enumerate(plan, 1):
        sample = run_one(system, pythons[system], args)
        sample["repetition"] = rep
        if system == TCP:
            tcp_of_rep[rep] = sample
        else:
            _add_tcp_ratios(sample, tcp_of_rep.get(rep))
        samples.setdefault(system, []).append(sample)
        print(f"[{i:>2}/{len(plan)}] {system:<8} {sample['status']:<11} {sample['wall_s']:6.1f} s", file=sys.stderr)
    duration = time.time() - started
    _print_report(samples, args, absent, duration)
    if args.json_path:
        meta = {"argv": sys.argv, "started": started, "duration_s": duration, "repeat": args.repeat,
                "deadline_s": args.deadline, "rounds": args.rounds,
                "systems": {s: {"python": pythons[s], "status": absent.get(s, "installed")} for s in args.systems},
                "host": {"cpus": os.cpu_count(), "platform": platform.platform()}}
        Path(args.json_path).write_text(json.dumps({"meta": meta, "summary": summary(samples), "samples": samples},
                                                   indent=1) + "\n")
    leftovers = launcher.live_descendants()
    if leftovers:
        print(f"warning: {len(leftovers)} processes still alive at exit", file=sys.stderr)
    return 0


def _print_report(samples: dict[str, list[dict[str, Any]]], args: argparse.Namespace, absent: dict[str, str],
                  duration: float) -> None:
    runs = f"median of {args.repeat} fresh clusters" if args.repeat > 1 else "one fresh cluster"
    print(f"\nactorlib cluster benchmark: head + 2 worker nodes (1 CPU each) on 127.0.0.x; {runs} per figure;\n"
          f"ratios are actorlib's value over Ray's (best: whether high or low is better); "
          f"'!' = some runs lack the figure\n")
    print(report.render(table(samples, args.systems, absent, args.repeat, args.deadline)))
    print(report.footer(_targets(samples), notes(samples, args.deadline), duration))


if __name__ == "__main__":
    sys.exit(main())
