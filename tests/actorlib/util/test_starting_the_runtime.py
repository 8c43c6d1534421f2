"""Pool, ActorlibExecutor and the joblib backend start actorlib when it is not running, and leave no process behind."""

from __future__ import annotations

import os

import joblib
import pytest
from joblib import Parallel, delayed, parallel_backend

import actorlib
from actorlib.util import ActorlibExecutor
from actorlib.util.joblib import register_ray
from actorlib.util.multiprocessing import Pool

from ..integration.conftest import wait_gone

pytestmark = pytest.mark.usefixtures("no_runtime")


def pid_of(_):
    return os.getpid()


def test_pool_starts_a_cluster_of_its_size():
    pool = Pool(processes=2)
    assert actorlib.is_initialized()
    assert actorlib.cluster_resources()["CPU"] == 2
    pids = set(pool.map(pid_of, range(6), chunksize=1))
    pool.terminate()
    assert wait_gone(list(pids)) == []
    assert actorlib.is_initialized()  # as in Ray, the runtime it started stays up


def test_executor_shuts_down_the_runtime_it_started():
    ex = ActorlibExecutor()
    assert actorlib.is_initialized()
    assert ex.submit(pow, 2, 10).result(timeout=30) == 1024
    ex.shutdown()
    assert not actorlib.is_initialized()


def test_executor_keeps_the_runtime_if_asked():
    with ActorlibExecutor(shutdown_ray=False) as ex:
        assert ex.submit(pow, 3, 2).result(timeout=30) == 9
    assert actorlib.is_initialized()


def test_joblib_outside_a_cluster_one_is_started_of_n_jobs_cpus():
    register_ray()
    with parallel_backend("ray"):
        assert Parallel(n_jobs=1)(delayed(pid_of)(i) for i in range(3)) == [os.getpid()] * 3
        assert not actorlib.is_initialized()  # one job needs no cluster
        assert len(set(Parallel(n_jobs=2, batch_size=1)(delayed(pid_of)(i) for i in range(6)))) == 2
    assert actorlib.cluster_resources()["CPU"] == 2  # as Pool(2) does, and Ray
    # the no_runtime fixture shuts it down and checks nothing is left


def test_joblib_outside_a_cluster_minus_one_starts_one_of_this_machines_cpus():
    register_ray()
    with parallel_backend("ray"):
        assert joblib.effective_n_jobs(-1) == os.cpu_count()
    assert actorlib.cluster_resources()["CPU"] == os.cpu_count()
