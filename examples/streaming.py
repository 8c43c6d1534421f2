"""Generator tasks and methods stream: each ``yield`` becomes a ref as soon as it is produced.

Run it: actorlib run examples/streaming.py   (or: python examples/streaming.py)
"""

import time

import actorlib


@actorlib.remote
def countdown(n):
    """A generator task: the caller gets refs while it still runs."""
    for i in range(n, 0, -1):
        time.sleep(0.1)
        yield i


@actorlib.remote
def squares_then_fail(n):
    for i in range(n):
        yield i * i
    raise ValueError(f"stopped after {n} squares")


@actorlib.remote
class Tokenizer:
    def tokens(self, text):  # a generator method streams too
        yield from text.split()

    async def slow_tokens(self, text):  # so does an async generator, with `async for`
        for word in text.split():
            yield word.upper()


def main():
    with actorlib.init():
        started = time.monotonic()
        gen = countdown.remote(5)
        first = actorlib.get(next(gen))
        print(f"first item {first} after {time.monotonic() - started:.2f}s (the task runs on)")
        print("rest:", [actorlib.get(ref) for ref in gen])

        refs = list(squares_then_fail.remote(3))
        print("squares:", actorlib.get(refs[:-1]))
        try:
            actorlib.get(refs[-1])
        except ValueError as exc:
            print("the last ref raises:", str(exc).splitlines()[0])

        gen = countdown.remote(50)
        actorlib.get(next(gen))
        actorlib.cancel(gen)  # as in Ray: the next item raises, then the generator stops
        try:
            actorlib.get(next(gen))
        except actorlib.exceptions.TaskCancelledError:
            print("cancelled the generator; items left:", len(list(gen)))

        three = countdown.options(num_returns=3).remote(3)  # N ordinary refs instead
        print("num_returns=3:", actorlib.get(three))

        tokenizer = Tokenizer.remote()
        print("tokens:", [actorlib.get(ref) for ref in tokenizer.tokens.remote("to be or not")])
        print("async tokens:", [actorlib.get(ref) for ref in tokenizer.slow_tokens.remote("streams all the way")])
        print("streaming ok")


if __name__ == "__main__":
    main()
