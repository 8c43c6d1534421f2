"""Cluster config validation: every error names the file, the line and the key."""

from __future__ import annotations

import textwrap

import pytest

from actorlib._autoscaler import ConfigError, parse_config
from actorlib._autoscaler._config import LocalProvider, SshProvider

GOOD = textwrap.dedent(
    """\
    cluster_name: demo
    provider:
      type: local
    max_workers: 3
    idle_timeout_s: 5
    available_node_types:
      head:
        resources: {CPU: 2}
      cpu_worker:
        resources: {CPU: 2, ssd: 1}
        min_workers: 0
        max_workers: 2
    """
)


def error(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "c.yaml")
    return str(info.value)


def test_a_good_config_and_its_defaults():
    config = parse_config(GOOD)
    assert config.cluster_name == "demo" and isinstance(config.provider, LocalProvider)
    assert list(config.worker_types) == ["cpu_worker"]
    assert config.worker_types["cpu_worker"].resources == {"CPU": 2, "ssd": 1}
    assert config.head_node_type == "head" and config.head_port == 6379
    assert str(config.token_path).endswith(".actorlib/clusters/demo/token")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("    max_workers: 2", "    max_worker: 2"), "c.yaml, line 12: available_node_types.cpu_worker.max_worker: unknown key 'max_worker' (did you mean 'max_workers'?)"),
        (("max_workers: 3", "max_workers: three"), "c.yaml, line 4: max_workers: Expected int, got str"),
        (("idle_timeout_s: 5", "idle_timeout_s: -1"), "c.yaml, line 5: idle_timeout_s: Expected float > 0.0"),
        (("type: local", "type: gce"), "c.yaml, line 3: provider.type: Invalid value 'gce'"),
        (("{CPU: 2, ssd: 1}", "{CPU: 2, ssd: lots}"), "c.yaml, line 10: available_node_types.cpu_worker.resources.ssd: Expected float"),
        (("min_workers: 0", "min_workers: 3"), "c.yaml, line 11: available_node_types.cpu_worker.min_workers: is 3, more than max_workers (2)"),
        (("max_workers: 3", "max_workers: 3\nmax_workers: 4"), "c.yaml, line 5: the key 'max_workers' is given twice"),
        (("cluster_name: demo", "cluster_name: 'no spaces'"), "c.yaml, line 1: cluster_name: Expected str matching regex"),
        (("  type: local", "  type: local\n  worker_ips: [10.1.2.3]"), "c.yaml, line 4: provider.worker_ips[0]: 10.1.2.3 is not a loopback address"),
        (("head_node_type: head", ""), None),
        (("  head:\n", "  hed:\n"), "c.yaml: head_node_type: 'head' is not one of available_node_types (hed, cpu_worker)"),
        (("cluster_name: demo\n", ""), "c.yaml, line 1: the key 'cluster_name' is required"),
    ],
)
def test_errors_name_the_line_and_the_key(change: tuple[str, str], expected: str | None):
    text = GOOD.replace(*change)
    if expected is None:
        parse_config(text)
        return
    assert error(text).startswith(expected), error(text)


def test_not_yaml_and_not_a_mapping():
    assert error("a: [1, 2\nb: 3\n").startswith("c.yaml, line 2: not valid YAML: expected ',' or ']'")
    assert error("- 1\n- 2\n") == "c.yaml: a cluster config is a mapping of keys (cluster_name, provider, ...), got list"


def test_ssh_needs_hosts_and_credentials():
    ssh = GOOD.replace("  type: local", "  type: ssh\n  head_ip: 10.0.0.1\n  worker_ips: [10.0.0.2, 10.0.0.3]")
    assert "the ssh provider needs auth.ssh_user" in error(ssh)
    with_auth = ssh + "auth: {ssh_user: me, ssh_private_key: ~/.ssh/id_ed25519}\n"
    config = parse_config(with_auth)
    assert isinstance(config.provider, SshProvider) and config.provider.worker_ips == ["10.0.0.2", "10.0.0.3"]
    missing = ssh.replace("  worker_ips: [10.0.0.2, 10.0.0.3]\n", "")
    assert error(missing) == "c.yaml, line 2: provider: the key 'worker_ips' is required"


def test_a_missing_file_is_named():
    from actorlib._autoscaler import load_config

    with pytest.raises(ConfigError, match="cannot read the cluster config /nonexistent.yaml"):
        load_config("/nonexistent.yaml")
