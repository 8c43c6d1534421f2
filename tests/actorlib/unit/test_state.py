"""The state API's pure parts: filters, limits, summaries, trees, the timeline, task history, rendering."""

from __future__ import annotations

import io
import math

import msgspec
import pytest
from rich.console import Console

import supervisors
from actorlib import _state
from actorlib._cli._render import child_label, table, tree_renderable
from actorlib._node._node_inspector import parse_log_name, tail_offset
from actorlib._node._task_history import TaskHistory
from actorlib._state import ActorState, ClusterTree, NodeTree, ProcessNode, QueryError, TaskState
from actorlib._wire import TaskEvents, TaskRecord
from actorlib._worker._task_events import TaskRecorder


def actors() -> list[ActorState]:
    return [
        ActorState(actor_id="aa01", class_name="Counter", state="ALIVE", name="c1"),
        ActorState(actor_id="aa02", class_name="Counter", state="DEAD", death_cause="killed"),
        ActorState(actor_id="bb03", class_name="Parser", state="ALIVE", is_detached=True),
    ]


def test_filters_match_as_case_insensitive_text() -> None:
    filters = _state.check_filters("actors", [("state", "=", "alive"), ("class_name", "!=", "Parser")])
    result = _state.select("actors", actors(), filters, limit=10)
    assert [a.actor_id for a in result.items] == ["aa01"] and result.total == 1
    detached = _state.check_filters("actors", [("is_detached", "=", "True")])
    assert [a.actor_id for a in _state.select("actors", actors(), detached, 10).items] == ["bb03"]


def test_limit_keeps_the_first_items_and_counts_all() -> None:
    result = _state.select("actors", actors(), [], limit=2)
    assert len(result.items) == 2 and result.total == 3


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ([("colour", "=", "red")], "no field 'colour'"),
        ([("state", "~", "x")], "bad operator '~'"),
        ([("state", "=")], "expected (key, operator, value)"),
    ],
)
def test_bad_filters_are_named(filters: list, message: str) -> None:
    with pytest.raises(QueryError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _state.check_filters("actors", filters)


def test_parse_filter_and_bad_kinds_and_limits() -> None:
    assert _state.parse_filter("state=ALIVE") == ("state", "=", "ALIVE")
    assert _state.parse_filter("name != x") == ("name", "!=", "x")
    with pytest.raises(QueryError, match="expected key=value"):
        _state.parse_filter("state")
    with pytest.raises(QueryError, match="unknown kind 'gizmos'"):
        _state.check_kind("gizmos")
    assert _state.check_kind("placement-groups") == "placement_groups"
    with pytest.raises(QueryError, match="positive integer"):
        _state.check_limit(0)


def test_by_id_prefers_an_exact_id_then_a_prefix() -> None:
    assert [a.actor_id for a in _state.by_id("actors", actors(), "aa")] == ["aa01", "aa02"]
    assert [a.actor_id for a in _state.by_id("actors", actors(), "AA02")] == ["aa02"]


def test_summaries_count_by_state_and_name() -> None:
    summary = _state.summarize("actors", actors())
    assert summary.by_state == {"ALIVE": 2, "DEAD": 1}
    assert summary.by_name == {"Counter": {"ALIVE": 1, "DEAD": 1}, "Parser": {"ALIVE": 1}}
    with pytest.raises(QueryError, match="no summary of nodes"):
        _state.summarize("nodes", [])


def snapshot() -> supervisors.ChildInfo:
    exit = supervisors.Exit(kind=supervisors.ExitKind.ABNORMAL, reason="killed by SIGKILL", signal=9, at=90.0)
    workers = [
        supervisors.ChildInfo(id=f"w-{i}", path=f"root/pool/w-{i}", kind="process", state="running", restart="temporary", pid=100 + i)
        for i in range(5)
    ]  # fmt: skip
    pool = supervisors.ChildInfo(
        id="pool", path="root/pool", kind="supervisor", state="running", restart="permanent", strategy="pool",
        intensity=supervisors.IntensityUse(restarts=0, max_restarts=5, within=30.0), children=workers,
    )  # fmt: skip
    actor = supervisors.ChildInfo(
        id="A-1", path="root/A-1", kind="supervisor", state="running", restart="temporary", strategy="one_for_one",
        intensity=supervisors.IntensityUse(restarts=1, max_restarts=3, within=math.inf),
        children=[supervisors.ChildInfo(id="process", path="root/A-1/process", kind="process", state="running",
                                        restart="permanent", pid=200, restarts=1, uptime=5.0, last_exit=exit)],
    )  # fmt: skip
    return supervisors.ChildInfo(id="root", path="root", kind="supervisor", state="running", restart="permanent", children=[pool, actor])


def test_a_snapshot_becomes_an_annotated_json_friendly_tree() -> None:
    stats = {100 + i: (float(i), 1000 * i) for i in range(5)} | {200: (50.0, 10**6)}
    tree = _state.from_snapshot(snapshot(), now=100.0, annotate=lambda p: {"role": "actor"} if p.endswith("process") else {}, stats=stats)
    (process,) = [n for n in _state.walk(tree) if n.id == "process"]
    assert process.role == "actor" and process.cpu_percent == 50.0 and process.rss == 10**6
    assert process.last_exit is not None and process.last_exit.ago == 10.0 and process.last_exit.signal == 9
    (actor,) = [n for n in tree.children if n.id == "A-1"]
    assert actor.intensity is not None and actor.intensity.within is None  # infinity as null, JSON-safe
    decoded = msgspec.json.decode(msgspec.json.encode(tree), type=ProcessNode)
    assert decoded == tree


def test_bound_keeps_the_busiest_children_and_counts_the_rest() -> None:
    stats = {100 + i: (float(i), 0) for i in range(5)}
    tree = _state.bound(_state.from_snapshot(snapshot(), 100.0, stats=stats), max_children=3, keep=2)
    (pool,) = [n for n in tree.children if n.id == "pool"]
    assert [c.id for c in pool.children] == ["w-4", "w-3"] and pool.elided == 3
    assert _state.cut(tree, 1).children[0].children == [] and _state.cut(tree, 0).elided == _state._tree.count(tree) - 1


def test_sort_orders_children_by_memory() -> None:
    stats = {100 + i: (0.0, 10 - i) for i in range(5)}
    tree = _state.sort(_state.from_snapshot(snapshot(), 100.0, stats=stats), "mem")
    pool = next(n for n in tree.children if n.id == "pool")
    assert [c.rss for c in pool.children] == [10, 9, 8, 7, 6]
    with pytest.raises(ValueError, match="unknown sort key"):
        _state.sort(tree, "colour")


def test_the_tree_renders_restarts_and_last_exit() -> None:
    root = _state.from_snapshot(snapshot(), 100.0)
    node = NodeTree(node_id="ab" * 16, hostname="h", ip="127.0.0.2", pid=7, alive=True, is_head=False, root=root)
    dead = NodeTree(node_id="cd" * 16, hostname="h", ip="127.0.0.3", pid=8, alive=False, is_head=False, error="the node is dead")
    out = io.StringIO()
    Console(file=out, width=200, no_color=True).print(tree_renderable(ClusterTree(nodes=[node, dead])))
    text = out.getvalue()
    assert "restarts 1/3 ever" in text and "last exit: killed by SIGKILL, 10.0s ago" in text
    assert "DEAD" in text and "the node is dead" in text
    assert "restarts 1" in child_label(next(n for n in _state.walk(root) if n.id == "process")).plain


def test_tables_say_when_they_were_cut() -> None:
    out = io.StringIO()
    Console(file=out, width=300, no_color=True).print(table("actors", actors()[:2], 3, detail=False))
    assert "2 of 3 shown" in out.getvalue() and "DEATH_CAUSE" in out.getvalue()


def test_timeline_has_a_row_per_worker() -> None:
    tasks = [
        TaskState(task_id="01", name="f", state="FINISHED", node_id="n1", worker_pid=11, start_time=1.0, end_time=1.5),
        TaskState(task_id="02", name="g", state="RUNNING", node_id="n1", worker_pid=12, start_time=2.0),
    ]
    events = _state.chrome_trace(tasks, now=3.0)
    complete = {e["name"]: e for e in events if e["ph"] == "X"}
    assert complete["f"]["dur"] == 500000.0 and complete["g"]["dur"] == 1000000.0
    assert {e["tid"] for e in events if e["name"] == "thread_name"} == {11, 12}


def test_task_history_is_bounded_and_fails_what_a_dead_worker_ran() -> None:
    history = TaskHistory("n1", max_finished=3)
    done = [TaskRecord(bytes([i]), "f", "j", b"", 0, float(i), float(i) + 0.5, "") for i in range(5)]
    running = TaskRecord(b"\x09", "slow", "j", b"", 0, 9.0, 0.0, "")
    history.add(TaskEvents(worker_id=b"w1", pid=11, done=done, running=[running]))
    states = history.states()
    assert [s.task_id for s in states] == ["09", "04", "03", "02"] and states[0].state == "RUNNING"
    history.worker_gone(b"w1", "killed by SIGKILL")
    assert history.states()[0].state == "FAILED" and "killed by SIGKILL" in history.states()[0].error_message
    history.worker_gone(b"w2", "killed by SIGKILL", leased=("boom", "j"), pid=12)
    assert history.states()[0].name == "boom" and history.states()[0].worker_pid == 12
    history.worker_gone(b"w3", "stopped (idle)", leased=("idle", "j"))
    assert history.states()[0].name == "boom"  # a worker we stopped ran nothing


def test_the_recorder_sends_only_what_changed() -> None:
    recorder = TaskRecorder(b"w", 5, lambda message: None)
    assert recorder.batch() is None
    recorder.started(b"t1", "f", "j", b"", 0)
    first = recorder.batch()
    assert first is not None and [r.name for r in first.running] == ["f"] and not first.done
    assert recorder.batch() is None
    recorder.finished(b"t1", "")
    second = recorder.batch()
    assert second is not None and [r.end > 0 for r in second.done] == [True] and not second.running


def test_log_names_and_tails(tmp_path) -> None:
    assert parse_log_name("w-1a2b3c-1234.out") == ("w-1a2b3c", 1234, "out")
    assert parse_log_name("Counter-77ab-99.err") == ("Counter-77ab", 99, "err")
    assert parse_log_name("node.err") == ("node", 0, "err")
    path = tmp_path / "x.out"
    path.write_bytes(b"one\ntwo\nthree\n")
    with open(path, "rb") as file:
        assert tail_offset(file, 1) == len(b"one\ntwo\n")
        assert tail_offset(file, 2) == len(b"one\n")
        assert tail_offset(file, 10) == 0 and tail_offset(file, 0) == path.stat().st_size


def test_unhealthy_keeps_only_troubled_subtrees() -> None:
    tree = _state.from_snapshot(snapshot(), 100.0)
    kept = _state.unhealthy(tree)
    assert kept is not None and [c.id for c in kept.children] == ["A-1"]  # the pool is fine
    assert [c.id for c in kept.children[0].children] == ["process"]
    calm = _state.from_snapshot(snapshot().children[0], 100.0)
    assert _state.unhealthy(calm) is None
