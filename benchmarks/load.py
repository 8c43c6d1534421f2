"""Load: ``python -m benchmarks.load drivers|queued|soak [options]`` (one JSON object on stdout).

- ``drivers``: a head and two nodes on loopback (``actorlib.testing.Cluster``, 2 CPUs
  each); ``--drivers`` driver processes at once, each submitting ``--tasks`` tasks and
  ``--calls`` calls to an actor of its own, every result checked. Per driver and in all:
  tasks/s and calls/s.
- ``queued``: ``--tasks`` trivial tasks submitted at once to a local cluster
  (``init(num_cpus=2)``), on actorlib and, with ``--ray-python``, on Ray, each in a fresh
  process: the driver's RSS and the cluster processes' (actorlib: the head process, which
  hosts the node; Ray: gcs_server and raylet) before, right after the submissions (most
  tasks still pending), at the peak, after every result came back, and the peaks of two
  more batches like the first (which should reuse that memory, not add to it). Bytes per pending task = the
  driver's growth / the tasks still pending when it was measured.
- ``soak``: ``--seconds`` of mixed work (tasks, actor calls, actors created and killed,
  10 MiB objects put and read across nodes) on a head and a node; every round, the RSS
  and open file descriptors of the driver, the head process, the node process and the
  cluster's processes in all. ``growth``: the last round against the first after
  ``--warmup`` seconds.

Progress goes to stderr. Ray's venv has no psutil: the measuring code reads /proc.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import workloads

ROOT = str(Path(__file__).resolve().parent.parent)
RAY_INIT = {"_node_ip_address": "127.0.0.1", "include_dashboard": False}
RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
MiB = 2**20


def log(message: str) -> None:
    print(f"[load {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---- /proc (no psutil: this also runs in Ray's venv) ------------------------------------


def rss(pid: int) -> int:
    """Resident bytes of ``pid`` but its mapped shared memory (RssAnon + RssFile; 0 if it is
    gone): an object store arena faulted into a process's mapping is the store's memory, not
    the process's (as in benchmarks/workloads.py), for Ray's plasma as well."""
    total = 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("RssAnon:", "RssFile:")):
                total += int(line.split()[1]) * 1024
    except OSError:
        pass
    return total


def open_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def heap_kib(pid: int) -> tuple[int, int]:
    """Of ``pid``'s resident memory, in KiB: its C heap (the ``[heap]`` mapping: glibc's main
    arena) and its other private anonymous mappings (pymalloc's arenas, glibc's mmapped blocks
    and thread arenas, thread stacks). (0, 0) if it is gone. Where a step in RSS was taken."""
    heap = anon = 0
    name = None
    try:
        with open(f"/proc/{pid}/smaps") as smaps:
            for line in smaps:
                first = line.split(maxsplit=6)
                if not first[0].endswith(":"):  # a mapping's header: address perms offset dev inode [name]
                    name = first[5].strip() if len(first) > 5 else ""
                elif first[0] == "Anonymous:" and name in ("[heap]", ""):
                    if name == "[heap]":
                        heap += int(first[1])
                    else:
                        anon += int(first[1])
    except OSError:
        return 0, 0
    return heap, anon


def store_fds(pid: int) -> int:
    """Of ``pid``'s open files, its object store's Unix sockets: the listener, and one connection
    per process that used the store so far (each makes it on first use, so their number grows
    through a run up to the processes there: not a leak)."""
    import psutil

    try:
        conns = psutil.Process(pid).net_connections(kind="unix")
    except psutil.Error:
        return 0
    return sum(1 for c in conns if isinstance(c.laddr, str) and os.path.basename(c.laddr).startswith("store-"))


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


# ---- drivers --------------------------------------------------------------------------------


def one_driver(address: str, tasks: int, calls: int) -> dict[str, Any]:
    """One driver's work (run in its own process by ``drivers``)."""
    import actorlib

    actorlib.init(address=address)

    @actorlib.remote
    def square(i: int) -> int:
        return i * i

    Counter = actorlib.remote(num_cpus=0)(workloads.Counter)

    actorlib.get([square.remote(i) for i in range(10)], timeout=120)
    started = time.perf_counter()
    results = actorlib.get([square.remote(i) for i in range(tasks)], timeout=600)
    task_s = time.perf_counter() - started
    counter = Counter.remote()
    actorlib.get(counter.incr.remote(), timeout=120)
    started = time.perf_counter()
    counts = actorlib.get([counter.incr.remote() for _ in range(calls)], timeout=600)
    call_s = time.perf_counter() - started
    ok = results == [i * i for i in range(tasks)] and counts == list(range(2, calls + 2))
    actorlib.shutdown()
    return {"ok": ok, "tasks_per_s": round(tasks / task_s), "calls_per_s": round(calls / call_s), "seconds": round(task_s + call_s, 2)}


def drivers(args: argparse.Namespace) -> dict[str, Any]:
    from actorlib.testing import Cluster

    cluster = Cluster(head_cpus=2)
    left: list[int] = []
    try:
        cluster.add_node("127.0.0.2", num_cpus=2)
        cluster.add_node("127.0.0.3", num_cpus=2)
        log(f"cluster up at {cluster.address}; starting {args.drivers} drivers")
        command = [sys.executable, "-m", "benchmarks.load", "one-driver", "--address", cluster.address,
                   "--tasks", str(args.tasks), "--calls", str(args.calls)]  # fmt: skip
        env = {**cluster.env, "PYTHONPATH": os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))}
        started = time.perf_counter()
        procs = [subprocess.Popen(command, stdout=subprocess.PIPE, env=env, cwd=ROOT) for _ in range(args.drivers)]
        outs = [json.loads(p.communicate(timeout=args.timeout)[0].decode().strip().splitlines()[-1]) for p in procs]
        wall = time.perf_counter() - started
    finally:
        left = cluster.shutdown()
    total = args.drivers * (args.tasks + args.calls)
    return {
        "figure": "drivers", "drivers": args.drivers, "tasks_each": args.tasks, "calls_each": args.calls,
        "all_correct": all(o["ok"] for o in outs), "wall_s": round(wall, 1),
        "tasks_and_calls_per_s": round(total / wall), "per_driver": outs, "leftover_processes": len(left),
    }  # fmt: skip


# ---- queued -------------------------------------------------------------------------------


def queued_child(system: str, tasks: int) -> dict[str, Any]:
    """Runs in a fresh process (Ray's interpreter for ``ray``)."""
    if system == "ray":
        os.environ.update(RAY_ENV)
        import ray as rt

        rt.init(num_cpus=2, **RAY_INIT)
        parts = ("gcs_server", "raylet")
    else:
        import actorlib as rt

        rt.init(num_cpus=2)
        parts = ("actorlib::head",)

    @rt.remote
    def identity(i: int) -> int:
        return i

    rt.get([identity.remote(i) for i in range(200)])  # workers up, functions exported
    me = os.getpid()
    cluster = [p for p in descendants(me) if any(part in cmdline(p) for part in parts)]
    names = [next(part for part in parts if part in cmdline(p)) for p in cluster]

    def sample() -> dict[str, int]:
        return {"driver": rss(me), "cluster": sum(rss(p) for p in cluster)}

    before = sample()
    started = time.perf_counter()
    refs = [identity.remote(i) for i in range(tasks)]
    submit_s = time.perf_counter() - started
    submitted = sample()
    ready, _ = rt.wait(refs, num_returns=len(refs), timeout=0)
    pending = tasks - len(ready)
    peak = dict(submitted)
    results = []
    for start in range(0, tasks, 10_000):  # drain in slices, sampling the peak on the way
        results += rt.get(refs[start : start + 10_000])
        now = sample()
        peak = {k: max(peak[k], now[k]) for k in peak}
    drained_s = time.perf_counter() - started
    ok = results == list(range(tasks))
    del refs, results, ready
    gc.collect()
    time.sleep(1.0)
    after = sample()
    # The same again, twice: what a batch leaves is reused by the next, not added to.
    peaks = [peak]
    for _ in range(2):
        again = sample()
        refs = [identity.remote(i) for i in range(tasks)]
        for start in range(0, tasks, 10_000):
            ok = ok and rt.get(refs[start : start + 10_000]) == list(range(start, min(start + 10_000, tasks)))
            now = sample()
            again = {k: max(again[k], now[k]) for k in again}
        peaks.append(again)
        del refs
        gc.collect()
    rt.shutdown()
    return {
        "system": system, "tasks": tasks, "ok": ok, "submit_s": round(submit_s, 2), "all_done_s": round(drained_s, 1),
        "pending_when_measured": pending,
        "driver_bytes_per_pending_task": round((submitted["driver"] - before["driver"]) / max(pending, 1)),
        "driver_mib": {k: round(v["driver"] / MiB, 1) for k, v in (("before", before), ("submitted", submitted), ("peak", peak), ("after", after))},
        "cluster_mib": {k: round(v["cluster"] / MiB, 1) for k, v in (("before", before), ("submitted", submitted), ("peak", peak), ("after", after))},
        "driver_peaks_mib": [round(p["driver"] / MiB, 1) for p in peaks],
        "cluster_peaks_mib": [round(p["cluster"] / MiB, 1) for p in peaks],
        "cluster_processes": names,
    }  # fmt: skip


def queued(args: argparse.Namespace) -> dict[str, Any]:
    systems = ["actorlib"] + (["ray"] if args.ray_python else [])
    out = {"figure": "queued", "tasks": args.tasks, "runs": []}
    for system in systems:
        python = args.ray_python if system == "ray" else sys.executable
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))}
        log(f"{system}: {args.tasks:,} tasks at once")
        done = subprocess.run(
            [python, "-m", "benchmarks.load", "queued-child", "--system", system, "--tasks", str(args.tasks)],
            capture_output=True, text=True, timeout=args.timeout, env=env, cwd=ROOT,
        )  # fmt: skip
        if done.returncode != 0:
            out["runs"].append({"system": system, "error": done.stderr[-2000:]})
            continue
        out["runs"].append(json.loads(done.stdout.strip().splitlines()[-1]))
    return out


# ---- soak -----------------------------------------------------------------------------------


def soak(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    import actorlib
    from actorlib.testing import Cluster
    from actorlib.util import state

    @actorlib.remote
    def square(i: int) -> int:
        return i * i

    @actorlib.remote
    def block(n: int) -> np.ndarray:
        return np.ones(n, dtype=np.uint8)

    @actorlib.remote
    def checksum(array: np.ndarray) -> int:
        return int(array[:: 4096].sum())

    Counter = actorlib.remote(num_cpus=0)(workloads.Counter)

    cluster = Cluster(head_cpus=2)
    # Samples go to a file as they are taken, not to a list: a list of them grew the driver
    # ~0.9 KB a round, which the soak then measured as the driver's own creep.
    recorded = tempfile.TemporaryFile("w+")
    sample: dict[str, Any] = {}
    rounds = 0
    try:
        cluster.add_node("127.0.0.2", num_cpus=2)
        cluster.connect()
        nodes = {n.is_head_node: n.pid for n in state.list_nodes()}
        head, node, me = nodes[True], nodes[False], os.getpid()
        counters = [Counter.remote() for _ in range(4)]
        started = time.monotonic()
        while time.monotonic() - started < args.seconds:
            assert actorlib.get([square.remote(i) for i in range(2000)], timeout=300) == [i * i for i in range(2000)]
            calls = actorlib.get([c.incr.remote() for c in counters for _ in range(50)], timeout=300)
            assert len(calls) == 200
            short = [Counter.remote() for _ in range(5)]
            assert actorlib.get([s.incr.remote() for s in short], timeout=300) == [1] * 5
            for s in short:
                actorlib.kill(s)
            del short
            arrays = [block.remote(10 * MiB) for _ in range(4)]  # made on either node, read by tasks anywhere
            assert actorlib.get([checksum.remote(a) for a in arrays], timeout=300) == [10 * MiB // 4096] * 4
            put = actorlib.put(np.zeros(10 * MiB, dtype=np.uint8))
            assert actorlib.get(checksum.remote(put), timeout=300) == 0
            del arrays, put
            rounds += 1
            everyone = cluster.processes()
            sample = {
                "t": round(time.monotonic() - started, 1), "round": rounds,
                "driver_mib": round(rss(me) / MiB, 1), "head_mib": round(rss(head) / MiB, 1), "node_mib": round(rss(node) / MiB, 1),
                "cluster_mib": round(sum(rss(p) for p in everyone) / MiB, 1), "processes": len(everyone),
                "driver_fds": open_fds(me), "head_fds": open_fds(head), "node_fds": open_fds(node),
                "cluster_fds": sum(open_fds(p) for p in everyone),
                "head_store_fds": store_fds(head), "node_store_fds": store_fds(node),
                **dict(zip(("head_heap_kib", "head_anon_kib"), heap_kib(head), strict=True)),
            }  # fmt: skip
            recorded.write(json.dumps(sample) + "\n")
            if rounds % 10 == 0:
                log(f"round {rounds}: {sample}")
        actorlib.shutdown()
    except BaseException as exc:  # anything that ends the soak early (KeyboardInterrupt too): say when, re-raise
        log(f"the soak failed in round {rounds + 1}: {exc!r}")
        recorded.close()
        raise
    finally:
        if actorlib.is_initialized():
            actorlib.shutdown()
        left = cluster.shutdown(keep_logs=args.keep_logs)
        if args.keep_logs:
            log(f"the cluster's logs are in {args.keep_logs}")
    recorded.seek(0)
    samples = [json.loads(line) for line in recorded]
    recorded.close()
    steady = [s for s in samples if s["t"] >= args.warmup] or samples[-1:]
    first, last = steady[0], steady[-1]
    keys = [k for k in first if k.endswith(("_mib", "_fds"))]
    return {
        "figure": "soak", "seconds": args.seconds, "rounds": len(samples), "warmup_s": args.warmup,
        "first": first, "last": last, "growth": {k: round(last[k] - first[k], 1) for k in keys},
        "max_after_warmup": {k: max(s[k] for s in steady) for k in keys},
        "median_after_warmup": {k: statistics.median(s[k] for s in steady) for k in keys},
        "leftover_processes": len(left), "samples": samples,
    }  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("drivers", help="concurrent drivers, each with tasks and actor calls")
    p.add_argument("--drivers", type=int, default=10)
    p.add_argument("--tasks", type=int, default=20_000)
    p.add_argument("--calls", type=int, default=10_000)
    p.add_argument("--timeout", type=float, default=1800)
    p = sub.add_parser("one-driver", help=argparse.SUPPRESS)
    p.add_argument("--address", required=True)
    p.add_argument("--tasks", type=int, required=True)
    p.add_argument("--calls", type=int, required=True)
    p = sub.add_parser("queued", help="many tasks queued at once: memory per pending task, beside Ray")
    p.add_argument("--tasks", type=int, default=200_000)
    p.add_argument("--ray-python", help="an interpreter with ray installed (to compare)")
    p.add_argument("--timeout", type=float, default=1800)
    p = sub.add_parser("queued-child", help=argparse.SUPPRESS)
    p.add_argument("--system", choices=("actorlib", "ray"), required=True)
    p.add_argument("--tasks", type=int, required=True)
    p = sub.add_parser("soak", help="minutes of mixed work: memory and file descriptors over time")
    p.add_argument("--seconds", type=float, default=300)
    p.add_argument("--warmup", type=float, default=30)
    p.add_argument("--keep-logs", metavar="DIR", help="copy the cluster's logs (head, daemon, node, workers) here at the end")
    args = parser.parse_args(argv)
    if args.command == "one-driver":
        result = one_driver(args.address, args.tasks, args.calls)
    elif args.command == "queued-child":
        result = queued_child(args.system, args.tasks)
    else:
        result = {"drivers": drivers, "queued": queued, "soak": soak}[args.command](args)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
