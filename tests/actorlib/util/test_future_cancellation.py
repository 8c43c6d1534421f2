"""Cancelling an ``ObjectRef.future()`` must not disturb the runtime (it once crashed its thread).

Runs a driver of its own, so a regression cannot take the shared cluster down.
"""

from __future__ import annotations

import json

import pytest

from ..integration.conftest import run_driver, wait_gone

CANCEL_A_REF_FUTURE = """
    import json, psutil
    import actorlib

    actorlib.init(num_cpus=1)
    try:
        import os, tempfile, time
        gate = os.path.join(tempfile.mkdtemp(), "go")

        @actorlib.remote
        def value(x, gate=None):
            while gate and not os.path.exists(gate):  # held until the future is cancelled
                time.sleep(0.01)
            return x

        ref = value.remote(1, gate)
        future = ref.future()
        cancelled = future.cancel()  # before the task finished: the future is still pending
        open(gate, "w").close()
        # With the bug, this waiter is never woken (the crash happens while waking the
        # ref's waiters), so its timeout is kept short.
        actorlib.wait([ref], timeout=2)
        print("cancelled", cancelled)
        print("after", actorlib.get(value.remote(2), timeout=30))
    finally:
        print(json.dumps([p.pid for p in psutil.Process().children(recursive=True)]))
        actorlib.shutdown()
"""


def test_cancelling_a_ref_future_leaves_the_runtime_working():
    result = run_driver(CANCEL_A_REF_FUTURE, timeout=60)
    pids = json.loads(result.stdout.strip().splitlines()[-1])
    assert wait_gone(pids) == []
    assert "cancelled True" in result.stdout, result.stderr
    assert "after 2" in result.stdout, result.stderr
    assert result.returncode == 0
