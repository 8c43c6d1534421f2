"""The autoscaler with the local provider: real node processes on 127.0.0.x come and go."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import pytest

import actorlib
from actorlib._cli._status import render_autoscaler
from actorlib.autoscaler import request_resources
from actorlib.cluster import cluster_info

from ..integration.conftest import poll

pytestmark = pytest.mark.slow

CPU_WORKERS = """\
cluster_name: burst
max_workers: {max_workers}
idle_timeout_s: 2
cooldown_s: 1
available_node_types:
  head:
    resources: {{CPU: 2}}
  cpu:
    resources: {{CPU: {cpus}}}
    max_workers: {max_workers}
"""


@actorlib.remote
def blocked(i: int, folder: str) -> tuple[int, str]:
    """Says it started, then waits for the test's go (so the test sees how many run at once)."""
    Path(folder, f"started-{i}").touch()
    deadline = time.monotonic() + 120
    while not Path(folder, "go").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return i * i, actorlib.get_runtime_context().get_node_id()


class MaxWorkers:
    """Samples the number of live worker nodes in the background."""

    def __init__(self, cluster) -> None:
        self.cluster = cluster
        self.most = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            try:
                self.most = max(self.most, len(self.cluster.workers()))
            except actorlib.exceptions.NotInitializedError:
                return  # the test failed and shut the driver down before closing us

    def close(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.most


def test_a_burst_scales_up_to_the_nodes_needed_and_back_down(autoscaled, tmp_path):
    """6 one-CPU tasks on a 2-CPU head: two 2-CPU workers come, all 6 run at once, then the
    workers go after the idle timeout; every result is correct."""
    cluster = autoscaled(CPU_WORKERS.format(max_workers=3, cpus=2))
    sampler = MaxWorkers(cluster)
    refs = [blocked.remote(i, str(tmp_path)) for i in range(6)]
    poll(lambda: len(list(tmp_path.glob("started-*"))) == 6, timeout=60, interval=0.05)
    assert len(cluster.workers()) == 2
    (tmp_path / "go").touch()
    results = actorlib.get(refs, timeout=60)
    assert [value for value, _node in results] == [i * i for i in range(6)]
    assert len({node for _value, node in results}) == 3  # the head and both workers ran some
    cluster.wait_scaled_down(timeout=60)
    assert sampler.close() == 2  # never more than needed
    assert "workers 0 cpu" in cluster.status()


def test_max_workers_is_never_exceeded(autoscaled, tmp_path):
    """8 one-CPU tasks want 6 more CPUs; max_workers 2 of 1-CPU nodes caps it at 4 running."""
    cluster = autoscaled(CPU_WORKERS.format(max_workers=2, cpus=1))
    sampler = MaxWorkers(cluster)
    refs = [blocked.remote(i, str(tmp_path)) for i in range(8)]
    poll(lambda: len(list(tmp_path.glob("started-*"))) == 4 and len(cluster.workers()) == 2, timeout=60, interval=0.05)
    # The two launches end once the autoscaler's next pass sees their nodes; then, capped,
    # nothing more is launched although 4 tasks still wait.
    status = poll(lambda: (s := cluster.status()) and "Pending launches:\n  (none)" in s and s, timeout=30, interval=0.2)
    assert "workers 2 cpu (max 2)" in status, status
    assert len(cluster.workers()) == 2 and len(list(tmp_path.glob("started-*"))) == 4
    (tmp_path / "go").touch()
    assert [value for value, _node in actorlib.get(refs, timeout=60)] == [i * i for i in range(8)]
    assert sampler.close() == 2


FAILING_LAUNCHES = """\
cluster_name: flaky
max_workers: 1
idle_timeout_s: 60
launch_backoff: {{initial_s: 1, max_s: 8}}
worker_setup_commands:
  - date +%s.%N >> {folder}/attempts
  - test $(wc -l < {folder}/attempts) -ge 3 || (echo "launch refused by the test, attempt $(wc -l < {folder}/attempts)" >&2; exit 7)
available_node_types:
  head:
    resources: {{CPU: 2}}
  special:
    resources: {{CPU: 1, special: 1}}
    max_workers: 1
"""


def test_a_failed_launch_is_reported_and_retried_with_backoff(autoscaled, tmp_path):
    cluster = autoscaled(FAILING_LAUNCHES.format(folder=tmp_path))

    @actorlib.remote(resources={"special": 1})
    def where() -> str:
        return actorlib.get_runtime_context().get_node_id()

    ref = where.remote()
    # The report says when a failed type is tried again only while it waits (1 s after the first
    # failure, 2 s after the second): read the head's view in this process, as `actorlib status`
    # does, and render it as it does. One reading takes about 1 s on a loaded machine (a CLI process
    # more), so it may come after the first wait (1 in 2 full runs under load), not after both.
    def waiting() -> str | None:
        said = "\n".join(render_autoscaler(cluster_info(cluster.address).autoscaler, []))
        return said if "; special is tried again in" in said else None

    said = poll(waiting, timeout=30, interval=0.05)
    assert "Recent failed launches:" in said and "exit code 7: launch refused by the test, attempt 1" in said, said
    assert re.search(r"exit code 7: launch refused by the test, attempt [12]; special is tried again in \d", said), said
    node_id = actorlib.get(ref, timeout=60)  # the third launch succeeds, and the task runs there
    assert node_id in {n["NodeID"] for n in cluster.workers()}
    attempts = [float(line) for line in (tmp_path / "attempts").read_text().split()]
    assert len(attempts) == 3
    first_gap, second_gap = attempts[1] - attempts[0], attempts[2] - attempts[1]
    assert first_gap >= 1.0 and second_gap >= 2.0  # backoff: 1 s, then doubled
    status = cluster.status()
    assert "Recent failed launches:" in status and "attempt 2" in status  # both failures are still listed


SPECIAL = """\
cluster_name: special
max_workers: 2
idle_timeout_s: 1
cooldown_s: 0
available_node_types:
  head:
    resources: {CPU: 2}
  special:
    resources: {CPU: 1, special: 1}
    max_workers: 1
"""


def test_an_actor_waits_for_a_node_type_that_has_its_resource(autoscaled):
    cluster = autoscaled(SPECIAL)

    @actorlib.remote(resources={"special": 1})
    class Special:
        def where(self) -> str:
            return actorlib.get_runtime_context().get_node_id()

    actor = Special.remote()
    node_id = actorlib.get(actor.where.remote(), timeout=60)
    (worker,) = cluster.workers()
    assert worker["NodeID"] == node_id and worker["Resources"]["special"] == 1
    # Nothing any node type could hold still fails at once, naming the resource.
    with pytest.raises(actorlib.exceptions.InfeasibleResourcesError, match="unicorn"):
        actorlib.get(actorlib.remote(resources={"unicorn": 1})(lambda: 1).remote(), timeout=30)
    actorlib.kill(actor)
    cluster.wait_scaled_down()


def test_scale_down_never_kills_running_work(autoscaled, tmp_path):
    """Work on the node outlives the idle timeout many times over; tasks arriving while a drain
    begins move or wait; each task runs exactly once and the node goes only when all is done."""
    cluster = autoscaled(SPECIAL)
    log = tmp_path / "runs"

    @actorlib.remote(resources={"special": 1}, max_retries=3)
    def step(i: int, seconds: float) -> int:
        with open(log, "a") as f:
            f.write(f"{i}\n")
        time.sleep(seconds)
        return i

    assert actorlib.get(step.remote(0, 4.0), timeout=90) == 0  # 4x the idle timeout, on one node
    (worker,) = cluster.workers()
    # Short tasks with pauses around the idle timeout: some arrive as the node starts draining.
    for i in range(1, 9):
        assert actorlib.get(step.remote(i, 0.1), timeout=90) == i
        time.sleep(0.4 + 0.15 * i)  # pauses from 0.55 s to 1.6 s straddle the 1 s idle timeout
    runs = log.read_text().split()
    assert sorted(runs, key=int) == [str(i) for i in range(9)]  # none ran twice, none was lost
    cluster.wait_scaled_down()
    assert worker["NodeID"] not in {n["NodeID"] for n in cluster.workers()}


def test_request_resources_scales_ahead_of_demand(autoscaled):
    cluster = autoscaled(CPU_WORKERS.format(max_workers=3, cpus=2))
    request_resources(num_cpus=6)  # the head has 2: two more nodes
    poll(lambda: len(cluster.workers()) == 2, timeout=60, interval=0.1)
    assert "Requested (request_resources): " in cluster.status()
    request_resources(bundles=[])
    cluster.wait_scaled_down()
