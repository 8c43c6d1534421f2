"""What a head's or node's root supervisor says in the process's log (``log_tree_event``)."""

from __future__ import annotations

import logging

import pytest
import trio

import supervisors
from actorlib._node._head_link import Fenced
from actorlib._node._process import log_tree_event


async def test_a_service_task_that_fails_is_logged_with_its_traceback_and_restart(caplog):
    caplog.set_level(logging.INFO, logger="actorlib.tree")
    runs: list[int] = []
    again = trio.Event()

    async def service() -> None:
        runs.append(1)
        if len(runs) == 1:
            raise ValueError("the bookkeeping went wrong")
        again.set()
        await trio.sleep_forever()

    inner = supervisors.supervisor_spec("node-x", [supervisors.ChildSpec(id="service", start=lambda: supervisors.TaskChild(service))])
    async with supervisors.open_supervisor([inner], id="cluster", on_event=log_tree_event, backoff=None):
        with trio.fail_after(10):
            await again.wait()
    said = [r.getMessage() for r in caplog.records if r.name == "actorlib.tree"]
    failed = [m for m in said if m.startswith("cluster/node-x/service failed: ValueError: the bookkeeping went wrong")]
    assert len(failed) == 1 and "Traceback" in failed[0] and 'raise ValueError("the bookkeeping went wrong")' in failed[0], said
    assert any(m.startswith("cluster/node-x/service: restarting") for m in said), said


async def test_a_subtree_that_gives_up_is_logged_as_an_error(caplog):
    caplog.set_level(logging.INFO, logger="actorlib.tree")

    async def crash() -> None:
        raise RuntimeError("boom")

    inner = supervisors.supervisor_spec(
        "node-x", [supervisors.ChildSpec(id="service", start=lambda: supervisors.TaskChild(crash))],
        intensity=supervisors.Intensity(max_restarts=1, within=60),
    )  # fmt: skip
    with pytest.raises(supervisors.Escalated):
        async with supervisors.open_supervisor([inner], id="cluster", on_event=log_tree_event, backoff=None,
                                               intensity=supervisors.Intensity(max_restarts=0, within=60)):  # fmt: skip
            await trio.sleep_forever()
    errors = [r.getMessage() for r in caplog.records if r.name == "actorlib.tree" and r.levelno == logging.ERROR]
    assert errors and errors[0].startswith("cluster/node-x gave up (too many restarts)") and "boom" in errors[0], errors


async def test_a_fenced_head_link_stops_the_node_tree_as_planned_without_a_traceback(caplog):
    caplog.set_level(logging.INFO, logger="actorlib.tree")

    async def head_link() -> None:
        raise Fenced("could not reach the head at 127.0.0.1:1 for 2s (last: silence)")

    children = [
        supervisors.ChildSpec(id="node", start=lambda: supervisors.TaskChild(trio.sleep_forever)),
        supervisors.ChildSpec(id="head-link", start=lambda: supervisors.TaskChild(head_link), restart="temporary", significant=True),
    ]  # fmt: skip
    with trio.fail_after(10):
        async with supervisors.open_supervisor(children, id="node-host", auto_shutdown="any_significant",
                                               on_event=log_tree_event) as root:  # fmt: skip
            while root.state == "running":
                await trio.sleep(0.01)
    said = [r.getMessage() for r in caplog.records if r.name == "actorlib.tree"]
    ended = [m for m in said if m.startswith("node-host/head-link ended: shutdown: could not reach the head")]
    assert len(ended) == 1 and not [m for m in said if "Traceback" in m or "failed" in m], said
