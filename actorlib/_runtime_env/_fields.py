"""The runtime_env fields actorlib supports, their checks, and how they travel (pure).

``working_dir`` and ``py_modules`` travel as package URIs in two reserved
environment variables of a task's or actor's environment: the environment
already keys worker pools and reaches every worker, so a worker finds its
packages the same way it finds its ``env_vars``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

SUPPORTED = ("env_vars", "working_dir", "py_modules", "excludes")
WORKING_DIR_ENV = "ACTORLIB_RUNTIME_WORKING_DIR"
PY_MODULES_ENV = "ACTORLIB_RUNTIME_PY_MODULES"
# Which variables of a worker's environment are its runtime_env (a JSON list): its own tasks
# and actors inherit them, as Ray's children inherit their parent's runtime_env.
RUNTIME_ENV_KEYS_ENV = "ACTORLIB_RUNTIME_ENV_KEYS"
PROTOCOL = "gcs"
_NAME = re.compile(r"_ray_pkg_[0-9A-Za-z_-]{1,64}\.zip")


class RuntimeEnvError(ValueError):
    """A runtime_env field that is unsupported or malformed (the message names it)."""


def check_runtime_env(runtime_env: Any, *, where: str, uris_only: bool = False) -> dict[str, Any]:
    """A checked copy of ``runtime_env`` (None: empty).

    ``working_dir`` is a local directory or a package URI, ``py_modules`` a list
    of them (``uris_only``: URIs only, as on the server), ``env_vars`` maps
    strings to strings, ``excludes`` is a list of patterns (used when zipping).
    Raises TypeError for a wrong type, RuntimeEnvError (a ValueError) for an
    unsupported field, each naming the field.
    """
    if runtime_env is None:
        return {}
    if not isinstance(runtime_env, Mapping):
        raise TypeError(f"{where}: runtime_env must be a dict, got {runtime_env!r}")
    for name in runtime_env:
        if name not in SUPPORTED:
            raise RuntimeEnvError(
                f"{where}: runtime_env field {name!r} is not supported (supported: {', '.join(SUPPORTED)})"
            )
    checked: dict[str, Any] = {}
    env_vars = runtime_env.get("env_vars")
    if env_vars is not None:
        if not isinstance(env_vars, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env_vars.items()):
            raise TypeError(f"{where}: runtime_env['env_vars'] must map strings to strings, got {env_vars!r}")
        checked["env_vars"] = dict(env_vars)
    working_dir = runtime_env.get("working_dir")
    if working_dir is not None:
        checked["working_dir"] = _location(working_dir, f"{where}: runtime_env['working_dir']", uris_only)
    py_modules = runtime_env.get("py_modules")
    if py_modules is not None:
        if not isinstance(py_modules, (list, tuple)):
            raise TypeError(f"{where}: runtime_env['py_modules'] must be a list, got {py_modules!r}")
        checked["py_modules"] = [_location(m, f"{where}: runtime_env['py_modules']", uris_only) for m in py_modules]
    excludes = runtime_env.get("excludes")
    if excludes is not None:
        if not isinstance(excludes, (list, tuple)) or not all(isinstance(p, str) for p in excludes):
            raise TypeError(f"{where}: runtime_env['excludes'] must be a list of strings, got {excludes!r}")
        checked["excludes"] = list(excludes)
    return checked


def _location(value: Any, what: str, uris_only: bool) -> str:
    import os

    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value:
        raise TypeError(f"{what} must be a path or a package URI, got {value!r}")
    if "://" in value:
        package_name(value, what=what)
    elif uris_only:
        raise RuntimeEnvError(
            f"{what} must be a package URI ({PROTOCOL}://_ray_pkg_<hash>.zip) uploaded through "
            f"/api/packages, got the path {value!r}; the SDK and CLI upload local directories for you"
        )
    return value


def package_name(uri: str, *, what: str = "package URI") -> str:
    """``_ray_pkg_<hash>.zip`` of ``gcs://_ray_pkg_<hash>.zip``; RuntimeEnvError for anything else."""
    protocol, sep, name = uri.partition("://")
    if not sep or protocol != PROTOCOL:
        raise RuntimeEnvError(f"{what}: unsupported package URI {uri!r} (only {PROTOCOL}:// packages exist here)")
    check_name(name, what=what)
    return name


def check_name(name: str, *, what: str = "package name") -> None:
    if not _NAME.fullmatch(name):
        raise RuntimeEnvError(f"{what}: invalid package name {name!r} (expected _ray_pkg_<hash>.zip)")


def package_uri(name: str) -> str:
    return f"{PROTOCOL}://{name}"


def env_of(runtime_env: Mapping[str, Any]) -> dict[str, str]:
    """The environment a checked runtime_env (packages as URIs) gives a process."""
    env = dict(runtime_env.get("env_vars") or {})
    if runtime_env.get("working_dir"):
        env[WORKING_DIR_ENV] = runtime_env["working_dir"]
    if runtime_env.get("py_modules"):
        env[PY_MODULES_ENV] = ",".join(runtime_env["py_modules"])
    return env


def runtime_env_keys(env: Mapping[str, str]) -> str:
    """The value of RUNTIME_ENV_KEYS_ENV for a worker started with runtime env ``env``."""
    return json.dumps(sorted(env))


def inherited_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The runtime env a worker was started with (what RUNTIME_ENV_KEYS_ENV names)."""
    try:
        keys = json.loads(environ.get(RUNTIME_ENV_KEYS_ENV) or "[]")
    except ValueError:
        keys = []
    return {key: environ[key] for key in keys if isinstance(key, str) and key in environ}


def uris_of(env: Mapping[str, str]) -> tuple[str | None, list[str]]:
    """(working_dir URI, py_modules URIs) carried by an environment."""
    working_dir = env.get(WORKING_DIR_ENV) or None
    modules = [uri for uri in (env.get(PY_MODULES_ENV) or "").split(",") if uri]
    return working_dir, modules
