"""GPU detection and the bookkeeping of which ids each lease or actor holds."""

from __future__ import annotations

import os
import stat

from hypothesis import given
from hypothesis import strategies as st

from actorlib._driver._options import gpu_ids
from actorlib._node._gpus import GpuIds, detect


def test_detect_reads_cuda_visible_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3, 5")
    assert detect() == ["3", "5"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert detect() == []
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert detect() == []


def test_detect_asks_nvidia_smi_when_the_variable_is_unset(monkeypatch, tmp_path):
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\nprintf '0\\n1\\n2\\n'\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert detect() == ["0", "1", "2"]
    fake.write_text("#!/bin/sh\necho 'NVIDIA-SMI has failed' >&2\nexit 9\n")
    assert detect() == []


def test_ids_for_a_count_prefer_the_detected_ones_and_never_repeat(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    assert gpu_ids(1) == ["3"]
    assert gpu_ids(4) == ["3", "5", "0", "1"]
    assert gpu_ids(0) == []
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    assert gpu_ids(3) == ["1", "0", "2"]


def test_whole_requests_get_distinct_ids_until_none_is_free():
    gpus = GpuIds(["3", "5"])
    first, second = gpus.take(1), gpus.take(1)
    assert sorted(first + second) == ["3", "5"]
    assert not gpus.fits(1) and gpus.take(1) == []
    gpus.give_back(first, 1)
    assert gpus.take(1) == first


def test_fractions_pack_onto_one_gpu_leaving_whole_ones_free():
    gpus = GpuIds(["0", "1"])
    a, b = gpus.take(0.5), gpus.take(0.5)
    assert a == b
    assert gpus.take(1) != a
    assert not gpus.fits(0.5)
    gpus.give_back(a, 0.5)
    assert gpus.take(0.25) == a


@given(st.lists(st.sampled_from([0.25, 0.5, 1.0, 2.0]), max_size=12), st.integers(1, 4))
def test_never_more_than_a_whole_gpu_is_handed_out(amounts, count):
    gpus = GpuIds([str(i) for i in range(count)])
    held: dict[str, float] = {}
    taken = []
    for amount in amounts:
        ids = gpus.take(amount)
        if not ids:
            continue
        assert len(ids) == (1 if amount < 1 else int(amount))
        for gpu in ids:
            held[gpu] = held.get(gpu, 0.0) + min(amount, 1.0)
            assert held[gpu] <= 1.0 + 1e-9
        taken.append((ids, amount))
    for ids, amount in taken:
        gpus.give_back(ids, amount)
    assert gpus.fits(count) and len(gpus.take(count)) == count
