"""Every runnable file in examples/ runs to completion."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.py"))

# What each example must print, so a test of it can fail.
EXPECTED = {
    "supervision_tree.py": "escalated root/workers",
    "quickstart.py": "[0, 1, 4, 9]",
    "tasks.py": "tree_sum(range(20)) = 190",
    "objects.py": "copy: False, writeable: False",
    "errors.py": "cancelled an actor call and the tasks it submitted",
    "actors.py": "actors ok",
    "supervision_groups.py": "supervision groups ok",
    "utilities.py": "utilities ok",
    "cluster.py": "cluster ok",
    "placement_groups.py": "placement groups ok",
    "streaming.py": "streaming ok",
    "jobs.py": "jobs ok",
    "inspecting.py": "inspecting ok",
    "memory.py": "memory ok",
    "memory_monitor.py": "memory monitor ok",
    "autoscaling.py": "autoscaling ok",
    "dashboard.py": "dashboard ok",
    "chaos.py": "chaos ok",
    "spilling.py": "spilling ok",
    "metrics.py": "metrics ok",
    "serialization.py": "serialization ok",
    "joblib_parallel.py": "joblib ok",
}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(path: Path) -> None:
    result = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert EXPECTED[path.name] in result.stdout


def test_every_example_has_an_expectation() -> None:
    assert {p.name for p in EXAMPLES} == set(EXPECTED)
