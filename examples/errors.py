"""Errors: remote exceptions, retries after worker crashes, cancellation and timeouts.

Run it: actorlib run examples/errors.py   (or: python examples/errors.py)
"""

import os
import tempfile
import time

import actorlib
from actorlib.exceptions import GetTimeoutError, TaskCancelledError, TaskError, WorkerCrashedError


class QuotaExceeded(Exception):
    def __init__(self, used: int) -> None:
        super().__init__(f"quota exceeded: {used} units")
        self.used = used


@actorlib.remote
def charge(units):
    if units > 100:
        raise QuotaExceeded(units)
    return units


@actorlib.remote(max_retries=2)
def crash_once(marker):
    """Kills its own worker the first time; the retry succeeds."""
    if not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(1)
    return "recovered after a worker crash"


@actorlib.remote(max_retries=1)
def always_crash():
    os._exit(1)


@actorlib.remote
def sleep(seconds):
    time.sleep(seconds)


@actorlib.remote
def fan_out(seconds):
    """Waits on two tasks of its own: cancelling it cancels them too (recursive, Ray's default)."""
    children = [sleep.options(num_cpus=0).remote(seconds) for _ in range(2)]
    return actorlib.get(children)


@actorlib.remote(num_cpus=0)
class Dispatcher:
    def fan_out(self, seconds):
        """An actor call's tasks are cancelled with it too, as in Ray (a sync method goes on)."""
        children = [sleep.options(num_cpus=0).remote(seconds) for _ in range(2)]
        return actorlib.get(children)


def main() -> None:
    actorlib.init(num_cpus=2)

    # The remote exception is raised here, as its own class (and as a TaskError).
    try:
        actorlib.get(charge.remote(250))
    except QuotaExceeded as error:
        print("caught QuotaExceeded:", error.used, "units; is a TaskError:", isinstance(error, TaskError))
        print("remote traceback ends with:", error.traceback_str.strip().splitlines()[-1])

    # A failed task's error flows into the tasks that depend on it.
    try:
        actorlib.get(charge.remote(charge.remote(500)))
    except QuotaExceeded:
        print("the dependent task failed with the same error")

    with tempfile.TemporaryDirectory() as tmp:
        print(actorlib.get(crash_once.remote(os.path.join(tmp, "marker"))))
    try:
        actorlib.get(always_crash.remote())
    except WorkerCrashedError as error:
        print("gave up:", str(error).split(";")[0])

    ref = sleep.remote(60)
    try:
        actorlib.get(ref, timeout=0.5)
    except GetTimeoutError:
        print("get timed out (a TimeoutError)")
    actorlib.cancel(ref)
    try:
        actorlib.get(ref)
    except TaskCancelledError:
        print("cancelled the running task")

    parent = fan_out.remote(60)
    time.sleep(0.5)  # let it submit its two tasks
    actorlib.cancel(parent)  # recursive=True: the tasks it submitted are cancelled with it
    try:
        actorlib.get(parent)
    except TaskCancelledError:
        print("cancelled a task and the tasks it submitted")

    call = Dispatcher.remote().fan_out.remote(60)
    time.sleep(0.5)
    actorlib.cancel(call)  # its two tasks are cancelled, so its get() raises in the method
    try:
        actorlib.get(call)
    except TaskCancelledError:
        print("cancelled an actor call and the tasks it submitted")
    actorlib.shutdown()


if __name__ == "__main__":
    main()
