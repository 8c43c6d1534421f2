"""``python -m benchmarks``: every workload, each in a fresh process, on every installed system.

Prints one table of medians with actorlib's ratios to Ray and to ProcessPoolExecutor,
and optionally writes every sample as JSON. Progress goes to stderr.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from . import launcher, report
from .catalog import REFERENCE, SYSTEM_ENV, SYSTEM_MODULES, SYSTEMS, WORKLOADS, Workload

ROOT = str(Path(__file__).resolve().parent.parent)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--ray-python", default=sys.executable,
                        help="interpreter that has ray installed (default: this one)")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated subset of %(default)s")
    parser.add_argument("--only", default="", help=f"comma-separated workloads: {','.join(WORKLOADS)}")
    parser.add_argument("--repeat", type=int, default=3, help="fresh processes per figure; the median is shown")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per workload process")
    parser.add_argument("--json", dest="json_path", help="write every sample here")
    args = parser.parse_args(argv)
    args.systems = _split(args.systems, SYSTEMS, parser)
    args.only = _split(args.only, tuple(WORKLOADS), parser) if args.only else list(WORKLOADS)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def _split(text: str, allowed: tuple[str, ...], parser: argparse.ArgumentParser) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in allowed]
    if unknown:
        parser.error(f"unknown {', '.join(unknown)}; choose from {', '.join(allowed)}")
    return [n for n in allowed if n in names]  # catalog order


def _installed(python: str, module: str) -> bool:
    """Whether `python` exists and can find `module` (without importing it)."""
    probe = "import importlib.util, sys; sys.exit(importlib.util.find_spec(sys.argv[1]) is None)"
    try:
        return subprocess.run([python, "-c", probe, module], capture_output=True, timeout=60).returncode == 0
    except OSError:
        return False


def _environment(system: str) -> dict[str, str]:
    # Ray's workers import benchmarks.workloads by name, so the repository root goes on
    # the path of every process the workload starts.
    path = os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH", "")) if p)
    return os.environ | SYSTEM_ENV.get(system, {}) | {"PYTHONPATH": path}


def run_one(workload: Workload, system: str, python: str, timeout: float) -> dict[str, Any]:
    """One fresh workload process; returns its sample (status, figures, diagnostics)."""
    cmd = [python, "-m", "benchmarks.child", "--system", system, "--workload", workload.name]
    outcome = launcher.launch(cmd, cwd=ROOT, env=_environment(system), timeout=timeout, holds=workload.holds)
    figures = dict(outcome.figures or {})
    status = "unavailable" if "unavailable" in figures else "error" if outcome.error else "ok"
    if status == "ok":
        _derive(figures, outcome, workload)
    sample = {"status": status, "figures": figures, "error": outcome.error, "exit_code": outcome.exit_code,
              "wall_s": outcome.wall_s, "teardown_s": outcome.teardown_s, "survivors": outcome.survivors}
    if status != "ok":
        sample["stderr_tail"] = outcome.stderr_tail
    return sample


def _derive(figures: dict[str, Any], outcome: launcher.Outcome, workload: Workload) -> None:
    """Figures measured against the harness's spawn time, and the teardown it watched."""
    for stamp, key in (("t_main", "python_start_s"), ("t_result", "cold_start_s"),
                       ("t_first_actor", "actor_cold_start_s")):
        if stamp in figures:
            figures[key] = figures[stamp] - outcome.t_spawn
    if workload.holds:
        figures["teardown_s"] = outcome.teardown_s
        figures["survivors"] = len(outcome.survivors)


def _plan(args: argparse.Namespace, runnable: list[str]) -> list[tuple[Workload, str]]:
    # Repetitions outermost, systems innermost: slow drift of a noisy machine hits
    # every system alike.
    return [
        (WORKLOADS[name], system)
        for _ in range(args.repeat)
        for name in args.only
        for system in WORKLOADS[name].systems
        if system in runnable or system == REFERENCE
    ]


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    started = time.time()
    if not launcher.become_subreaper():
        print("warning: cannot become a child subreaper; orphaned processes may go unseen", file=sys.stderr)
    pythons = {"actorlib": sys.executable, "ray": args.ray_python, "ppe": sys.executable, REFERENCE: sys.executable}
    absent = {s: "not installed" for s in args.systems if not _installed(pythons[s], SYSTEM_MODULES[s])}
    runnable = [s for s in args.systems if s not in absent]
    plan = _plan(args, runnable)
    samples: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for i, (workload, system) in enumerate(plan, 1):
        sample = run_one(workload, system, pythons[system], args.timeout)
        samples.setdefault(workload.name, {}).setdefault(system, []).append(sample)
        print(f"[{i:>3}/{len(plan)}] {system:<8} {workload.name:<15} {sample['status']:<11} "
              f"{sample['wall_s']:6.1f} s", file=sys.stderr)
    cells = {w: {s: report.summarize(ss) for s, ss in by_system.items()} for w, by_system in samples.items()}
    duration = time.time() - started
    _print_report(cells, args, absent, duration)
    if args.json_path:
        meta = {"argv": sys.argv, "started": started, "duration_s": duration, "repeat": args.repeat,
                "systems": {s: {"python": pythons[s], "status": absent.get(s, "installed")} for s in args.systems},
                "host": {"cpus": os.cpu_count(), "platform": platform.platform()}}
        Path(args.json_path).write_text(json.dumps({"meta": meta, "results": cells}, indent=1) + "\n")
    leftovers = launcher.live_descendants()
    if leftovers:
        print(f"warning: {len(leftovers)} processes still alive at exit", file=sys.stderr)
    return 0


def _print_report(cells: dict[str, Any], args: argparse.Namespace, absent: dict[str, str], duration: float) -> None:
    runs = "median of %d fresh processes" % args.repeat if args.repeat > 1 else "one fresh process"
    print(f"\nactorlib benchmarks: {runs} per figure; ratios are actorlib's value over the other's "
          f"(best: whether high or low is better); '!' = some runs failed\n")
    print(report.render(report.table_rows(cells, args.systems, absent)))
    print(report.footer(report.yardstick(cells) + report.cold_start_yardstick(cells), report.notes(cells), duration))


if __name__ == "__main__":
    sys.exit(main())
