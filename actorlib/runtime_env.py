"""Ray's ``ray.runtime_env``: :class:`RuntimeEnv`, the runtime_env as a class."""

from __future__ import annotations

from typing import Any

from ._runtime_env import check_runtime_env

__all__ = ["RuntimeEnv"]


class RuntimeEnv(dict):  # type: ignore[type-arg]
    """A runtime_env, checked when made: ``RuntimeEnv(env_vars={...}, working_dir=...)`` is the
    dict ``{"env_vars": {...}, "working_dir": ...}`` and goes wherever that dict does (``init``,
    ``.options``, job submission). Fields actorlib does not support (``pip``, ``conda``,
    ``container``, ...) raise a ValueError naming them, as the dict would."""

    def __init__(self, **fields: Any) -> None:
        given = {name: value for name, value in fields.items() if value is not None}
        check_runtime_env(given, where="RuntimeEnv")
        super().__init__(given)

    def to_dict(self) -> dict[str, Any]:
        return dict(self)
