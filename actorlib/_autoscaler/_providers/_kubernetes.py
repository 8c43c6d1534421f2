"""The ``kubernetes`` provider: worker nodes as Pods, created and deleted through the official client.

The head runs in the cluster (deploy/kubernetes/head.yaml); each worker Pod runs
``actorlib start --block --address <head service>:<port>`` with the token from a Secret, and
carries the autoscaler's labels, so listing Pods by label finds the cluster's instances again.
"""

from __future__ import annotations

import re
from typing import Any

import trio

from .._commands import node_args
from .._config import CLUSTER_LABEL, INSTANCE_LABEL, TYPE_LABEL, ClusterConfig, KubernetesProvider
from ._base import Instance, LaunchError, Placement

TOKEN_DIR = "/etc/actorlib"


class KubernetesNodeProvider:
    name = "kubernetes"

    def __init__(self, config: ClusterConfig, placement: Placement, api: Any = None) -> None:
        assert isinstance(config.provider, KubernetesProvider)
        self.config = config
        self.provider = config.provider
        self.placement = placement
        self._api = api  # a CoreV1Api (or anything with its pod methods)

    def api(self) -> Any:
        if self._api is None:
            try:
                from kubernetes import client
                from kubernetes import config as kube_config
            except ImportError:
                raise LaunchError("the kubernetes provider needs the kubernetes client: pip install 'actorlib[kubernetes]'") from None
            try:
                kube_config.load_incluster_config()  # the head runs in a Pod, with its service account
            except kube_config.ConfigException:
                kube_config.load_kube_config()
            self._api = client.CoreV1Api()
        return self._api

    def pod_manifest(self, node_type: str, instance_id: str) -> dict[str, Any]:
        """The worker Pod for one instance (pure)."""
        config, provider = self.config, self.provider
        node = config.available_node_types[node_type]
        labels = {CLUSTER_LABEL: _label(config.cluster_name), TYPE_LABEL: _label(node_type), INSTANCE_LABEL: _label(instance_id)}
        command = [
            "actorlib", "start", "--block", f"--address={provider.head_service}:{config.head_port}",
            "--node-ip-address=$(POD_IP)", f"--token-file={TOKEN_DIR}/token", *node_args(config, node_type, instance_id),
        ]  # fmt: skip
        requests = {"cpu": f"{node.resources.get('CPU', 1):g}"}
        if "memory" in node.resources:
            requests["memory"] = str(int(node.resources["memory"]))
        container: dict[str, Any] = {
            "name": "actorlib-worker",
            "image": provider.image,
            "command": command,
            "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
            "resources": {"requests": requests},
            "volumeMounts": [{"name": "token", "mountPath": TOKEN_DIR, "readOnly": True}],
        }
        extra = dict(node.node_config)
        container.update(extra.pop("container", {}))
        spec: dict[str, Any] = {
            "restartPolicy": "Never",  # the autoscaler replaces nodes; a restarted Pod would be a new node anyway
            "containers": [container],
            "volumes": [{"name": "token", "secret": {"secretName": provider.token_secret, "defaultMode": 0o400}}],
            **extra,
        }
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod_name(instance_id), "labels": labels}, "spec": spec}

    async def create(self, node_type: str, instance_id: str) -> Instance:
        manifest = self.pod_manifest(node_type, instance_id)
        await self._call("create_namespaced_pod", self.provider.namespace, manifest)
        return Instance(instance_id, node_type, state="pending")

    async def terminate(self, instance_id: str) -> None:
        try:
            await self._call("delete_namespaced_pod", pod_name(instance_id), self.provider.namespace)
        except LaunchError as exc:
            if "404" not in str(exc) and "Not Found" not in str(exc):
                raise

    async def list(self) -> list[Instance]:
        selector = f"{CLUSTER_LABEL}={_label(self.config.cluster_name)}"
        pods = await self._call("list_namespaced_pod", self.provider.namespace, label_selector=selector)
        found = []
        for pod in _items(pods):
            labels = _get(pod, "metadata", "labels") or {}
            phase = _get(pod, "status", "phase") or "Pending"
            if phase in ("Succeeded", "Failed"):
                continue
            state = "running" if phase == "Running" else "pending"
            found.append(Instance(labels.get(INSTANCE_LABEL, ""), labels.get(TYPE_LABEL, ""), _get(pod, "status", "pod_ip") or "", state))
        return found

    async def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        api = self.api()

        def call() -> Any:
            return getattr(api, method)(*args, **kwargs)

        try:
            return await trio.to_thread.run_sync(call, abandon_on_cancel=True)  # the client blocks
        except LaunchError:
            raise
        except Exception as exc:  # the client's ApiException, urllib3 errors, ...
            raise LaunchError(f"kubernetes {method}: {exc}") from None


def pod_name(instance_id: str) -> str:
    """A DNS-1123 name for an instance (lower case, digits and '-')."""
    return re.sub(r"[^a-z0-9-]", "-", instance_id.lower()).strip("-")[:63]


def _label(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "-", value)[:63]


def _items(pods: Any) -> list[Any]:
    return list(pods["items"] if isinstance(pods, dict) else pods.items)


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if obj is None:
            return None
        obj = obj.get(key) if isinstance(obj, dict) else getattr(obj, key, None)
    return obj
