"""Application metrics on the 3-node cluster: each node's processes' values are that node's
series, labelled with its node_id and node_ip, readable with the metrics token."""

from __future__ import annotations

import subprocess
import sys

import pytest

import actorlib
from actorlib.util import state
from actorlib.util.metrics import Counter, Gauge

from ..integration.conftest import poll
from .conftest import Dash
from .test_http import scrape, total

pytestmark = pytest.mark.slow


@actorlib.remote(num_cpus=0)
def record(times: int) -> str:
    jobs = Counter("dash_app_jobs", "Jobs done", tag_keys=("kind",))
    for _ in range(times):
        jobs.inc(tags={"kind": "batch"})
    Gauge("dash_app_ready").set(1)
    return actorlib.get_runtime_context().get_node_id()


def test_each_nodes_processes_are_its_series(dash: Dash) -> None:
    placed = {
        "127.0.0.2": record.options(resources={"ssd": 1}).remote(2),
        "127.0.0.3": record.options(resources={"gpu_like": 1}).remote(3),
    }
    node_of = {ip: actorlib.get(ref) for ip, ref in placed.items()}
    Counter("dash_app_jobs", "Jobs done", tag_keys=("kind",)).inc(4, tags={"kind": "batch"})  # the driver: the head's node
    ips = {node.node_id: node.node_ip for node in state.list_nodes()}
    assert {ips[node_id] for node_id in node_of.values()} == {"127.0.0.2", "127.0.0.3"}

    def settled() -> dict | None:
        metrics = scrape(dash)  # with the read-only metrics token
        jobs = metrics.get("dash_app_jobs", [])
        by_ip = {ip: total(jobs, "dash_app_jobs_total", node_ip=ip, kind="batch") for ip in ("127.0.0.1", "127.0.0.2", "127.0.0.3")}
        return metrics if by_ip == {"127.0.0.1": 4, "127.0.0.2": 2, "127.0.0.3": 3} else None

    metrics = poll(settled, timeout=30)
    for sample in metrics["dash_app_jobs"]:
        assert ips[sample.labels["node_id"]] == sample.labels["node_ip"]  # the same labels as actorlib_node_* families
    assert {s.labels["node_ip"] for s in metrics["dash_app_ready"]} >= {"127.0.0.2", "127.0.0.3"}


DRIVER = """
import sys
import actorlib
from actorlib.util.metrics import Counter

actorlib.init(address=sys.argv[1])
exits = Counter("dash_app_driver_exits", tag_keys=("driver",)).set_default_tags({"driver": "sub"})
exits.inc()  # reported at once: the process's first report
print("recorded", flush=True)
sys.stdin.readline()
exits.inc(2)  # the next report may wait a minute: it goes with shutdown() at exit
"""


def test_a_driver_reports_its_last_values_as_it_shuts_down(dash: Dash) -> None:
    env = {**dash.env, "ACTORLIB_TOKEN_FILE": dash.token_file, "ACTORLIB_METRICS_REPORT_PERIOD": "60"}

    def count() -> float:
        return total(scrape(dash).get("dash_app_driver_exits", []), "dash_app_driver_exits_total", driver="sub")

    command = [sys.executable, "-c", DRIVER, dash.address]
    with subprocess.Popen(command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as driver:
        try:
            assert driver.stdout.readline().strip() == "recorded"
            poll(lambda: count() == 1, timeout=30)
            driver.stdin.write("go\n")
            driver.stdin.flush()
            assert driver.wait(timeout=60) == 0
        finally:
            if driver.poll() is None:
                driver.kill()
    poll(lambda: count() == 3, timeout=30)  # the last report, kept after its connection closed
