"""Ray's utilities on actorlib: ActorPool, Queue, multiprocessing.Pool and a concurrent.futures Executor.

Run it: python examples/utilities.py   (or: actorlib run examples/utilities.py)
"""

import concurrent.futures
import os

import actorlib
from actorlib.util import ActorlibExecutor, ActorPool
from actorlib.util.accelerators import NVIDIA_TESLA_V100
from actorlib.util.multiprocessing import Pool
from actorlib.util.queue import Empty, Queue


@actorlib.remote
class Doubler:
    def double(self, v):
        return 2 * v


@actorlib.remote
def producer(queue, name, n):
    """A task that puts into a queue the driver created."""
    for i in range(n):
        queue.put(f"{name}-{i}")
    return n


def connect(prefix):
    """A Pool initializer: runs once in each pool process."""
    os.environ["GREETING"] = prefix


def greet(name):
    return f"{os.environ['GREETING']} {name}"


def cube(x):
    return x**3


def main():
    actorlib.init(num_cpus=2, resources={"accelerator_type:V100": 1})  # as if this node had a V100

    pool = ActorPool([Doubler.remote(), Doubler.remote()])
    print("ActorPool.map:", list(pool.map(lambda actor, v: actor.double.remote(v), [1, 2, 3, 4])))

    queue = Queue(maxsize=10)
    produced = actorlib.get([producer.remote(queue, name, 3) for name in ("a", "b")])
    items = sorted(queue.get(timeout=10) for _ in range(sum(produced)))
    print("Queue from two tasks:", items)
    try:
        queue.get(timeout=0.1)
    except Empty:
        print("Queue.get(timeout=0.1) on an empty queue: Empty")
    queue.shutdown()

    with Pool(2, initializer=connect, initargs=("hello",)) as processes:
        print("Pool.map:", processes.map(greet, ["ada", "bob"]))
        print("Pool.imap_unordered:", sorted(processes.imap_unordered(cube, range(5))))

    with ActorlibExecutor(max_workers=2) as executor:
        futures = [executor.submit(cube, x) for x in range(4)]
        done = [f.result() for f in concurrent.futures.as_completed(futures)]
        print("Executor futures:", sorted(done), "map:", list(executor.map(cube, [5, 6])))

    square = actorlib.remote(cube)
    print("as_completed:", sorted(actorlib.util.as_completed([square.remote(x) for x in range(5)], chunk_size=2)))
    print("map_unordered:", sorted(actorlib.util.map_unordered(square, range(6), backpressure_size=3)))
    print("this node:", actorlib.util.get_node_ip_address())
    on_a_v100 = square.options(accelerator_type=NVIDIA_TESLA_V100)  # needs accelerator_type:V100
    print("on a V100:", actorlib.get(on_a_v100.remote(3)))

    actorlib.shutdown()
    print("utilities ok")


if __name__ == "__main__":
    main()
