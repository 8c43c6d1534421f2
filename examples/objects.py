"""Objects: put/get, refs passed around, and large numpy arrays read without a copy.

Run it: actorlib run examples/objects.py   (or: python examples/objects.py)
"""

import time

import numpy as np

import actorlib


@actorlib.remote
def column_means(matrix):
    # ``matrix`` is a read-only view of the node's shared memory: no copy was made.
    return matrix.mean(axis=0)[:3].tolist(), matrix.flags.writeable


@actorlib.remote
def first_of_each(box):
    # Refs nested in containers arrive as refs; get() them when needed.
    return [actorlib.get(ref)[0] for ref in box]


def main() -> None:
    actorlib.init(num_cpus=2)

    config = actorlib.put({"learning_rate": 0.1, "layers": [64, 32]})
    print("config:", actorlib.get(config))

    matrix = np.arange(12_500_000, dtype=np.float64).reshape(-1, 5)  # 100 MB
    started = time.perf_counter()
    ref = actorlib.put(matrix)
    print(f"put 100 MB in {time.perf_counter() - started:.3f}s")

    started = time.perf_counter()
    view = actorlib.get(ref)
    print(f"get 100 MB in {time.perf_counter() - started:.4f}s, copy: {view.flags.owndata}, writeable: {view.flags.writeable}")

    means, writeable = actorlib.get(column_means.remote(ref))
    print("column means:", means, "writeable in the task:", writeable)

    parts = [actorlib.put(np.full(10, i)) for i in range(3)]
    print("first elements:", actorlib.get(first_of_each.remote(parts)))
    actorlib.shutdown()


if __name__ == "__main__":
    main()
