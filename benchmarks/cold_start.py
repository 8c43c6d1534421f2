"""Where a cold start goes: ``python -m benchmarks.cold_start [--ray-python PY] [--repeat N]``.

Runs a fresh driver N times (``import``, ``init(num_cpus=2)``, one trivial task) and
prints the median time since spawn at which each phase was reached: for actorlib the
phases its processes mark (``ACTORLIB_PHASES_FILE``: the driver, the head it starts,
the first worker), for Ray only what the driver sees. Then the imports that cost the
most on the way, from ``python -X importtime``, for actorlib's driver and head.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = str(Path(__file__).resolve().parent.parent)
DRIVER = """
import sys, time
def mark(phase):
    with open(sys.argv[1], "a") as out:
        out.write(f"{time.time():.6f} 0 {phase}\\n")
mark("driver: python started")
import {module} as rt
mark("driver: imported")
rt.init(num_cpus=2, **{extra})
mark("driver: init() returned")
def one():
    return 1
rt.get(rt.remote(one).remote())
mark("driver: first task result")
rt.shutdown()
"""
RAY_INIT = '{"_node_ip_address": "127.0.0.1", "include_dashboard": False}'
RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}


def run_once(python: str, module: str) -> dict[str, float]:
    """One fresh driver; each phase's seconds since spawn (the first time it was reached)."""
    with tempfile.NamedTemporaryFile(prefix="phases-", suffix=".txt", delete=False) as f:
        path = f.name
    extra = RAY_INIT if module == "ray" else "{}"
    env = os.environ | {"PYTHONPATH": ROOT, "ACTORLIB_PHASES_FILE": path} | (RAY_ENV if module == "ray" else {})
    try:
        t_spawn = time.time()
        subprocess.run([python, "-c", DRIVER.replace("{module}", module).replace("{extra}", extra), path],
                       env=env, check=True, capture_output=True, timeout=300)  # fmt: skip
        phases: dict[str, float] = {}
        for line in Path(path).read_text().splitlines():
            stamp, _, phase = line.split(" ", 2)
            phases.setdefault(phase, float(stamp) - t_spawn)
        return phases
    finally:
        os.unlink(path)


def top_imports(python: str, code: str, count: int) -> list[tuple[float, str]]:
    """The ``count`` top-level imports with the largest cumulative time (ms) in running ``code``."""
    result = subprocess.run([python, "-X", "importtime", "-c", code], env=os.environ | {"PYTHONPATH": ROOT},
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    rows = []
    for line in result.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        depth = (len(parts[2]) - len(parts[2].lstrip()) - 1) // 2  # two spaces per level
        if depth <= 1:
            rows.append((int(parts[1]) / 1000, parts[2].strip()))
    return sorted(rows, reverse=True)[:count]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cold_start", description=__doc__)
    parser.add_argument("--ray-python", help="also run Ray's driver with this interpreter")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    systems = [("actorlib", sys.executable)] + ([("ray", args.ray_python)] if args.ray_python else [])
    for system, python in systems:
        runs = [run_once(python, system) for _ in range(args.repeat)]
        print(f"\n{system}: median seconds since spawn, {args.repeat} fresh drivers")
        order = sorted(runs[0], key=lambda phase: statistics.median(r.get(phase, 0.0) for r in runs))
        for phase in order:
            values = [r[phase] for r in runs if phase in r]
            print(f"  {statistics.median(values):7.3f}  {phase}")
    print("\nactorlib's costliest imports (cumulative ms, python -X importtime):")
    driver = "import actorlib; actorlib.init; import actorlib._api"
    for label, code in (("driver", driver), ("head", "import actorlib._head._process")):
        listed = ", ".join(f"{name} {ms:.0f}" for ms, name in top_imports(sys.executable, code, 8))
        print(f"  {label}: {listed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
