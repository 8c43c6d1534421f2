"""The supervision specs a node builds for its actors (pure parts)."""

from __future__ import annotations

from types import SimpleNamespace

import supervisors

from actorlib._node._actors import ACTOR_START_TIMEOUT, _alone


def test_an_actors_supervisor_may_take_as_long_to_start_as_its_process() -> None:
    # Its supervisor starts when its process has run __init__, which may load a model for minutes:
    # the default start timeout (30 s) would kill it first.
    process = supervisors.ChildSpec(id="process", start=lambda: None, start_timeout=ACTOR_START_TIMEOUT)  # type: ignore[arg-type,return-value]
    hosted = SimpleNamespace(key="Model-1a2b3c", spec=SimpleNamespace(max_restarts=0))
    spec = _alone(hosted, process)  # type: ignore[arg-type]
    assert spec.start_timeout == ACTOR_START_TIMEOUT > 30
