"""init() arguments: checked with the bad one named, and the local node's default resources."""

from __future__ import annotations

import math
import os
from typing import Any

import pytest

from actorlib._driver._options import InitOptions

GiB = 2**30


@pytest.mark.parametrize("name", ["num_cpus", "num_gpus", "memory", "object_store_memory"])
@pytest.mark.parametrize("value", [-1, -0.5, "4", True, [2]])
def test_negative_or_non_numeric_quantities_are_rejected_by_name(name: str, value: Any) -> None:
    with pytest.raises(ValueError, match=rf"init\({name}=\.\.\.\)") as info:
        InitOptions.check(None, **{name: value})
    assert repr(value) in str(info.value)


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_non_finite_quantities_are_rejected(value: float) -> None:
    with pytest.raises(ValueError, match="num_cpus"):
        InitOptions.check(None, num_cpus=value)


@pytest.mark.parametrize(
    ("kwargs", "error", "text"),
    [
        ({"resources": {"CPU": 4}}, ValueError, "num_cpus"),
        ({"resources": {"TPU": -1}}, ValueError, "resources['TPU']"),
        ({"resources": ["TPU"]}, TypeError, "resources"),
        ({"namespace": 7}, TypeError, "namespace"),
        ({"runtime_env": {"conda": "env"}}, ValueError, "'conda'"),
        ({"runtime_env": {"env_vars": {"A": 1}}}, TypeError, "env_vars"),
    ],
)
def test_other_bad_arguments_are_named(kwargs: dict[str, Any], error: type[Exception], text: str) -> None:
    with pytest.raises(error) as info:
        InitOptions.check(None, **kwargs)
    assert text in str(info.value)


def test_defaults() -> None:
    options = InitOptions.check(None)
    assert options == InitOptions()
    assert (options.num_cpus, options.num_gpus, options.memory, options.object_store_memory) == (None,) * 4
    assert options.resources == {}
    assert options.namespace == ""
    assert options.env_vars == {}
    assert options.log_to_driver is True


def test_good_arguments_are_kept() -> None:
    options = InitOptions.check(
        "unix:/x/sockets/head.sock",
        num_cpus=0,
        num_gpus=2,
        memory=GiB,
        object_store_memory=GiB,
        resources={"TPU": 1},
        namespace="ns",
        runtime_env={"env_vars": {"A": "1"}},
        log_to_driver=False,
    )
    assert options == InitOptions(
        address="unix:/x/sockets/head.sock",
        num_cpus=0,
        num_gpus=2,
        memory=GiB,
        object_store_memory=GiB,
        resources={"TPU": 1},
        namespace="ns",
        env_vars={"A": "1"},
        log_to_driver=False,
        runtime_env={"env_vars": {"A": "1"}},
    )


def test_include_dashboard_asks_an_embedded_cluster_for_its_http_api() -> None:
    assert InitOptions.check(None).dashboard_port == -1  # none unless asked
    assert InitOptions.check(None, include_dashboard=True, dashboard_port=8265).dashboard_port == 8265
    assert InitOptions.check(None, include_dashboard=True, dashboard_port=0, dashboard_host="127.0.0.2").dashboard_host == "127.0.0.2"
    with pytest.raises(ValueError, match="dashboard_port"):
        InitOptions.check(None, include_dashboard=True, dashboard_port=70000)


def test_node_resources_default_to_every_core_and_70_percent_of_ram_minus_the_store(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    resources = InitOptions.check(None).node_resources(physical_memory=10 * GiB, store_memory=2 * GiB)
    assert resources == {"CPU": float(os.cpu_count() or 1), "GPU": 0.0, "memory": float(int(10 * GiB * 0.7 - 2 * GiB))}


def test_node_memory_never_goes_negative() -> None:
    assert InitOptions.check(None).node_resources(physical_memory=GiB, store_memory=4 * GiB)["memory"] == 0.0


@pytest.mark.parametrize(("devices", "gpus"), [("0,1", 2.0), ("3", 1.0), ("", 0.0), ("-1", 0.0), ("0, 1, ", 2.0)])
def test_node_gpus_default_to_the_visible_devices(monkeypatch: pytest.MonkeyPatch, devices: str, gpus: float) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", devices)
    assert InitOptions.check(None).node_resources(physical_memory=GiB, store_memory=0)["GPU"] == gpus


def test_explicit_node_resources_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")
    options = InitOptions.check(None, num_cpus=3, num_gpus=1, memory=5 * GiB, resources={"TPU": 8})
    resources = options.node_resources(physical_memory=100 * GiB, store_memory=GiB)
    assert resources == {"CPU": 3.0, "GPU": 1.0, "memory": float(5 * GiB), "TPU": 8.0}


def test_spilling_settings_in_our_spelling_and_rays(tmp_path) -> None:
    import json

    from actorlib._store._spill import spill_settings

    ours = InitOptions.check(None, object_spilling_directory=str(tmp_path / "a"), object_spilling_limit=5 * GiB)
    assert (ours.object_spilling_directory, ours.object_spilling_limit) == (str(tmp_path / "a"), 5 * GiB)
    config = ours.node_config(tmp_path)
    assert (config.object_spilling_directory, config.object_spilling_limit) == (str(tmp_path / "a"), 5 * GiB)
    ray_config = {"type": "filesystem", "params": {"directory_path": [str(tmp_path / "b"), "/elsewhere"]}}
    rays = InitOptions.check(None, _system_config={"object_spilling_config": json.dumps(ray_config)})
    assert (rays.object_spilling_directory, rays.object_spilling_limit) == (str(tmp_path / "b"), -1)
    off = InitOptions.check(None, _system_config={"automatic_object_spilling_enabled": False})
    assert off.object_spilling_limit == 0
    default = spill_settings(str(tmp_path), "", -1)
    assert default.directory == str(tmp_path / "spill") and default.limit > 0  # the disk's free space less 5%


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({"object_spilling_limit": -1}, "object_spilling_limit"),
        ({"object_spilling_limit": "1G"}, "object_spilling_limit"),
        ({"object_spilling_directory": 7}, "object_spilling_directory"),
        ({"_system_config": {"object_spilling_config": '{"type": "smart_open", "params": {}}'}}, "smart_open"),
        ({"_system_config": {"object_spilling_config": "not json"}}, "object_spilling_config"),
    ],
)
def test_bad_spilling_settings_are_named(kwargs: dict[str, Any], text: str) -> None:
    with pytest.raises((ValueError, TypeError)) as info:
        InitOptions.check(None, **kwargs)
    assert text in str(info.value)


def test_a_bad_spill_limit_in_the_environment_is_named(monkeypatch, tmp_path) -> None:
    from actorlib._store._spill import LIMIT_ENV, spill_settings

    monkeypatch.setenv(LIMIT_ENV, "lots")
    with pytest.raises(ValueError, match=LIMIT_ENV):
        spill_settings(str(tmp_path))
    monkeypatch.setenv(LIMIT_ENV, "0")
    assert spill_settings(str(tmp_path)).limit == 0
