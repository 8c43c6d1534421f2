"""The joblib backend ("ray", "actorlib"): results and order, n_jobs, options, errors, nesting, cleanup."""

from __future__ import annotations

import importlib
import multiprocessing
import os
import sys

import joblib
import psutil
import pytest
from joblib import Parallel, delayed, parallel_backend

import actorlib
from actorlib.exceptions import ActorDiedError
from actorlib.util.joblib import ActorlibBackend, RayBackend, register_actorlib, register_ray

from ..integration.conftest import Cluster, _stop_shared, wait_gone

CPUS = 3  # not this machine's CPU count (2 in CI), so -1 visibly counts the cluster's


@pytest.fixture(scope="module")
def cluster():
    """A 3-CPU cluster for this module (the Gate fixture uses it too)."""
    _stop_shared()
    started = Cluster(num_cpus=CPUS)
    yield started
    started.shutdown()


def pool_processes():
    """Pids of the processes that are a Pool's actors now (their title names the actor class)."""
    pids = []
    for process in psutil.Process().children(recursive=True):
        try:
            if " ".join(process.cmdline()).strip() == "actorlib::PoolProcess":
                pids.append(process.pid)
        except psutil.Error:  # gone, or a zombie: not running
            pass
    return pids


@pytest.fixture
def no_pool_left(cluster):
    """Afterwards, no pool process is left (and none from an earlier test is left before).

    Counting every new process instead would also count the idle worker the zygote forks
    to replace one an actor took.
    """
    assert wait_gone(pool_processes()) == []
    yield
    assert wait_gone(pool_processes()) == [], "pool processes left behind"


@pytest.fixture
def ray_backend(no_pool_left):
    """Inside ``parallel_backend("ray")``."""
    register_ray()
    with parallel_backend("ray"):
        yield


def pid_of(i):
    return i, os.getpid()


def fail_on_3(i):
    if i == 3:
        raise ValueError(f"bad {i}")
    return i


def nested_sum(i):
    return sum(Parallel(n_jobs=2)(delayed(abs)(-j) for j in range(i))), type(joblib.parallel.get_active_backend()[0]).__name__


def env_of(name, _=None):
    return os.environ.get(name)


def set_env(name, value):
    os.environ[name] = value


def gated(gate):
    actorlib.get(gate.wait.remote())


def die(i):
    if i == 2:
        os._exit(3)
    return i


def run(n_jobs, n=12, **options):
    """Parallel(n_jobs) over pid_of: checks the order, returns the set of pids that ran the calls."""
    results = Parallel(n_jobs=n_jobs, batch_size=1, **options)(delayed(pid_of)(i) for i in range(n))
    assert [i for i, _ in results] == list(range(n))
    return {pid for _, pid in results}


def test_register_names_both_backends():
    register_ray()
    register_actorlib()  # idempotent
    assert joblib.parallel.BACKENDS["ray"] is ActorlibBackend
    assert joblib.parallel.BACKENDS["actorlib"] is ActorlibBackend
    assert RayBackend is ActorlibBackend


def test_results_come_in_input_order_from_the_pools_processes(ray_backend):
    pids = run(2, n=40)
    assert len(pids) == 2 and os.getpid() not in pids
    values = Parallel(n_jobs=2)(delayed(pow)(2, i) for i in range(500))  # auto-batching
    assert values == [2**i for i in range(500)]


def test_the_actorlib_name_is_the_same_backend(no_pool_left):
    register_actorlib()
    with parallel_backend("actorlib"):
        assert len(run(2)) == 2


def test_negative_n_jobs_counts_the_clusters_cpus(ray_backend):
    assert joblib.effective_n_jobs(-1) == CPUS
    assert joblib.effective_n_jobs(-2) == CPUS - 1
    assert joblib.effective_n_jobs(-10) == 1
    assert len(run(-1)) == CPUS
    assert len(run(-2)) == CPUS - 1
    # parallel_backend's default n_jobs is -1: Parallel() without n_jobs uses the whole cluster
    assert len({pid for _, pid in Parallel(batch_size=1)(delayed(pid_of)(i) for i in range(9))}) == CPUS


def test_one_job_runs_the_calls_in_this_process(ray_backend):
    assert run(1) == {os.getpid()}
    assert run(-CPUS) == {os.getpid()}  # all but CPUS-1 of them: one


def test_impossible_n_jobs(ray_backend):
    with pytest.raises(ValueError, match="n_jobs == 0"):
        run(0)
    with pytest.raises(ValueError, match=f"{CPUS + 1} processes .* only {CPUS} CPUs"):
        run(CPUS + 1)


def test_a_calls_exception_is_re_raised_with_its_traceback(ray_backend):
    with pytest.raises(ValueError, match="bad 3") as caught:
        Parallel(n_jobs=2, batch_size=1)(delayed(fail_on_3)(i) for i in range(10))
    remote = caught.value.__cause__
    assert type(remote).__name__ == "_RemoteTraceback"  # joblib's, as for its own process backends
    assert "in fail_on_3" in str(remote) and 'raise ValueError(f"bad {i}")' in str(remote)


def test_a_worker_that_dies_fails_the_call_with_actor_died_error(ray_backend):
    with pytest.raises(ActorDiedError, match="exit code 3"):
        Parallel(n_jobs=2, batch_size=1)(delayed(die)(i) for i in range(6))


def test_ray_remote_args_configure_the_actors(ray_backend):
    env = {"runtime_env": {"env_vars": {"JOBLIB_TEST": "from-parallel"}}}
    assert Parallel(n_jobs=2, ray_remote_args=env)(delayed(env_of)("JOBLIB_TEST") for _ in range(4)) == ["from-parallel"] * 4
    backend_env = {"runtime_env": {"env_vars": {"JOBLIB_TEST": "from-backend"}}}
    with parallel_backend("ray", ray_remote_args=backend_env):
        assert Parallel(n_jobs=2)(delayed(env_of)("JOBLIB_TEST") for _ in range(4)) == ["from-backend"] * 4
        # Parallel's own ray_remote_args win over the backend's
        assert Parallel(n_jobs=2, ray_remote_args=env)(delayed(env_of)("JOBLIB_TEST") for _ in range(2)) == ["from-parallel"] * 2


def test_pool_options_pass_through_and_unknown_ones_are_refused(ray_backend):
    values = Parallel(n_jobs=2, initializer=set_env, initargs=("JOBLIB_INIT", "yes"))(delayed(env_of)("JOBLIB_INIT") for _ in range(4))
    assert values == ["yes"] * 4
    assert len(run(2, n=6, maxtasksperchild=1)) == 6  # a fresh process per batch
    assert len(run(2, max_nbytes="1K", mmap_mode="r", temp_folder="/nonexistent")) == 2  # joblib's memmapping: no effect
    with pytest.raises(TypeError, match="bogus"):
        run(2, bogus=1)


def test_generators_are_refused_as_by_joblibs_multiprocessing_backend(ray_backend):
    for return_as in ("generator", "generator_unordered"):
        with pytest.raises(ValueError, match=f"does not support return_as={return_as}"):
            Parallel(n_jobs=2, return_as=return_as)


def test_nested_parallel_calls_run_in_threads_of_the_outer_call(ray_backend):
    results = Parallel(n_jobs=2)(delayed(nested_sum)(i) for i in range(6))
    assert results == [(sum(range(i)), "ThreadingBackend") for i in range(6)]


def test_timeout_stops_the_pool(ray_backend, gate):
    with pytest.raises(multiprocessing.TimeoutError):
        Parallel(n_jobs=2, timeout=0.5)(delayed(gated)(gate) for _ in range(2))
    # the ray_backend fixture checks the blocked pool processes are gone


def test_a_managed_parallel_keeps_its_processes_between_calls(ray_backend):
    with Parallel(n_jobs=2, batch_size=1) as parallel:
        first = {pid for _, pid in parallel(delayed(pid_of)(i) for i in range(8))}
        assert {pid for _, pid in parallel(delayed(pid_of)(i) for i in range(8))} == first
        with pytest.raises(ValueError, match="bad 3"):
            # one call only: with more, joblib 1.6.0 (any backend, loky too) may hand the next
            # call a late result of this one (docs/utilities.md)
            parallel([delayed(fail_on_3)(3)])
        assert parallel(delayed(abs)(-i) for i in range(4)) == [0, 1, 2, 3]  # a new pool after the error
    assert wait_gone(list(first)) == []


def test_without_joblib_the_import_says_to_install_it(monkeypatch):
    for name in [name for name in sys.modules if name.startswith("actorlib.util.joblib")]:
        monkeypatch.delitem(sys.modules, name)
    for name in [name for name in sys.modules if name == "joblib" or name.startswith("joblib.")]:
        monkeypatch.setitem(sys.modules, name, None)  # what an import sees when joblib is not installed
    with pytest.raises(ImportError, match="pip install joblib"):
        importlib.import_module("actorlib.util.joblib")
