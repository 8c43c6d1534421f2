"""runtime_env packages from a driver's (or worker's) side: zip local directories, upload them once.

``env_for`` turns a task's, actor's or ``init()``'s runtime_env into the
environment its workers get: ``env_vars`` plus the package URIs of
``working_dir`` and ``py_modules`` (see ``_runtime_env``). Local directories
are zipped and uploaded to the head the first time this process uses them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from .._runtime_env import env_of, package_uri, zip_directory
from .._wire import Done, GetPackage, HeadMessage, PackageReply, PutPackage, connect

if TYPE_CHECKING:
    from ._runtime import Runtime

FETCH_TIMEOUT = 120.0


def has_local_paths(runtime_env: Mapping[str, Any]) -> bool:
    locations = [runtime_env.get("working_dir"), *(runtime_env.get("py_modules") or [])]
    return any(isinstance(loc, str) and "://" not in loc for loc in locations)


def env_for(runtime: Runtime, runtime_env: Mapping[str, Any] | None) -> dict[str, str]:
    """The environment for a checked runtime_env (blocks while uploading a local directory)."""
    if not runtime_env:
        return {}
    if has_local_paths(runtime_env):
        runtime_env = runtime.call(upload, runtime, runtime_env)
    return env_of(runtime_env)


async def upload(runtime: Runtime, runtime_env: Mapping[str, Any]) -> dict[str, Any]:
    """``runtime_env`` with each local directory replaced by the URI of its uploaded package.

    Raises ValueError naming a directory that is missing or too large, RuntimeError if
    the head refuses the package.
    """
    resolved = dict(runtime_env)
    excludes = list(runtime_env.get("excludes") or [])
    if resolved.get("working_dir"):
        resolved["working_dir"] = await _uri(runtime, resolved["working_dir"], excludes, include_parent=False)
    if resolved.get("py_modules"):
        resolved["py_modules"] = [await _uri(runtime, m, excludes, include_parent=True) for m in resolved["py_modules"]]
    resolved.pop("excludes", None)
    return resolved


async def _uri(runtime: Runtime, location: str, excludes: list[str], *, include_parent: bool) -> str:
    if "://" in location:
        return location
    path = Path(location).expanduser().resolve()
    cache = runtime.uploaded_packages
    key = (str(path), tuple(excludes), include_parent)
    if key in cache:
        return cache[key]
    if not path.is_dir():
        raise ValueError(f"runtime_env: {location!r} is not a directory (working_dir and py_modules name directories)")
    name, data = await trio.to_thread.run_sync(lambda: zip_directory(path, excludes=excludes, include_parent=include_parent))
    found = await runtime.head.request(lambda req: GetPackage(req=req, name=name, data=False))
    assert isinstance(found, PackageReply)
    if not found.found:
        done = await runtime.head.request(lambda req: PutPackage(req=req, name=name, data=data))
        assert isinstance(done, Done)
        if done.error:
            raise RuntimeError(f"the cluster refused the package of {os.fspath(path)!r}: {done.error}")
    cache[key] = package_uri(name)
    return cache[key]


def fetch_package(head_address: str, token: str, name: str) -> bytes:
    """Package ``name``'s bytes from the head (blocking: its own Trio loop on this thread).

    For a process without a runtime loop of its own at hand (a worker starting up, a node
    unpacking a job's packages in a worker thread). Raises FileNotFoundError if the head
    has no such package, ConnectionError/OSError if it cannot be reached, TooSlowError
    after ``FETCH_TIMEOUT``.
    """
    return trio.run(_fetch, head_address, token, name)


async def _fetch(head_address: str, token: str, name: str) -> bytes:
    with trio.fail_after(FETCH_TIMEOUT):
        async with trio.open_nursery() as nursery:
            channel = await connect(nursery, head_address, token, HeadMessage, name=f"packages:{os.getpid()}")
            channel.send_nowait(GetPackage(req=1, name=name))
            async for message in channel:
                if isinstance(message, PackageReply) and message.req == 1:
                    break
            else:
                raise ConnectionError("the head closed the connection")
            await channel.aclose()
            nursery.cancel_scope.cancel()
    if not message.found:
        raise FileNotFoundError(message.error or f"the head has no package {name}")
    return message.data
