"""GPUs of a node: which exist, and which ids each lease or actor holds (pure bookkeeping)."""

from __future__ import annotations

import math
import os
import shutil
import subprocess

CUDA_VISIBLE_DEVICES = "CUDA_VISIBLE_DEVICES"


def detect() -> list[str]:
    """The GPU ids this machine offers: $CUDA_VISIBLE_DEVICES if set, else what nvidia-smi lists."""
    visible = os.environ.get(CUDA_VISIBLE_DEVICES)
    if visible is not None:
        return [d.strip() for d in visible.split(",") if d.strip() and d.strip() != "-1"]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.strip() for line in out.stdout.splitlines() if line.strip().isdigit()] if out.returncode == 0 else []


class GpuIds:
    """Assigns GPU ids: whole GPUs for requests of 1 or more, a share of one for fractions.

    Fractions are packed (best fit) so that whole GPUs stay free for whole requests.
    """

    def __init__(self, ids: list[str]) -> None:
        self._free = {gpu: 1.0 for gpu in ids}

    def fits(self, amount: float) -> bool:
        """Whether ids for ``amount`` are free now (always, with no ids to hand out)."""
        if amount <= 0 or not self._free:
            return True
        if amount < 1:
            return any(free + _EPS >= amount for free in self._free.values())
        return sum(free >= 1 - _EPS for free in self._free.values()) >= math.ceil(amount)

    def take(self, amount: float) -> list[str]:
        """Ids for ``amount`` GPUs ([] if none asked or none free)."""
        if amount <= 0 or not self.fits(amount) or not self._free:
            return []
        if amount < 1:
            best = min((gpu for gpu, free in self._free.items() if free + _EPS >= amount), key=self._free.__getitem__)
            self._free[best] -= amount
            return [best]
        whole = [gpu for gpu, free in self._free.items() if free >= 1 - _EPS][: math.ceil(amount)]
        for gpu in whole:
            self._free[gpu] = 0.0
        return whole

    def give_back(self, ids: list[str], amount: float) -> None:
        share = amount if amount < 1 else 1.0
        for gpu in ids:
            if gpu in self._free:
                self._free[gpu] = min(1.0, self._free[gpu] + share)


_EPS = 1e-9
