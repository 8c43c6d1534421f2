"""Load, scaled down: ``benchmarks/load.py`` (docs/reliability.md has the full-size figures)
run at a size CI affords, asserting what must hold at any size: every result right, memory
and file descriptors bounded, nothing left behind."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from ..reliability import Row
from ..integration.conftest import processes_mentioning, wait_gone

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[3]
MiB = 2**20


def run_load(*args: str, timeout: float = 600) -> dict:
    """``python -m benchmarks.load ARGS`` in its own ACTORLIB_TMPDIR; its JSON result. Asserts that
    no process of what it started outlives it."""
    tmp = tempfile.mkdtemp(prefix="ld-", dir="/tmp")
    env = {**os.environ, "ACTORLIB_TMPDIR": tmp, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    try:
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.load", *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        assert wait_gone(processes_mentioning(tmp), 15) == []
        shutil.rmtree(tmp, ignore_errors=True)


def test_concurrent_drivers_each_get_every_task_and_actor_call_right(ledger):
    result = run_load("drivers", "--drivers", "4", "--tasks", "2000", "--calls", "1000")
    ledger.rows.append(Row(
        "load: concurrent drivers (CI size)", "none", "4 drivers × (2,000 tasks + 1,000 actor calls)",
        lost=0 if result["all_correct"] else 1, leftover=result["leftover_processes"], seconds=result["wall_s"],
        recovery="n/a",
    ))  # fmt: skip
    assert result["all_correct"], result
    assert result["leftover_processes"] == 0


def test_a_deep_queue_costs_the_driver_little_per_task_and_the_head_and_node_nothing(ledger):
    (run,) = run_load("queued", "--tasks", "20000")["runs"]
    ledger.rows.append(Row(
        "load: 20,000 tasks queued at once (CI size)", "none", "20,000 tasks", lost=0 if run["ok"] else 1, leftover=0,
        seconds=run["all_done_s"], recovery="n/a",
        notes=f"{run['driver_bytes_per_pending_task']} driver bytes per pending task; driver peaks over 3 batches "
        f"{run['driver_peaks_mib']} MiB, head process (with its node) {run['cluster_peaks_mib']} MiB",
    ))  # fmt: skip
    assert run["ok"] and run["pending_when_measured"] > 10_000, run  # most were still waiting when measured
    # A pending task is its spec in the driver's queue: about a kilobyte (Ray's driver: ~7 KB).
    assert run["driver_bytes_per_pending_task"] < 4096, run
    # The head and the node hold nothing per queued task (leases are bounded, not per task) ...
    assert run["cluster_mib"]["submitted"] - run["cluster_mib"]["before"] < 4, run
    # ... and batch after batch, the driver reuses what the last one left; the head process
    # grows only by its node's task history, which keeps the last 10,000 calls (~2 KB each).
    peaks, cluster = run["driver_peaks_mib"], run["cluster_peaks_mib"]
    assert max(peaks[1:]) <= peaks[0] + 8, run
    assert max(cluster) - run["cluster_mib"]["before"] < 32, run


def test_a_soak_keeps_memory_and_file_descriptors_flat(ledger, tmp_path):
    result = run_load("soak", "--seconds", "30", "--warmup", "10", "--keep-logs", str(tmp_path))
    growth = result["growth"]
    ledger.rows.append(Row(
        "load: soak (CI size)", "none", f"30 s of mixed work, {result['rounds']} rounds", lost=0,
        leftover=result["leftover_processes"], seconds=result["seconds"], recovery="n/a",
        notes="growth after warm-up: " + ", ".join(f"{k} {v:+g}" for k, v in growth.items()),
    ))  # fmt: skip
    assert result["rounds"] >= 10, result["rounds"]
    for process in ("driver", "head", "node"):
        assert growth[f"{process}_mib"] < 8, growth  # a few MiB of noise, not a leak per round
        # Each process connects to its node's store on first use, so those connections come
        # through the run (later on a loaded machine, where fewer rounds fit the warm-up), up to
        # one per process there: bounded, not a leak. Every other descriptor is.
        store = growth.get(f"{process}_store_fds", 0)
        assert growth[f"{process}_fds"] - store <= 4, growth
    for sample in result["samples"]:
        assert sample["head_store_fds"] <= sample["processes"] + 2 and sample["node_store_fds"] <= sample["processes"] + 2, sample
    assert result["leftover_processes"] == 0
    # The logs were kept, and the daemon's says the head started once and never ended on its own.
    (daemon,) = tmp_path.glob("session_2*/logs/daemon.err")
    said = daemon.read_text()
    assert said.count("the head started") == 1 and " failed: " not in said and " ended: " not in said, said
    assert (daemon.parent / "head.err").exists() and list(tmp_path.glob("session_2*/logs/node.err")), sorted(tmp_path.rglob("*"))
