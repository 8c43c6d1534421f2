"""What is measured: every workload, the systems it runs on, and the figures it reports.

Pure data, imported by both the harness and the workload processes.
"""

from dataclasses import dataclass

SYSTEMS = ("actorlib", "ray", "ppe")
RUNTIMES = ("actorlib", "ray")  # run the same workload source, written against Ray Core's API
REFERENCE = "trio"  # the bare trio round trip: a yardstick, not a system

INIT_KWARGS = {"num_cpus": 2}
# Ray-only arguments stay here, never passed to actorlib: they keep every Ray listener
# on loopback and skip the dashboard.
SYSTEM_INIT_KWARGS: dict[str, dict[str, object]] = {
    "actorlib": {},
    "ray": {"_node_ip_address": "127.0.0.1", "include_dashboard": False},
}
SYSTEM_ENV: dict[str, dict[str, str]] = {
    "ray": {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"},
}
SYSTEM_MODULES = {"actorlib": "actorlib", "ray": "ray", "ppe": "concurrent.futures", "trio": "trio"}


@dataclass(frozen=True)
class Figure:
    """One number (or fact) a workload reports, under `key` in its result line."""

    key: str
    label: str
    unit: str
    better: str = "low"  # "high", "low", or "" for a fact that is neither


@dataclass(frozen=True)
class Workload:
    """A workload, run in a fresh process per system and repetition."""

    name: str
    systems: tuple[str, ...]
    figures: tuple[Figure, ...]
    # The process waits on stdin after its result line, so that the harness can
    # measure its cluster; it shuts down when the harness closes stdin.
    holds: bool = False


_ALL = SYSTEMS

WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload(
            "cold_start",
            _ALL,
            (
                Figure("cold_start_s", "spawn to first task result", "s"),
                Figure("import_s", "import", "s"),
                Figure("init_s", "init() (ppe: executor)", "s"),
                Figure("first_task_s", "first task after init", "s"),
            ),
        ),
        Workload("sync_tasks", _ALL, (Figure("tasks_per_s", "1,000 sequential calls", "tasks/s", "high"),)),
        Workload("async_tasks", _ALL, (Figure("tasks_per_s", "10,000 submits, one get", "tasks/s", "high"),)),
        Workload(
            "wait_loop",
            RUNTIMES,
            (
                Figure("tasks_per_s", "10,000 tasks drained by a wait() loop", "tasks/s", "high"),
                Figure("rss_growth_mib", "driver RSS (no shmem) after the loop minus before", "MiB"),
            ),
        ),
        Workload("put_get", RUNTIMES, (Figure("ops_per_s", "10,000 get(put(small dict))", "ops/s", "high"),)),
        Workload(
            "numpy",
            _ALL,
            (
                Figure("put_s", "put 100 MiB float64", "s"),
                Figure("put_again_s", "put it again (memory touched before)", "s"),
                Figure("copy_s", "floor: np.copyto into touched memory", "s"),
                Figure("get_s", "get it back", "s"),
                Figure("get_owndata", "got array owns its data (copy)", "", ""),
                Figure("get_writeable", "got array is writeable", "", ""),
                Figure("pass_s", "task(ref) -> arr[0] (ppe: task(arr))", "s"),
                Figure("sum_local_s", "a worker sums a local 100 MiB array", "s"),
                Figure("sum_ref_s", "task(ref) -> arr.sum()", "s"),
                Figure("sum_ref_again_s", "the same task again (pages mapped)", "s"),
                Figure("sum_value_s", "task(arr) -> arr.sum() (by value)", "s"),
            ),
        ),
        Workload(
            "idle",
            _ALL,
            (
                Figure("processes", "processes after 1 task + 2 s idle", "", "low"),
                Figure("rss_mib", "RSS sum", "MiB"),
                Figure("pss_mib", "PSS sum", "MiB"),
                Figure("uss_mib", "USS sum", "MiB"),
                Figure("shutdown_s", "shutdown() to process exit", "s"),
                Figure("teardown_s", "process exit to last process gone", "s"),
                Figure("survivors", "processes alive 30 s after exit", ""),
            ),
            holds=True,
        ),
        Workload(
            "recover",
            RUNTIMES,
            (
                Figure("recover_s", "task SIGKILLs its worker, retried", "s"),
                Figure("normal_task_s", "a normal task, for reference", "s"),
            ),
        ),
        Workload("actor_calls", RUNTIMES, (Figure("calls_per_s", "1,000 sequential calls", "calls/s", "high"),)),
        Workload("actor_pipeline", RUNTIMES, (Figure("calls_per_s", "10,000 calls, one get", "calls/s", "high"),)),
        Workload(
            "actor_create",
            RUNTIMES,
            (
                Figure("create_s", "8 actors created, each answered", "s"),
                Figure("first_actor_s", "first actor answered", "s"),
                Figure("actor_cold_start_s", "spawn to first actor answer", "s"),
            ),
        ),
        Workload(
            "actors_100",
            RUNTIMES,
            (
                Figure("create_s", "100 actors created, each answered", "s"),
                Figure("call_all_s", "one more call to each", "s"),
                Figure("pss_per_actor_mib", "cluster PSS per actor", "MiB"),
                Figure("processes_per_actor", "processes per actor", "", ""),
            ),
        ),
        Workload(
            "actors_1000",
            ("actorlib",),  # Ray: ~47 MiB each, about 46 GiB for 1,000, more than this machine has
            (
                Figure("create_s", "1,000 actors created, each answered", "s"),
                Figure("call_all_s", "one more call to each", "s"),
                Figure("pss_per_actor_mib", "cluster PSS per actor", "MiB"),
                Figure("processes_per_actor", "processes per actor", "", ""),
            ),
        ),
        Workload(
            "tasks_100k",
            RUNTIMES,
            (
                Figure("total_s", "100,000 tasks submitted at once, all done", "s"),
                Figure("submit_s", "submitting them", "s"),
                Figure("driver_bytes_per_task", "driver RSS (no shmem) per pending task", "B"),
                Figure("cluster_bytes_per_task", "rest of the cluster's PSS per pending task", "B"),
            ),
        ),
        Workload("trio_rtt", (REFERENCE,), (Figure("rtt_us", "trio Unix-socket round trip", "µs"),)),
        Workload(
            "python_start",
            (REFERENCE,),
            (
                Figure("bare_s", "python -c pass", "s"),
                Figure("numpy_s", 'python -c "import numpy"', "s"),
            ),
        ),
    )
}
