"""The head's ``jobs`` subtree: the ``manager`` task (the entrypoints run under their nodes' trees)."""

from __future__ import annotations

import supervisors

from ._manager import JobManager

JOBS_INTENSITY = supervisors.Intensity(max_restarts=3, within=60)


def jobs_spec(manager: JobManager) -> supervisors.ChildSpec:
    """The subtree as a child spec for the head's root supervisor.

    A crash of the manager restarts it here (up to ``JOBS_INTENSITY``, then the
    head's root decides); it keeps its records and queued reports, and no
    entrypoint dies with it: each runs under its node's ``jobs`` pool.
    """

    def children() -> list[supervisors.ChildSpec]:
        return [supervisors.ChildSpec(id="manager", start=lambda: supervisors.TaskChild(manager.run))]

    return supervisors.supervisor_spec("jobs", children, intensity=JOBS_INTENSITY)
