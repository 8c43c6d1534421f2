"""Spilling: more objects than the store holds, written to disk and read back transparently.

The store here holds 64 MiB; the driver puts 192 MiB while keeping every ref. The store
writes the objects nobody is reading to its spill file and reads them back on `get` (or
when a task needs one). An object you are reading stays in memory. Past the spill limit,
`put` raises ObjectStoreFullError naming both figures.

Run it: python examples/spilling.py
"""

import gc
import tempfile

import numpy as np

import actorlib
from actorlib.exceptions import ObjectStoreFullError
from actorlib.util import state

MIB = 2**20


@actorlib.remote
def first_and_sum(array):
    return int(array[0]), int(array.sum())


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="spill-example-") as spill_dir:
        run(spill_dir)
    print("spilling ok")


def run(spill_dir: str) -> None:
    actorlib.init(
        num_cpus=1, object_store_memory=64 * MIB, object_spilling_directory=spill_dir, object_spilling_limit=256 * MIB
    )
    refs = [actorlib.put(np.full(4 * MIB, i, dtype=np.uint8)) for i in range(48)]  # 192 MiB: 3x the store
    node = state.memory().nodes[0]
    spilled = [row for row in node.references if row.where == "SPILLED"]
    print(f"store {node.store_used // MIB} of {node.store_capacity // MIB} MiB, "
          f"spilled {node.spilled_bytes // MIB} MiB ({len(spilled)} objects on disk)")  # fmt: skip

    for i, ref in enumerate(refs):  # each read back, restored from disk if it was spilled
        array = actorlib.get(ref)
        assert (array == i).all()
        del array
    print("task on a spilled object:", actorlib.get(first_and_sum.remote(refs[0])))

    more = []
    try:
        while True:  # up to the spill limit (256 MiB), then an error naming both figures
            more.append(actorlib.put(np.zeros(4 * MIB, dtype=np.uint8)))
    except ObjectStoreFullError as error:
        print(f"full after {len(more)} more: {str(error).split(';')[0]}; ... {'spill limit' in str(error)}")
    del refs, more  # the owner drops its refs: their disk space goes back at once
    gc.collect()
    actorlib.shutdown()


if __name__ == "__main__":
    main()
