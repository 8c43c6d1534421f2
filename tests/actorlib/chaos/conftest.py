"""The chaos suite's cluster: a fresh one per scenario, checked to leave no process behind."""

from __future__ import annotations

import shutil

import pytest

from ..integration.conftest import processes_mentioning, wait_gone
from ..multinode.conftest import MultiNode
from ..reliability import Row


class ChaosCluster(MultiNode):
    """A head and two nodes on loopback; stopping it checks, from the process table, that no
    process of its session is left (orphans of killed nodes included: they keep the session's
    ACTORLIB_TMPDIR in their environment)."""

    row: Row | None = None
    leftover: list[int] = []

    def record(self, row: Row) -> Row:
        """The scenario's ledger row; its leftover count is filled in when the cluster stops."""
        self.row = row
        return row

    def stop(self) -> None:  # type: ignore[override]
        processes = set(self.processes())
        self.cli("stop", "--grace-period", "5")
        self.leftover = wait_gone(processes | set(processes_mentioning(self.tmp)), 15)
        if not self.leftover:
            shutil.rmtree(self.tmp, ignore_errors=True)  # kept when something was left, to look at


@pytest.fixture
def chaos_cluster(request, ledger):
    """A fresh cluster for one scenario (head 1 CPU, 127.0.0.2 and 127.0.0.3 with 2 CPUs each;
    ``indirect`` parametrization may give other ``cpus`` and the nodes' custom ``resources``);
    this test process is the driver."""
    param = getattr(request, "param", {})
    cpus = param.get("cpus", (1, 2, 2))
    resources = param.get("resources", ({}, {}))
    nodes = [{"ip": "127.0.0.2", "cpus": cpus[1], "resources": resources[0]}, {"ip": "127.0.0.3", "cpus": cpus[2], "resources": resources[1]}]
    multi = ChaosCluster(nodes, head_cpus=cpus[0], node_timeout=2.0, grace=10.0)  # grace: the default
    try:
        with multi.connected():
            yield multi
    finally:
        if multi.row is not None:
            multi.row.leftover = len(multi.leftover)
            ledger.rows.append(multi.row)
    assert not multi.leftover, f"processes left after `actorlib stop`: {multi.leftover}"
