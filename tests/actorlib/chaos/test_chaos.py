"""The chaos suite: workloads on a 3-node loopback cluster while processes are killed or frozen.

Each scenario must finish with every result correct, and its cluster must stop
leaving no process behind (the fixture checks the process table). Each one
records what it injected and what survived in the ledger (docs/reliability.md:
``pytest tests/actorlib/chaos --reliability-report PATH``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import actorlib
from actorlib.job_submission import JobStatus, JobSubmissionClient
from actorlib.testing.chaos import Chaos
from actorlib.util.scheduling_strategies import NodeAffinitySchedulingStrategy
from actorlib.util.state import list_actors, list_jobs, list_nodes

from ..integration.conftest import poll, wait_gone
from ..jobs.conftest import cluster_token, cluster_url
from ..reliability import Row

pytestmark = pytest.mark.slow

TASKS = 5_000


@actorlib.remote(max_retries=10)
def square(i: int) -> int:
    time.sleep(0.004)  # some work: the run lasts long enough for a few dozen kills
    return i * i


def completion_times(refs: list, timeout: float) -> list[float]:
    """Wait for every ref, one at a time; the monotonic time each one was seen ready."""
    times = []
    pending = list(refs)
    deadline = time.monotonic() + timeout
    while pending:
        ready, pending = actorlib.wait(pending, num_returns=1, timeout=max(0.0, deadline - time.monotonic()))
        if not ready:
            raise AssertionError(f"{len(pending)} of {len(refs)} results missing after {timeout:g}s")
        times.append(time.monotonic())
    return times


def longest_gap(start: float, times: list[float]) -> float:
    edges = [start, *sorted(times)]
    return max(b - a for a, b in zip(edges, edges[1:]))


def test_tasks_with_retries_all_complete_while_a_worker_is_killed_every_200ms(chaos_cluster):
    row = chaos_cluster.record(Row("tasks, workers killed", "", f"{TASKS:,} tasks (max_retries=10)", lost=0))
    actorlib.get([square.remote(i) for i in range(20)], timeout=60)  # workers up on every node
    began = time.monotonic()
    with Chaos("workers", interval=0.2, seed=1) as chaos:
        refs = [square.remote(i) for i in range(TASKS)]
        times = completion_times(refs, timeout=240)
        results = actorlib.get(refs, timeout=60)
    row.seconds = time.monotonic() - began
    row.lost = sum(1 for i, value in enumerate(results) if value != i * i)
    report = chaos.report
    row.faults = f"{report.count} worker SIGKILLs, one per 200 ms"
    row.recovery = f"longest wait between two results {longest_gap(began, times):.2f} s"
    assert row.lost == 0
    assert report.count >= 10, f"too few kills to mean anything: {report}"
    assert not report.errors, report.errors


ACTORS = 20
ACTOR_KILLS = 30


@actorlib.remote(max_restarts=-1, num_cpus=0)
class Counter:
    def __init__(self) -> None:
        self.n = 0

    def incr(self) -> tuple[int, int]:
        self.n += 1
        return os.getpid(), self.n


def call_until(stop: threading.Event, actors: list, answers: dict, errors: list) -> None:
    """One caller: call each of its actors in turn, one call at a time, until ``stop``."""
    while not stop.is_set():
        for index, actor in actors:
            try:
                answers[index].append(actorlib.get(actor.incr.remote(), timeout=60))
            except actorlib.exceptions.ActorDiedError as error:
                errors.append((index, error))


def test_restartable_actors_answer_correctly_while_their_processes_are_killed(chaos_cluster):
    row = chaos_cluster.record(Row("actors, processes killed", "", f"{ACTORS} actors (max_restarts=-1), 4 callers", lost=0))
    actors = [Counter.remote() for _ in range(ACTORS)]
    assert actorlib.get([a.incr.remote() for a in actors], timeout=60) and True
    answers: dict[int, list[tuple[int, int]]] = {i: [] for i in range(ACTORS)}
    errors: list[tuple[int, Exception]] = []
    stop = threading.Event()
    callers = [
        threading.Thread(target=call_until, args=(stop, list(enumerate(actors))[k::4], answers, errors)) for k in range(4)
    ]
    began = time.monotonic()
    for caller in callers:
        caller.start()
    try:
        report = Chaos("actors", interval=0.25, max=ACTOR_KILLS, seed=2).run()
    finally:
        stop.set()
        for caller in callers:
            caller.join(120)
    assert not any(caller.is_alive() for caller in callers), "a caller hung"
    row.faults = f"{report.count} actor SIGKILLs, one per 250 ms"
    kills = {i: sum(1 for inj in report.injections if inj.actor_id == a._actor_id.hex()) for i, a in enumerate(actors)}
    # Every answer is right: within one incarnation (pid), the caller's calls counted 2, 3, 4, ...
    # (the warm-up call was 1 on the first one); a new incarnation starts again from 1.
    wrong = 0
    for index, seen in answers.items():
        by_pid: dict[int, list[int]] = {}
        for pid, n in seen:
            by_pid.setdefault(pid, []).append(n)
        for pid, counts in by_pid.items():
            start = counts[0]
            wrong += counts != list(range(start, start + len(counts))) or start not in (1, 2)
        wrong += len(by_pid) > kills[index] + 1  # never more incarnations than kills
    row.lost = wrong
    assert all(not error.final for _, error in errors), [str(e) for _, e in errors if e.final]
    # Every actor comes back, and its restart count is the number of times it was killed.
    def restarts():
        listed = {a.actor_id: a for a in list_actors(filters=[("class_name", "=", "Counter")], limit=1000)}
        views = [listed[a._actor_id.hex()] for a in actors]
        return views if all(v.state == "ALIVE" for v in views) else None
    views = poll(restarts, timeout=60)
    back = time.time() - report.injections[-1].time  # the head lists them all ALIVE
    assert actorlib.get([a.incr.remote() for a in actors], timeout=60)
    row.seconds = time.monotonic() - began
    counts = {i: views[i].num_restarts for i in range(ACTORS)}
    row.recovery = f"all {ACTORS} seen ALIVE {back:.2f} s after the last kill (looked once the callers stopped)"
    row.notes = (
        f"{sum(len(v) for v in answers.values()):,} calls answered correctly, {len(errors)} failed with "
        "ActorDiedError(final=False) (calls running when their actor was killed, as documented); "
        "restart counts equal kills for every actor."
    )
    assert counts == kills
    assert wrong == 0


STEPS = 120


@actorlib.remote(max_retries=-1)
def step(i: int, out: str) -> int:
    time.sleep(0.2)
    node = actorlib.get_runtime_context().get_node_id()
    # Its side effect, whole or not at all (a run killed mid-write leaves only a .part file).
    part = Path(out, f"{i}-{os.getpid()}.part")
    part.write_text(json.dumps([node, time.time()]))
    os.replace(part, part.with_suffix(""))
    return i * i


@actorlib.remote(max_restarts=-1, num_cpus=0)
class Notary:
    """Writes down every call it serves (pid, node, time): a second live copy would show."""

    def __init__(self, path: str) -> None:
        self.path = path

    def note(self, k: int) -> int:
        with open(self.path, "a") as file:
            file.write(f"{k} {os.getpid()} {actorlib.get_runtime_context().get_node_id()} {time.time()}\n")
        return k


def notes(path: Path) -> list[tuple[int, int, str, float]]:
    lines = path.read_text().splitlines() if path.exists() else []
    return [(int(k), int(pid), node, float(t)) for k, pid, node, t in (line.split() for line in lines)]


def call_notaries(stop: threading.Event, notaries: list, answers: list, errors: list) -> None:
    k = 0
    while not stop.is_set():
        for notary in notaries:
            k += 1
            try:
                answers.append(actorlib.get(notary.note.remote(k), timeout=60) == k)
            except actorlib.exceptions.ActorDiedError as error:
                errors.append(error)


def when_dead(cluster, ip: str, timeout: float = 30) -> float:
    """Poll (every 10 ms) until the head lists the node at ``ip`` as dead; the wall time it saw that."""
    poll(lambda: ip not in cluster.node_ids(), timeout=timeout, interval=0.01)
    return time.time()


@pytest.mark.parametrize("chaos_cluster", [{"cpus": (4, 2, 2)}], indirect=True)
def test_a_killed_node_and_a_frozen_one_lose_nothing_and_the_frozen_one_is_fenced(chaos_cluster, tmp_path):
    cluster = chaos_cluster
    row = cluster.record(Row("nodes killed and frozen", "", f"{STEPS} tasks (0.2 s, a file each), 3 actors called throughout", lost=0))
    ids = cluster.node_ids()
    b, c = "127.0.0.2", "127.0.0.3"
    out = tmp_path / "steps"
    out.mkdir()
    notaries = [
        Notary.options(scheduling_strategy=NodeAffinitySchedulingStrategy(ids[ip], soft=True)).remote(str(tmp_path / f"n{k}"))
        for k, ip in enumerate(("127.0.0.1", b, c))
    ]
    assert actorlib.get([n.note.remote(0) for n in notaries], timeout=60) == [0, 0, 0]
    stop = threading.Event()
    answers: list[bool] = []
    errors: list[Exception] = []
    caller = threading.Thread(target=call_notaries, args=(stop, notaries, answers, errors))
    began = time.monotonic()
    caller.start()
    try:
        refs = [step.remote(i, str(out)) for i in range(STEPS)]
        poll(lambda: len(actorlib.wait(refs, num_returns=20, timeout=0)[0]) >= 20, timeout=60)
        killed = Chaos("nodes", interval=0, max=1, where=lambda t: t.node_ip == b).run()
        b_dead = when_dead(cluster, b)
        freeze = cluster.node_timeout + 2.5
        frozen = Chaos("nodes", interval=0, max=1, freeze=freeze, where=lambda t: t.node_ip == c).start()
        c_dead = when_dead(cluster, c)
        frozen.wait(freeze + 30)
        results = actorlib.get(refs, timeout=120)
    finally:
        stop.set()
        caller.join(120)
    row.seconds = time.monotonic() - began
    (kill,), (freezing,) = killed.injections, frozen.report.injections
    assert freezing.thawed is not None
    # The frozen node was fenced: once thawed, it stopped itself and everything it ran.
    assert wait_gone([freezing.pid], 30) == []
    # Every task's result is right; a task re-run after its node died left one more file, but no
    # process of a node wrote anything after the head declared that node dead.
    wrong = sum(1 for i, value in enumerate(results) if value != i * i)
    files = [json.loads(p.read_text()) + [p.name] for p in out.iterdir() if p.suffix != ".part"]
    late = [f for f in files if (f[0] == ids[b] and f[1] > b_dead) or (f[0] == ids[c] and f[1] > c_dead)]
    runs: dict[int, list] = {}
    for f in files:
        runs.setdefault(int(f[2].split("-")[0]), []).append(f)
    missing = STEPS - len(runs)
    # At-least-once: a task whose side effect was done just before its node died (its result
    # lost with the node) runs again. Every second run must be that: all runs but the last on a
    # node that failed, before it was declared dead. Anything else is work run twice.
    failed = {ids[b], ids[c]}
    twice = [fs for fs in runs.values() if len(fs) > 1 and not all(f[0] in failed for f in sorted(fs, key=lambda f: f[1])[:-1])]
    again = sum(len(fs) - 1 for fs in runs.values())
    served = [n for k in range(3) for n in notes(tmp_path / f"n{k}")]
    late_calls = [n for n in served if (n[2] == ids[b] and n[3] > b_dead) or (n[2] == ids[c] and n[3] > c_dead)]
    row.lost = wrong + missing + len(late) + len(late_calls) + len(twice) + answers.count(False)
    row.faults = (
        f"node {b} SIGKILLed; node {c} frozen (SIGSTOP) {freeze:g} s, past the {cluster.node_timeout:g} s heartbeat "
        "timeout, then thawed"
    )
    row.recovery = f"killed node seen dead {b_dead - kill.time:.2f} s after; frozen one {c_dead - freezing.time:.2f} s after"
    row.notes = (
        f"tasks running on either node when it failed ran again elsewhere; every task left its file "
        f"({len(files)} files, {again} from a run whose node died before it returned), none written by a node after "
        f"the head declared it dead; {len(answers):,} actor calls "
        f"answered, {len(errors)} failed with ActorDiedError(final=False), none served by a node declared dead; "
        "the frozen node was refused when it came back and stopped itself."
    )
    assert not errors or all(not e.final for e in errors)
    seen = f"nodes {ids}; {b} seen dead at {b_dead:.3f}, {c} at {c_dead:.3f} (wall clock)"
    assert (wrong, missing, late, late_calls, twice) == (0, 0, [], [], []), seen
    assert all(answers)


ARRAY = 10 * 2**20 // 8  # float64s in 10 MiB
PIPELINES, ONCE = 12, 3  # the last ONCE producers may not run again (max_retries=0)


@actorlib.remote(max_retries=3)
def produce(i: int) -> np.ndarray:
    return np.full(ARRAY, float(i))


@actorlib.remote(max_retries=0)
def produce_once(i: int) -> np.ndarray:
    return np.full(ARRAY, float(i))


@actorlib.remote
def double(array: np.ndarray) -> np.ndarray:
    return array * 2


@actorlib.remote
def total(array: np.ndarray) -> float:
    return float(array.sum())


def test_a_pipeline_of_10mb_arrays_recomputes_what_died_with_its_node_or_says_it_is_lost(chaos_cluster):
    cluster = chaos_cluster
    row = cluster.record(Row("objects lost with their node", "", f"{PIPELINES} pipelines: produce → double → total, 10 MiB arrays", lost=0))
    ids = cluster.node_ids()
    holder, elsewhere = "127.0.0.2", NodeAffinitySchedulingStrategy(ids["127.0.0.3"], soft=True)
    there = NodeAffinitySchedulingStrategy(ids[holder], soft=True)  # soft: it may run again elsewhere
    made = [produce.options(scheduling_strategy=there).remote(i) for i in range(PIPELINES - ONCE)]
    made += [produce_once.options(scheduling_strategy=there).remote(i) for i in range(PIPELINES - ONCE, PIPELINES)]
    assert len(actorlib.wait(made, num_returns=PIPELINES, timeout=120, fetch_local=False)[0]) == PIPELINES
    began = time.monotonic()
    # The retryable pipelines' consumers start, and the node holding every array dies under them;
    # the others' consumers come after (their arrays are surely gone then).
    doubled = [double.options(scheduling_strategy=elsewhere).remote(ref) for ref in made[: PIPELINES - ONCE]]
    (kill,) = Chaos("nodes", interval=0, max=1, where=lambda t: t.node_ip == holder).run().injections
    doubled += [double.options(scheduling_strategy=elsewhere).remote(ref) for ref in made[PIPELINES - ONCE :]]
    finals = [total.remote(ref) for ref in doubled]
    outcomes = []
    for i, ref in enumerate(finals):  # a hang would fail here (GetTimeoutError), not wait for ever
        try:
            outcomes.append(actorlib.get(ref, timeout=120) == 2.0 * i * ARRAY)
        except actorlib.exceptions.ObjectLostError as error:
            outcomes.append(error)
    recovered = time.monotonic() - began
    retryable, once = outcomes[: PIPELINES - ONCE], outcomes[PIPELINES - ONCE :]
    lost_once = [o for o in once if isinstance(o, actorlib.exceptions.ObjectLostError)]
    row.lost = sum(o is not True for o in retryable)
    row.seconds = time.monotonic() - began
    row.faults = f"the node holding all {PIPELINES} produced arrays SIGKILLed as their consumers start"
    row.recovery = f"every result or error {recovered:.2f} s after the kill"
    row.notes = (
        f"the {PIPELINES - ONCE} retryable producers ran again on a live node and their pipelines finished "
        f"correct; the {ONCE} pipelines whose producer had max_retries=0 raised ObjectLostError naming the "
        "object, as documented; no get() hung."
    )
    assert all(o is True for o in retryable), retryable
    assert len(lost_once) == ONCE, once
    # Each names its own array and the node that held it. Why depends on who noticed first: the
    # head's word that the node died, or a read from its store that failed before that word came.
    for ref, error in zip(made[PIPELINES - ONCE :], once):
        assert ref.hex() in str(error) and ids[holder] in str(error), str(error)
        assert "died" in str(error) or "cannot be read from the store" in str(error), str(error)
    assert kill.node_ip == holder


JOB = """
import os, time, actorlib
actorlib.init()
print("joined", flush=True)

@actorlib.remote
def square(x):
    return x * x

total = 0
for n in range({rounds}):
    if n == {rounds} // 2:  # half its work before the head is killed, half after
        deadline = time.monotonic() + 180
        while not os.path.exists({go!r}) and time.monotonic() < deadline:
            time.sleep(0.05)
    total += sum(actorlib.get([square.remote(i) for i in range(50)], timeout=120))
    time.sleep(0.1)
print("total", total)
"""
ROUNDS = 60
JOB_TOTAL = ROUNDS * sum(i * i for i in range(50))


@actorlib.remote(num_cpus=0)
class Keeper:
    def __init__(self) -> None:
        self.n = 0

    def incr(self) -> tuple[int, int]:
        self.n += 1
        return os.getpid(), self.n


def job_cli(cluster, *args: str) -> str:
    env = {**cluster.env, "ACTORLIB_TOKEN_FILE": cluster.token_file}
    done = subprocess.run([sys.executable, "-m", "actorlib", "job", *args], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, f"actorlib job {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def connected(url: str, token: str) -> JobSubmissionClient | None:
    try:
        return JobSubmissionClient(url, token=token)
    except ConnectionError:
        return None


def answers_state_queries() -> bool:
    try:
        return bool(list_nodes(timeout=5))
    except (ConnectionError, TimeoutError):
        return False


def found_again(name: str):
    try:
        return actorlib.get(actorlib.get_actor(name, namespace="chaos").incr.remote(), timeout=10)
    except (ValueError, ConnectionError, actorlib.exceptions.ActorError, actorlib.exceptions.GetTimeoutError):
        return None


@pytest.mark.parametrize("chaos_cluster", [{"cpus": (2, 2, 2), "resources": ({"b": 1}, {"c": 1})}], indirect=True)
def test_the_head_is_killed_and_restarted_while_jobs_and_detached_actors_run(chaos_cluster, tmp_path):
    cluster = chaos_cluster
    row = cluster.record(Row("head killed", "", "4 submitted jobs, 3 detached actors, this driver's tasks", lost=0))
    url = cluster_url(cluster)
    client = JobSubmissionClient(url, token=cluster_token(cluster))
    script = tmp_path / "job.py"
    go = tmp_path / "go"  # written once the head is killed: the jobs' second half runs after
    script.write_text(JOB.format(rounds=ROUNDS, go=str(go)))
    ids = cluster.node_ids()
    try:
        job_cli(cluster, "submit", "--address", url, "--submission-id", "early", "--", sys.executable, "-c", "print('early')")
        keepers = {}
        for ip in ("127.0.0.1", "127.0.0.2", "127.0.0.3"):
            strategy = NodeAffinitySchedulingStrategy(ids[ip], soft=True)
            keepers[ip] = Keeper.options(name=f"keeper-{ip}", namespace="chaos", lifetime="detached", scheduling_strategy=strategy).remote()
        before = {ip: actorlib.get([k.incr.remote() for _ in range(3)], timeout=60)[-1] for ip, k in keepers.items()}
        for sid, resources in (("on-b", '{"b": 1}'), ("on-c", '{"c": 1}'), ("on-head", "")):
            extra = ("--entrypoint-resources", resources) if resources else ()
            job_cli(cluster, "submit", "--address", url, "--no-wait", "--submission-id", sid, *extra, "--", sys.executable, str(script))
        poll(lambda: all(client.get_job_status(s) == JobStatus.RUNNING for s in ("on-b", "on-c", "on-head")), timeout=60)
        # Each job's driver has joined the cluster (init() returned), and none has finished yet.
        poll(lambda: all("joined" in client.get_job_logs(s) for s in ("on-b", "on-c", "on-head")), timeout=60)
        assert not any("total" in client.get_job_logs(s) for s in ("on-b", "on-c"))
        (kill,) = Chaos("head", interval=0, max=1).run().injections
        go.touch()
        began = time.monotonic()
        poll(lambda: answers_state_queries(), timeout=60)
        head_back = time.monotonic() - began
        after = {ip: poll(lambda ip=ip: found_again(f"keeper-{ip}"), timeout=60) for ip in keepers}
        found = time.monotonic() - began
        assert actorlib.get(square.remote(7), timeout=60) == 49  # this driver lives on
        poll(lambda: cluster._ready_pids("head.json") not in ([], [kill.pid]), timeout=60)
        # The HTTP API is back (on a new port: this cluster's head asks for any free one).
        fresh = poll(lambda: connected(cluster_url(cluster), cluster_token(cluster)), timeout=60)
        try:
            ends = {s: poll(lambda s=s: (st := fresh.get_job_status(s)).is_terminal() and st, timeout=90) for s in ("early", "on-b", "on-c", "on-head")}
            logs = {s: fresh.get_job_logs(s) for s in ("on-b", "on-c", "on-head")}
            infos = {s: fresh.get_job_info(s) for s in ends}
            failed = infos["on-head"]
        finally:
            fresh.close()
        running = [j for j in list_jobs(limit=1000) if j.type == "SUBMISSION" and j.status in ("PENDING", "RUNNING")]
    finally:
        client.close()
    row.seconds = time.monotonic() - began
    survived = [ip for ip in ("127.0.0.2", "127.0.0.3") if after[ip] == (before[ip][0], before[ip][1] + 1)]
    expected = {"early": JobStatus.SUCCEEDED, "on-b": JobStatus.SUCCEEDED, "on-c": JobStatus.SUCCEEDED, "on-head": JobStatus.FAILED}
    row.lost = sum(ends[s] != status for s, status in expected.items()) + sum(f"total {JOB_TOTAL}" not in logs[s] for s in ("on-b", "on-c"))
    row.lost += 2 - len(survived) + (after["127.0.0.1"] is None) + len(running)
    row.faults = "the head process SIGKILLed (its daemon starts a new one) while 3 jobs and 3 detached actors run"
    row.recovery = f"head answering again {head_back:.2f} s after; every detached actor found {found:.2f} s after"
    row.notes = (
        "jobs on worker nodes ran through the restart and SUCCEEDED with the right totals; the job on the head "
        "node died with it and is FAILED ('the head restarted', as documented); the finished job's record was kept; "
        "no job left PENDING or RUNNING; detached actors on worker nodes kept their process and state, the one on "
        "the head node was created again after the recovery grace."
    )
    assert ends == expected, {s: (infos[s].message, logs.get(s, "")[-2000:]) for s in ends}
    assert all(f"total {JOB_TOTAL}" in logs[s] for s in ("on-b", "on-c")), logs
    assert "the head restarted" in failed.message, failed.message
    assert survived == ["127.0.0.2", "127.0.0.3"], (before, after)
    assert after["127.0.0.1"] is not None and after["127.0.0.1"][0] != before["127.0.0.1"][0]
    assert running == []
    assert kill.kind == "head"
