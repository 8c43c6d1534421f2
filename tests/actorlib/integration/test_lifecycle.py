"""init and shutdown: no process left behind, ever."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import actorlib
from actorlib.exceptions import NotInitializedError

from .conftest import Cluster, alive, descendants, poll, processes_mentioning, run_driver, wait_gone

REPORT_PIDS = textwrap.dedent("""
    import json, os, sys, time
    import actorlib
    actorlib.init(num_cpus=2)

    @actorlib.remote
    def pid():
        time.sleep(0.2)
        return os.getpid()

    workers = set(actorlib.get([pid.remote() for _ in range(4)]))
    head = actorlib.nodes()[0]["pid"]
    print(json.dumps({"head": head, "workers": sorted(workers)}), flush=True)
""")


def test_init_twice_and_shutdown_twice(fresh_cluster):
    fresh_cluster(num_cpus=1)
    assert actorlib.is_initialized()
    with pytest.raises(RuntimeError, match="already called"):
        actorlib.init()
    actorlib.init(ignore_reinit_error=True)
    actorlib.shutdown()
    actorlib.shutdown()
    assert not actorlib.is_initialized()
    with pytest.raises(NotInitializedError):
        actorlib.put(1)


def test_init_is_a_context_manager(fresh_cluster):
    with actorlib.init(num_cpus=1):
        assert actorlib.get(actorlib.put(5)) == 5
    assert not actorlib.is_initialized()


def test_init_with_bad_arguments_leaves_no_head_and_no_session(fresh_cluster):
    from actorlib._session import sessions_root

    def sessions() -> set[str]:
        return {p.name for p in sessions_root().glob("session_2*")} if sessions_root().exists() else set()

    before_sessions, before_processes = sessions(), set(descendants())
    # The head starts before init() has imported what checks the arguments: it is killed again.
    with pytest.raises(ValueError, match="num_cpus"):
        actorlib.init(num_cpus=-1)
    assert not actorlib.is_initialized()
    assert set(descendants()) - before_processes == set()
    assert sessions() == before_sessions


def test_init_from_another_thread_starts_the_head_late_and_works(fresh_cluster):
    import threading

    made: list[Cluster] = []
    thread = threading.Thread(target=lambda: made.append(fresh_cluster(num_cpus=1)))
    thread.start()
    thread.join()
    assert made and actorlib.get(actorlib.put(7)) == 7  # the head outlives the thread that started it


def test_nothing_is_left_after_shutdown():
    result = run_driver(REPORT_PIDS + "\nactorlib.shutdown()\n")
    assert result.returncode == 0, result.stderr
    pids = json.loads(result.stdout.splitlines()[-1])
    assert wait_gone([pids["head"], *pids["workers"]], 5) == []


def test_nothing_is_left_when_the_driver_exits_without_shutdown():
    result = run_driver(REPORT_PIDS)
    assert result.returncode == 0, result.stderr
    pids = json.loads(result.stdout.splitlines()[-1])
    assert wait_gone([pids["head"], *pids["workers"]], 5) == []


def test_nothing_is_left_when_the_driver_is_sigkilled():
    code = REPORT_PIDS + "\ntime.sleep(3600)\n"
    driver = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        pids = json.loads(driver.stdout.readline())
        processes = [pids["head"], *pids["workers"]]
        assert all(alive(p) for p in processes)
        driver.send_signal(signal.SIGKILL)
        assert wait_gone(processes, 2.0) == []
    finally:
        driver.kill()
        driver.wait()
        driver.stdout.close()


HOLD_ARENA = textwrap.dedent("""
    import json, os, time
    import numpy as np
    import actorlib
    actorlib.init(num_cpus=1)

    @actorlib.remote
    def make():
        return np.ones(2_000_000)

    held = actorlib.get(make.remote())  # a view of the node's arena, pinned by this driver
    arena = next(line.split()[4] for line in open("/proc/self/maps") if "memfd:actorlib-arena" in line)
    print(json.dumps({"head": actorlib.nodes()[0]["pid"], "inode": int(arena)}), flush=True)
    time.sleep(3600)
""")


def arena_holders(inode: int) -> list[int]:
    """The processes that still map or hold open the store arena with this inode."""
    holders = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/maps") as maps:
                mapped = any("memfd:actorlib-arena" in line and line.split()[4] == str(inode) for line in maps)
            held = any(os.stat(f"/proc/{pid}/fd/{fd}").st_ino == inode for fd in os.listdir(f"/proc/{pid}/fd"))
        except OSError:
            continue
        if mapped or held:
            holders.append(int(pid))
    return holders


def test_the_store_arena_is_gone_when_every_process_is_sigkilled():
    driver = subprocess.Popen([sys.executable, "-c", HOLD_ARENA], stdout=subprocess.PIPE, text=True)
    try:
        report = json.loads(driver.stdout.readline())
        assert driver.pid in arena_holders(report["inode"]) and report["head"] in arena_holders(report["inode"])
        driver.send_signal(signal.SIGKILL)  # the head and workers follow it
        assert wait_gone([driver.pid, report["head"]], 5.0) == []
        # No fd and no mapping is left, so the kernel has freed the arena's memory.
        assert poll(lambda: arena_holders(report["inode"]) == [] or None, timeout=5.0)
    finally:
        driver.kill()
        driver.wait()
        driver.stdout.close()


def test_worker_output_reaches_the_driver_and_the_log_files():
    code = """
        import actorlib, sys
        ctx = actorlib.init(num_cpus=1)

        @actorlib.remote
        def square(x):
            print(f"squaring {x}")
            print(f"warning about {x}", file=sys.stderr)
            return x * x

        assert actorlib.get(square.remote(7)) == 49
        import time
        time.sleep(0.5)  # output is relayed asynchronously; give it a moment before exit
        print("SESSION", ctx.address_info["session_dir"])
        actorlib.shutdown()
    """
    result = run_driver(code)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    (line,) = [l for l in lines if "squaring 7" in l]
    assert line.startswith("(square pid=") and line.endswith(") squaring 7")
    assert any(l.startswith("(square pid=") and l.endswith("warning about 7") for l in result.stderr.splitlines())
    session = Path([l.split(" ", 1)[1] for l in lines if l.startswith("SESSION")][0])
    outs = (session / "logs").glob("w-*.out")
    assert any("squaring 7" in path.read_text() for path in outs)


def test_a_local_head_runs_the_drivers_copy_of_actorlib(tmp_path):
    """The head of a local cluster (started early, before the driver's runtime) and so its
    workers import the actorlib the driver imported, even when the driver found it through
    sys.path alone: once a head ran an editable install's copy instead."""
    import shutil

    import supervisors

    copy = tmp_path / "copy"
    for package in (actorlib, supervisors):
        source = Path(package.__file__).parent
        shutil.copytree(source, copy / source.name)  # with __pycache__: its .pyc files stay valid
    code = f"""
        import sys
        sys.path.insert(0, {str(copy)!r})
        import actorlib
        actorlib.init(num_cpus=1)

        @actorlib.remote
        def where():
            return actorlib.__file__

        print(actorlib.__file__, actorlib.get(where.remote(), timeout=60))
        actorlib.shutdown()
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    driver, worker = result.stdout.split()[-2:]
    assert driver == worker == str(copy / "actorlib" / "__init__.py")
    assert poll(lambda: not processes_mentioning(str(copy)), timeout=10)  # the head went with its driver
