"""The workload process: ``python -m benchmarks.child --system S --workload W``.

Imports and starts one system, runs one workload, and prints exactly one JSON line
of figures on stdout; everything else (its own and its subprocesses') goes to stderr.
"""

import argparse
import importlib
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from .catalog import INIT_KWARGS, SYSTEM_ENV, SYSTEM_INIT_KWARGS, SYSTEM_MODULES, WORKLOADS

_UNAVAILABLE: dict[str, tuple[type[BaseException], ...]] = {
    # Expected while actorlib's runtime is being written.
    "actorlib": (ImportError, NotImplementedError, AttributeError),
    "ray": (ImportError,),
    "ppe": (),
    "trio": (ImportError,),
}


class ResultLine:
    """The one JSON line on the real stdout; fd 1 itself is pointed at stderr."""

    def __init__(self) -> None:
        sys.stdout.flush()
        self._fd = os.dup(1)  # not inheritable: no subprocess holds the harness's pipe
        os.dup2(2, 1)
        self.sent = False

    def send(self, figures: dict[str, Any]) -> None:
        assert not self.sent, "one result line per process"
        os.write(self._fd, (json.dumps(figures) + "\n").encode())
        self.sent = True


class _System:
    """How to start, use and stop one system; `handle` is what workloads receive."""

    def __init__(self, name: str) -> None:
        for key, value in SYSTEM_ENV.get(name, {}).items():
            os.environ.setdefault(key, value)
        self.name = name
        self.module = importlib.import_module(SYSTEM_MODULES[name])
        self.version = getattr(self.module, "__version__", sys.version.split()[0])
        self.workloads = _workload_table(name)
        self.handle: Any = None

    def start(self) -> None:
        if self.name in SYSTEM_INIT_KWARGS:
            self.module.init(**INIT_KWARGS, **SYSTEM_INIT_KWARGS[self.name])
            self.handle = self.module
        elif self.name == "ppe":
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            ctx = multiprocessing.get_context("spawn")
            self.handle = ProcessPoolExecutor(max_workers=INIT_KWARGS["num_cpus"], mp_context=ctx)

    def stop(self) -> None:
        if self.name in SYSTEM_INIT_KWARGS:
            self.module.shutdown()
        elif self.name == "ppe":
            self.handle.shutdown(wait=True)


def _workload_table(system: str) -> dict[str, Callable[[Any], dict[str, Any]]]:
    if system == "ppe":
        from . import ppe_workloads

        return ppe_workloads.WORKLOADS
    if system == "trio":
        from . import python_start, trio_roundtrip

        return {"trio_rtt": trio_roundtrip.measure, "python_start": python_start.measure}
    from . import workloads

    return workloads.WORKLOADS


def run(system_name: str, workload: str, out: ResultLine, t_main: float) -> None:
    """Start the system, run the workload, send its figures, stop the system."""
    t0 = time.perf_counter()
    system = _System(system_name)
    t1 = time.perf_counter()
    system.start()
    figures = {"t_main": t_main, "import_s": t1 - t0, "init_s": time.perf_counter() - t1}
    try:
        figures |= system.workloads[workload](system.handle)
        figures |= {"version": system.version, "pid": os.getpid()}
        out.send(figures)
        if WORKLOADS[workload].holds:
            sys.stdin.read()  # until the harness has measured us and closes stdin
    finally:
        system.stop()


def main(argv: list[str] | None = None) -> int:
    t_main = time.time()
    parser = argparse.ArgumentParser(prog="python -m benchmarks.child", description=__doc__)
    parser.add_argument("--system", required=True, choices=sorted(_UNAVAILABLE))
    parser.add_argument("--workload", required=True, choices=sorted(WORKLOADS))
    args = parser.parse_args(argv)
    out = ResultLine()
    print(f"benchmarks.child: {args.system} {args.workload} pid {os.getpid()}", file=sys.stderr)
    try:
        run(args.system, args.workload, out, t_main)
    except _UNAVAILABLE[args.system] as exc:
        if out.sent:
            raise
        out.send({"unavailable": f"{type(exc).__name__}: {exc}", "t_main": t_main})
    return 0


if __name__ == "__main__":
    sys.exit(main())
