"""The cluster config (``cluster.yaml``): its schema, defaults, and errors that name the bad key and line."""

from __future__ import annotations

import ipaddress
import math
import re
from pathlib import Path
from typing import Annotated, Any

import msgspec
import yaml

NonNegative = Annotated[float, msgspec.Meta(ge=0)]
Positive = Annotated[float, msgspec.Meta(gt=0)]
Count = Annotated[int, msgspec.Meta(ge=0)]
Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]
Name = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=63)]

INSTANCE_LABEL = "actorlib.io/instance-id"
TYPE_LABEL = "actorlib.io/node-type"
CLUSTER_LABEL = "actorlib.io/cluster"


class ConfigError(ValueError):
    """A cluster config that cannot be used; the message names the file, line and key."""


class _Strict(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    pass


class NodeType(_Strict):
    """One kind of node the cluster may have: what it offers and how many of it."""

    resources: dict[str, NonNegative] = {}  # CPU, GPU, memory (bytes) and custom resources
    min_workers: Count = 0
    max_workers: Count = 0
    labels: dict[str, str] = {}
    node_config: dict[str, Any] = {}  # provider-specific (kubernetes: pod spec overrides)
    worker_setup_commands: list[str] | None = None  # instead of the cluster's, for this type


class LocalProvider(_Strict, tag="local", tag_field="type"):
    """Worker nodes are processes on this machine, each on its own loopback address."""

    head_ip: str = "127.0.0.1"
    worker_ips: list[str] = []  # default: 127.0.0.2 and up


class SshProvider(_Strict, tag="ssh", tag_field="type"):
    """A fixed list of machines reached over SSH; one node per machine."""

    head_ip: str
    worker_ips: list[str]
    ssh_port: Port = 22
    remote_dir: str = ""  # on each machine, for the token, config and key (default ~/.actorlib/clusters/<name>)

    def directory(self, cluster_name: str) -> str:
        """The remote directory as a shell word (``$HOME`` expands there)."""
        path = self.files_dir(cluster_name)
        return '"$HOME"' + path[1:] if path.startswith("~") else path

    def files_dir(self, cluster_name: str) -> str:
        """The remote directory as a path (``~/...`` or absolute)."""
        return self.remote_dir or f"~/.actorlib/clusters/{cluster_name}"


class KubernetesProvider(_Strict, tag="kubernetes", tag_field="type"):
    """Worker nodes are Pods created through the Kubernetes API (the head runs in the cluster)."""

    namespace: str = "default"
    image: str = "actorlib:latest"
    head_service: str = "actorlib-head"  # the head's Service name (deploy/kubernetes/head.yaml)
    token_secret: str = "actorlib-token"  # the Secret holding the cluster token


Provider = LocalProvider | SshProvider | KubernetesProvider


class Auth(_Strict):
    ssh_user: str = ""
    ssh_private_key: str = ""
    known_hosts: str = ""  # a known_hosts file to check host keys against ("": not checked, as Ray does)


class LaunchBackoff(_Strict):
    """Delay before a node type is launched again after a failed launch: doubles up to ``max_s``."""

    initial_s: Positive = 5.0
    max_s: Positive = 300.0


class ClusterConfig(_Strict):
    """``cluster.yaml``, validated. See docs/autoscaling.md for every key."""

    cluster_name: Name
    available_node_types: dict[str, NodeType]
    provider: Provider = LocalProvider()
    head_node_type: str = "head"
    max_workers: Count = 8  # worker nodes of all types together
    idle_timeout_s: Positive = 60.0  # a worker idle this long is drained and stopped
    cooldown_s: NonNegative = 10.0  # no scale-down this soon after a scale-up
    launch_timeout_s: Positive = 120.0  # a launched node must join within this
    drain_timeout_s: Positive = 60.0  # a drain not done by then is called off (work is never killed)
    launch_backoff: LaunchBackoff = LaunchBackoff()
    head_port: Port = 6379
    token_file: str = ""  # default ~/.actorlib/clusters/<cluster_name>/token
    auth: Auth = Auth()
    env: dict[str, str] = {}  # exported (as shell words) before every command on every node
    setup_commands: list[str] = []
    head_setup_commands: list[str] = []
    worker_setup_commands: list[str] = []
    head_start_commands: list[str] | None = None
    worker_start_commands: list[str] | None = None
    head_stop_commands: list[str] | None = None
    worker_stop_commands: list[str] | None = None

    @property
    def worker_types(self) -> dict[str, NodeType]:
        return {name: t for name, t in self.available_node_types.items() if name != self.head_node_type}

    @property
    def head_type(self) -> NodeType:
        return self.available_node_types[self.head_node_type]

    @property
    def token_path(self) -> Path:
        path = self.token_file or f"~/.actorlib/clusters/{self.cluster_name}/token"
        return Path(path).expanduser()

    def setup_commands_of(self, node_type: str) -> list[str]:
        own = self.available_node_types[node_type].worker_setup_commands
        return [*self.setup_commands, *(self.worker_setup_commands if own is None else own)]


# ---- loading ----------------------------------------------------------------------------------


def load_config(path: str | Path) -> ClusterConfig:
    """Read and validate a cluster config file. Raises ConfigError naming the line and key."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read the cluster config {path}: {exc.strerror}") from None
    return parse_config(text, str(path))


def parse_config(text: str, source: str = "cluster.yaml") -> ClusterConfig:
    """Validate a cluster config given as YAML text (pure)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{source}{where}: not valid YAML: {problem}") from None
    if root is not None:
        _check_duplicates(root, source)
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a cluster config is a mapping of keys (cluster_name, provider, ...), got {type(data).__name__}")
    try:
        config = _convert(data)
    except _Invalid as exc:
        raise ConfigError(f"{source}{_line(root, exc.path, exc.key)}: {_dotted(exc.path, exc.key)}{exc.message}") from None
    problems = _semantic_problems(config)
    if problems:
        path, message = problems[0]
        raise ConfigError(f"{source}{_line(root, path)}: {_dotted(path)}{message}")
    return config


class _Invalid(Exception):
    def __init__(self, path: list[str | int], message: str, key: str = "") -> None:
        self.path, self.message, self.key = path, message, key


_AT = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)
_PART = re.compile(r"\[\.\.\.\]|\.([^.\[]+)|\[(\d+)\]")


def _convert(data: dict[str, Any]) -> ClusterConfig:
    """msgspec's checks, with errors inside ``available_node_types`` traced to their key."""
    raw_types = data.get("available_node_types")
    types: dict[str, NodeType] = {}
    if isinstance(raw_types, dict):
        for name, raw in raw_types.items():
            types[str(name)] = _typed(raw if raw is not None else {}, NodeType, ["available_node_types", str(name)], raw)
        data = {**data, "available_node_types": {}}
    config = _typed(data, ClusterConfig, [], data)
    return msgspec.structs.replace(config, available_node_types=types) if types else config


def _typed(data: Any, kind: type, prefix: list[str | int], raw: Any) -> Any:
    try:
        return msgspec.convert(data, kind)
    except msgspec.ValidationError as exc:
        match = _AT.match(str(exc))
        assert match is not None
        message, where = match["message"], match["path"] or ""
        path = list(prefix)
        for part in _PART.finditer(where):
            if part[0] == "[...]":  # a value in a mapping: msgspec does not say which key
                path.append(_bad_key(raw, path[len(prefix) :]))
            else:
                path.append(part[1] if part[1] else int(part[2]))
        unknown = re.match(r"Object contains unknown field `(.*)`", message)
        missing = re.match(r"Object missing required field `(.*)`", message)
        if unknown:
            raise _Invalid(path, f"unknown key {unknown[1]!r}{_suggest(unknown[1], kind, path, prefix)}", key=unknown[1]) from None
        if missing:
            raise _Invalid(path, f"the key {missing[1]!r} is required") from None
        raise _Invalid(path, _plain(message)) from None


def _bad_key(data: Any, path: list[str | int]) -> str:
    """The first key of the mapping at ``path`` whose value is of the wrong kind."""
    for part in path:
        data = data.get(part) if isinstance(data, dict) else data[part] if isinstance(data, list) else None
    if not isinstance(data, dict):
        return "?"
    numeric = path[-1:] == ["resources"]
    for key, value in data.items():
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if (numeric and not (number and value >= 0)) or (not numeric and not isinstance(value, str)):
            return str(key)
    return "?"


def _suggest(key: str, kind: type, path: list[str | int], prefix: list[str | int]) -> str:
    """`` (did you mean 'max_workers'?)`` when a known key is close."""
    import difflib

    within = tuple(path[len(prefix) :])
    if kind is NodeType:
        owners: tuple[type, ...] = (NodeType,) if not within else ()
    else:
        owners = _KEYS_AT.get(within, ())
    fields = [name for owner in owners for name in owner.__struct_fields__]
    close = difflib.get_close_matches(key, fields, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


_KEYS_AT: dict[tuple[str | int, ...], tuple[type, ...]] = {
    (): (ClusterConfig,),
    ("auth",): (Auth,),
    ("launch_backoff",): (LaunchBackoff,),
    ("provider",): (LocalProvider, SshProvider, KubernetesProvider),
}


def _plain(message: str) -> str:
    return message.replace("`", "")


def _semantic_problems(config: ClusterConfig) -> list[tuple[list[str | int], str]]:
    """What the schema cannot say: cross-key rules. Each problem is (path, message)."""
    problems: list[tuple[list[str | int], str]] = []
    types = config.available_node_types
    if not types:
        problems.append((["available_node_types"], "name at least one node type (the head's)"))
    elif config.head_node_type not in types:
        problems.append((["head_node_type"], f"{config.head_node_type!r} is not one of available_node_types ({', '.join(types)})"))
    for name, node_type in types.items():
        where: list[str | int] = ["available_node_types", name]
        if node_type.min_workers > node_type.max_workers and name != config.head_node_type:
            problems.append((where + ["min_workers"], f"is {node_type.min_workers}, more than max_workers ({node_type.max_workers})"))
        for resource, qty in node_type.resources.items():
            if not resource or not math.isfinite(qty):
                problems.append((where + ["resources", resource], "needs a name and a finite quantity"))
    minimum = sum(t.min_workers for t in config.worker_types.values())
    if minimum > config.max_workers:
        problems.append((["max_workers"], f"is {config.max_workers}, fewer than the node types' min_workers together ({minimum})"))
    problems += _provider_problems(config)
    return problems


def _provider_problems(config: ClusterConfig) -> list[tuple[list[str | int], str]]:
    provider = config.provider
    problems: list[tuple[list[str | int], str]] = []
    if isinstance(provider, (LocalProvider, SshProvider)):
        ips = [provider.head_ip, *provider.worker_ips]
        for index, ip in enumerate(ips):
            where: list[str | int] = ["provider", "head_ip"] if index == 0 else ["provider", "worker_ips", index - 1]
            try:
                address = ipaddress.ip_address(ip)
            except ValueError:
                if isinstance(provider, LocalProvider):
                    problems.append((where, f"{ip!r} is not an IP address"))
                continue
            if isinstance(provider, LocalProvider) and not address.is_loopback:
                problems.append((where, f"{ip} is not a loopback address (the local provider runs nodes on this machine)"))
            if ips.index(ip) != index:
                problems.append((where, f"{ip} is listed twice"))
    if isinstance(provider, SshProvider):
        if not provider.worker_ips and any(t.max_workers for t in config.worker_types.values()):
            problems.append((["provider", "worker_ips"], "list the worker machines (one node each)"))
        if not config.auth.ssh_user:
            problems.append((["auth"], "the ssh provider needs auth.ssh_user"))
        elif not config.auth.ssh_private_key:
            problems.append((["auth"], "the ssh provider needs auth.ssh_private_key"))
    return problems


def _dotted(path: list[str | int], key: str = "") -> str:
    parts = [*path, key] if key else path
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return f"{text}: " if text else ""


def _line(root: yaml.Node | None, path: list[str | int], key: str = "") -> str:
    """``, line N`` of the key (or list item) at ``path`` (then ``key`` in it), as far as it exists."""
    node = root
    found = None if path else root
    for part in [*path, key] if key else path:
        step = _child(node, part)
        if step is None:
            break
        found, node = step
    return f", line {found.start_mark.line + 1}" if found is not None else ""


def _child(node: yaml.Node | None, part: str | int) -> tuple[yaml.Node, yaml.Node] | None:
    """(the node to point at, the node to descend into) for one step of a path."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if str(key.value) == str(part):
                return key, value
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        return node.value[part], node.value[part]
    return None


def _check_duplicates(node: yaml.Node, source: str) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            if str(key.value) in seen:
                raise ConfigError(f"{source}, line {key.start_mark.line + 1}: the key {key.value!r} is given twice")
            seen.add(str(key.value))
            _check_duplicates(value, source)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _check_duplicates(item, source)
