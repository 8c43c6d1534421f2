"""A driver doing the same work round after round holds the same objects: what a round makes, it
lets go (the soak in ``benchmarks/load.py`` at unit scale, counted in objects rather than RSS)."""

from __future__ import annotations

import gc
from collections import Counter

import numpy as np

import actorlib

ROUNDS = 12


@actorlib.remote
def block(n: int) -> np.ndarray:
    return np.ones(n, dtype=np.uint8)


@actorlib.remote
def checksum(array: np.ndarray) -> int:
    return int(array[::4096].sum())


@actorlib.remote
def square(i: int) -> int:
    return i * i


@actorlib.remote(num_cpus=0)
class Tally:
    def __init__(self) -> None:
        self.n = 0

    def incr(self) -> int:
        self.n += 1
        return self.n


def one_round(keeper) -> None:
    assert actorlib.get([square.remote(i) for i in range(50)], timeout=60) == [i * i for i in range(50)]
    assert actorlib.get([keeper.incr.remote() for _ in range(10)], timeout=60)[-1] % 10 == 0
    short = Tally.remote()
    assert actorlib.get(short.incr.remote(), timeout=60) == 1
    actorlib.kill(short)
    arrays = [block.remote(2**18) for _ in range(3)]  # 256 KiB each: stored, with their tasks kept to recompute them
    assert actorlib.get([checksum.remote(a) for a in arrays], timeout=60) == [2**18 // 4096] * 3
    put = actorlib.put(np.zeros(2**18, dtype=np.uint8))
    assert actorlib.get(checksum.remote(put), timeout=60) == 0


def actorlib_objects() -> Counter[str]:
    """Live objects of actorlib's own types in this process, by type."""
    gc.collect()
    return Counter(type(o).__qualname__ for o in gc.get_objects() if _ours(type(o)))


def _ours(kind: type) -> bool:
    module = getattr(kind, "__module__", None)  # (a metaclass' instances can answer a descriptor)
    return isinstance(module, str) and module.startswith("actorlib.")


def test_a_driver_repeating_the_same_work_holds_no_more_objects_after_twice_the_rounds(cluster):
    keeper = Tally.remote()
    for _ in range(ROUNDS):  # warm up: caches, connections, pools, lease queues
        one_round(keeper)
    after_n = actorlib_objects()
    for _ in range(ROUNDS):
        one_round(keeper)
    after_2n = actorlib_objects()
    grown = {kind: after_2n[kind] - after_n[kind] for kind in after_2n if after_2n[kind] - after_n[kind] > ROUNDS // 2}
    # Anything a round left behind would have grown by at least one a round (the kept task of
    # every stored result did: 3 a round, before it was forgotten by the right id).
    assert grown == {}, f"after {ROUNDS} more rounds: {grown} (of {dict(after_2n)})"
    actorlib.kill(keeper)
