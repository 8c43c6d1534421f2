"""Squares of 0..3 computed as remote tasks. Run it: actorlib run examples/quickstart.py"""

import actorlib


@actorlib.remote
def square(x: int) -> int:
    return x * x


if __name__ == "__main__":
    actorlib.init()
    futures = [square.remote(i) for i in range(4)]
    print(actorlib.get(futures))
    actorlib.shutdown()
