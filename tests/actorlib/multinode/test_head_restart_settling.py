"""Right after a head restart, work waits for the nodes the old head knew instead of failing."""

from __future__ import annotations

import os
import signal

import pytest

import actorlib
from actorlib.exceptions import InfeasibleResourcesError

from ..integration.conftest import poll
from .conftest import MultiNode

pytestmark = pytest.mark.slow


@actorlib.remote(resources={"pool": 1})
def square(x: int) -> int:
    return x * x


def test_a_task_for_a_node_not_yet_back_waits_for_it_and_the_impossible_still_fails():
    multi = MultiNode([{"ip": "127.0.0.2", "cpus": 1, "resources": {"pool": 1}}], node_timeout=2.0, grace=8.0)
    with multi.connected():
        assert actorlib.get(square.remote(3), timeout=60) == 9
        (node,) = multi.node_pids.values()
        (head,) = multi._ready_pids("head.json")
        os.kill(node, signal.SIGSTOP)  # it cannot register with the next head until thawed
        try:
            os.kill(head, signal.SIGKILL)
            poll(lambda: multi._ready_pids("head.json") and multi._ready_pids("head.json")[0] != head, timeout=30)
            # Only the new head's node is known: "pool" is nowhere yet. Both wait ...
            waiting = square.remote(4)
            impossible = square.options(resources={"nowhere": 1}).remote(5)
            assert actorlib.wait([waiting, impossible], num_returns=1, timeout=1)[0] == []
        finally:
            os.kill(node, signal.SIGCONT)
        # ... the one a returning node can run runs there; the other fails once the old nodes
        # have had their chance to come back, naming what it asked for.
        assert actorlib.get(waiting, timeout=60) == 16
        with pytest.raises(InfeasibleResourcesError, match="nowhere"):
            actorlib.get(impossible, timeout=60)
