"""A worker enters its runtime_env packages: unpacked in its node's cache, cwd and first on sys.path."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from .._core._packages import fetch_package
from .._runtime_env import PY_MODULES_ENV, WORKING_DIR_ENV, ensure_unpacked, package_name, uris_of


def enter_packages(env: Mapping[str, str], session: Path, head_address: str, token: str) -> dict[str, str]:
    """Make this process run in the packages ``env`` names; return those variables (for its children).

    The working_dir becomes the current directory; it and the py_modules go first on
    ``sys.path``. A package missing from the node's cache is fetched from the head once
    per node. Raises RuntimeError saying which package could not be had, and why.
    """
    working_dir, modules = uris_of(env)
    if working_dir is None and not modules:
        return {}
    cache = session / "runtime_resources"
    paths = []
    for uri in [u for u in (working_dir, *modules) if u]:
        name = package_name(uri)
        try:
            paths.append(ensure_unpacked(cache, name, lambda name=name: fetch_package(head_address, token, name)))
        except Exception as exc:
            raise RuntimeError(f"runtime_env package {uri} could not be set up on this node: {exc}") from exc
    if working_dir is not None:
        os.chdir(paths[0])
    sys.path[0:0] = [str(path) for path in paths]
    return {key: env[key] for key in (WORKING_DIR_ENV, PY_MODULES_ENV) if env.get(key)}

