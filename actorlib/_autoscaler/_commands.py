"""The shell commands run on a node's machine: setup, start and stop, with the ACTORLIB_* variables."""

from __future__ import annotations

import shlex

import msgspec

from ._config import CLUSTER_LABEL, INSTANCE_LABEL, TYPE_LABEL, ClusterConfig

WORKER_START = (
    "{cli} start --address=$ACTORLIB_HEAD_ADDRESS --node-ip-address=$ACTORLIB_NODE_IP"
    " --token-file=$ACTORLIB_TOKEN_FILE $ACTORLIB_NODE_ARGS"
)
HEAD_START = (
    "{cli} start --head --port=$ACTORLIB_HEAD_PORT --node-ip-address=$ACTORLIB_NODE_IP"
    " --token-file=$ACTORLIB_TOKEN_FILE --autoscaling-config=$ACTORLIB_CLUSTER_CONFIG $ACTORLIB_NODE_ARGS"
)
STOP = "{cli} stop"


def node_args(config: ClusterConfig, node_type: str, instance_id: str = "") -> list[str]:
    """``actorlib start`` options giving a node its type's resources and the autoscaler's labels."""
    resources = dict(config.available_node_types[node_type].resources)
    args = [f"--num-cpus={resources.pop('CPU', 1):g}", f"--num-gpus={resources.pop('GPU', 0):g}"]
    if "memory" in resources:
        args.append(f"--memory={int(resources.pop('memory'))}")
    if resources:
        args.append("--resources=" + msgspec.json.encode(resources).decode())
    labels = {**config.available_node_types[node_type].labels, CLUSTER_LABEL: config.cluster_name, TYPE_LABEL: node_type}
    if instance_id:
        labels[INSTANCE_LABEL] = instance_id
    args.append("--labels=" + msgspec.json.encode(labels).decode())
    return args


def node_env(config: ClusterConfig, node_type: str, instance_id: str, **values: str) -> dict[str, str]:
    """The variables every command of a node sees (``values``: NODE_IP=..., HEAD_ADDRESS=...)."""
    env = {
        "ACTORLIB_CLUSTER_NAME": config.cluster_name,
        "ACTORLIB_NODE_TYPE": node_type,
        "ACTORLIB_INSTANCE_ID": instance_id,
        "ACTORLIB_NODE_ARGS": " ".join(node_args(config, node_type, instance_id)),
        "ACTORLIB_HEAD_PORT": str(config.head_port),
    }
    env.update({f"ACTORLIB_{name}": value for name, value in values.items()})
    return env


def script(env: dict[str, str], user_env: dict[str, str], commands: list[str], raw: frozenset[str] = frozenset()) -> str:
    """A ``bash`` script: exports, then each command, stopping at the first that fails.

    Values are quoted, except those named in ``raw`` and the cluster's ``env`` (shell words, so
    ``$HOME`` there expands on the node's machine).
    """
    lines = ["set -e"]
    lines += [f"export {name}={value if name in raw else shlex.quote(value)}" for name, value in env.items()]
    lines += [f"export {name}={value}" for name, value in user_env.items()]
    lines += commands
    return "\n".join(lines) + "\n"


def default(commands: list[str] | None, template: str, cli: str) -> list[str]:
    return commands if commands is not None else [template.format(cli=cli)]
