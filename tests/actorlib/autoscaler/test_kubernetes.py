"""deploy/kubernetes/: the manifests are well formed and every command in them is one the CLI has;
the kubernetes provider's Pods run such commands, against an in-memory stand-in for the API.
(No Kubernetes cluster runs here; docs/deploy.md says what was and was not tested.)"""

from __future__ import annotations

from pathlib import Path

import click
import pytest
import yaml

from actorlib._autoscaler import parse_config
from actorlib._autoscaler._config import INSTANCE_LABEL, KubernetesProvider
from actorlib._autoscaler._providers import LaunchError, Placement
from actorlib._autoscaler._providers._kubernetes import KubernetesNodeProvider, pod_name
from actorlib._cli import main

DEPLOY = Path(__file__).parents[3] / "deploy" / "kubernetes"
KINDS = {"ConfigMap", "Deployment", "Service", "ServiceAccount", "Role", "RoleBinding"}


def documents() -> list[dict]:
    docs = []
    for path in sorted(DEPLOY.glob("*.yaml")):
        docs += [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
    return docs


def containers(doc: dict) -> list[dict]:
    spec = doc.get("spec", {})
    pod = spec.get("template", {}).get("spec", spec)
    return list(pod.get("containers", []))


def check_cli(command: list[str]) -> None:
    """Every word of an ``actorlib ...`` command is a subcommand or option the CLI has."""
    assert command[0] == "actorlib", command
    sub = main.commands.get(command[1])
    assert isinstance(sub, click.Command), f"`actorlib {command[1]}` does not exist"
    options = {name for param in sub.params for name in (*param.opts, *param.secondary_opts)}
    for word in command[2:]:
        if word.startswith("--"):
            name, _, value = word.partition("=")
            assert name in options, f"`actorlib {command[1]}` has no option {name}"
            param = next(p for p in sub.params if name in p.opts)
            if value and not isinstance(param.type, click.Path) and "$(" not in value:
                param.type.convert(value, param, None)  # a bad value raises


def test_the_manifests_are_well_formed():
    docs = documents()
    assert {doc["kind"] for doc in docs} == KINDS
    for doc in docs:
        assert doc["apiVersion"] and doc["metadata"]["name"]
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert ("Deployment", "actorlib-head") in names and ("Service", "actorlib-head") in names
    assert ("Deployment", "actorlib-worker") in names
    head = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "actorlib-head")
    volumes = {v["name"]: v for v in head["spec"]["template"]["spec"]["volumes"]}
    assert volumes["token"]["secret"]["secretName"] == "actorlib-token"  # the token comes from a Secret
    service = next(d for d in docs if d["kind"] == "Service")
    assert service["spec"]["selector"] == head["spec"]["template"]["metadata"]["labels"]


def test_every_command_in_the_manifests_exists_in_the_cli():
    commands = [c["command"] for doc in documents() for c in containers(doc)]
    assert len(commands) == 2
    for command in commands:
        check_cli(command)


def test_the_autoscaler_config_in_the_configmap_validates():
    configmap = next(d for d in documents() if d["kind"] == "ConfigMap")
    config = parse_config(configmap["data"]["cluster.yaml"], "head.yaml: ConfigMap actorlib-cluster")
    assert isinstance(config.provider, KubernetesProvider) and config.provider.head_service == "actorlib-head"


class FakeCoreV1:
    """The three pod methods of kubernetes.client.CoreV1Api, in memory."""

    def __init__(self) -> None:
        self.pods: dict[str, dict] = {}

    def create_namespaced_pod(self, namespace: str, body: dict) -> dict:
        name = body["metadata"]["name"]
        if name in self.pods:
            raise RuntimeError("(409) Conflict")
        self.pods[name] = {**body, "status": {"phase": "Running", "pod_ip": "10.1.0.7"}}
        return body

    def delete_namespaced_pod(self, name: str, namespace: str) -> None:
        if self.pods.pop(name, None) is None:
            raise RuntimeError("(404) Reason: Not Found")

    def list_namespaced_pod(self, namespace: str, label_selector: str) -> dict:
        key, _, value = label_selector.partition("=")
        return {"items": [p for p in self.pods.values() if p["metadata"]["labels"].get(key) == value]}


async def test_the_provider_creates_lists_and_deletes_worker_pods():
    configmap = next(d for d in documents() if d["kind"] == "ConfigMap")
    config = parse_config(configmap["data"]["cluster.yaml"])
    api = FakeCoreV1()
    provider = KubernetesNodeProvider(config, Placement("actorlib-head:6379", "/etc/actorlib/token"), api=api)
    instance = await provider.create("worker", "actorlib-worker-1a2b")
    pod = api.pods[pod_name(instance.instance_id)]
    (container,) = pod["spec"]["containers"]
    check_cli(container["command"])
    assert "--address=actorlib-head:6379" in container["command"]
    assert pod["spec"]["volumes"][0]["secret"]["secretName"] == "actorlib-token"
    assert pod["metadata"]["labels"][INSTANCE_LABEL] == "actorlib-worker-1a2b"
    assert container["resources"]["requests"] == {"cpu": "2", "memory": "4294967296"}
    (listed,) = await provider.list()
    assert (listed.instance_id, listed.node_type, listed.ip) == ("actorlib-worker-1a2b", "worker", "10.1.0.7")
    await provider.terminate(instance.instance_id)
    await provider.terminate(instance.instance_id)  # idempotent
    assert await provider.list() == []
    await provider.create("worker", "actorlib-worker-1a2b")
    with pytest.raises(LaunchError, match="kubernetes create_namespaced_pod: .409. Conflict"):
        await provider.create("worker", "actorlib-worker-1a2b")


def test_up_points_kubernetes_users_to_the_manifests(tmp_path):
    from click.testing import CliRunner

    configmap = next(d for d in documents() if d["kind"] == "ConfigMap")
    path = tmp_path / "cluster.yaml"
    path.write_text(configmap["data"]["cluster.yaml"])
    result = CliRunner().invoke(main, ["up", str(path), "--yes"])
    assert result.exit_code == 1
    assert "apply the manifests in deploy/kubernetes/ with kubectl" in result.output
