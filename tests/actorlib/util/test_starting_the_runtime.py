"""Pool and ActorlibExecutor start actorlib when it is not running, and leave no process behind."""

from __future__ import annotations

import os

import pytest

import actorlib
from actorlib.util import ActorlibExecutor
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
