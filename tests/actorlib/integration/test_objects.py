"""Large objects in the shared-memory store: zero-copy reads, freeing, capacity."""

from __future__ import annotations

import gc

import numpy as np
import pytest

import actorlib
from actorlib.exceptions import ObjectStoreFullError

from .conftest import poll


def in_memfd_mapping(array: np.ndarray) -> bool:
    """Whether the array's data lives in an actorlib memfd mapping of this process."""
    address = array.__array_interface__["data"][0]
    with open("/proc/self/maps") as maps:
        for line in maps:
            span, *rest = line.split()
            start, end = (int(x, 16) for x in span.split("-"))
            if start <= address < end:
                return "memfd:actorlib" in line
    return False


@actorlib.remote
def inspect_array(array):
    return in_memfd_mapping(array), array.flags.writeable, float(array.sum())


@actorlib.remote
def make_array(n):
    return np.ones(n)


def test_large_put_is_read_zero_copy(cluster):
    array = np.arange(10_000_000, dtype=np.float64)  # 80 MB
    ref = actorlib.put(array)
    value = actorlib.get(ref)
    assert np.array_equal(value, array)
    assert in_memfd_mapping(value) and not value.flags.writeable
    assert not in_memfd_mapping(actorlib.get(actorlib.put(np.arange(10))))  # small: inline


def test_large_arguments_and_results_stay_zero_copy(cluster):
    ref = actorlib.put(np.ones(5_000_000))
    assert actorlib.get(inspect_array.remote(ref)) == (True, False, 5_000_000.0)
    # A large direct argument is put in the store for the call.
    assert actorlib.get(inspect_array.remote(np.ones(1_000_000))) == (True, False, 1_000_000.0)
    result = actorlib.get(make_array.remote(2_000_000))
    assert in_memfd_mapping(result) and result.sum() == 2_000_000


def test_objects_are_freed_when_no_ref_remains(fresh_cluster):
    fresh_cluster(num_cpus=2)
    runtime = actorlib._core.current()
    assert runtime.store.stats().used == 0
    ref = actorlib.put(np.zeros(3_000_000))
    results = [make_array.remote(500_000) for _ in range(4)]
    actorlib.wait(results, num_returns=4)
    assert runtime.store.stats().used >= 24_000_000 + 16_000_000
    del results  # task results nobody holds
    gc.collect()
    poll(lambda: runtime.store.stats().used < 24_100_000)
    del ref  # a put value
    gc.collect()
    poll(lambda: runtime.store.stats().used == 0)


def test_store_capacity_is_enforced(fresh_cluster):
    fresh_cluster(num_cpus=1, object_store_memory=50 * 2**20)
    kept = actorlib.put(np.zeros(4_000_000))  # 32 MB fits
    with pytest.raises(ObjectStoreFullError, match="MiB"):
        actorlib.put(np.zeros(4_000_000))  # another 32 MB does not
    del kept
    gc.collect()
    poll(lambda: _fits(np.zeros(4_000_000)))

    @actorlib.remote
    def too_big():
        return np.zeros(8_000_000)

    with pytest.raises(ObjectStoreFullError):
        actorlib.get(too_big.remote())


def _fits(array) -> bool:
    try:
        actorlib.put(array)
    except ObjectStoreFullError:
        return False
    return True
