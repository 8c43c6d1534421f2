"""The yardstick for cold start: how long this interpreter takes to start and exit, bare
and importing numpy (spawn to exit, median of 5 after one warm-up)."""

import statistics
import subprocess
import sys
import time
from typing import Any

RUNS = 5


def measure(_handle: Any = None) -> dict[str, Any]:
    return {"bare_s": _median_run("pass"), "numpy_s": _median_run("import numpy")}


def _median_run(code: str) -> float:
    subprocess.run([sys.executable, "-c", code], check=True)  # warm the file cache
    times = []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)
