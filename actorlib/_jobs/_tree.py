"""The head's ``jobs`` subtree: ``entrypoints`` (a pool of job processes) and the ``manager`` task."""

from __future__ import annotations

import supervisors

from ._manager import JobManager

JOBS_INTENSITY = supervisors.Intensity(max_restarts=3, within=60)


def jobs_spec(manager: JobManager) -> supervisors.ChildSpec:
    """The subtree as a child spec for the head's root supervisor.

    ``one_for_all``: the manager watches the entrypoints; if either side dies,
    both restart (and the jobs that were running are FAILED, with the reason).
    """

    def children() -> list[supervisors.ChildSpec]:
        def entrypoints() -> supervisors.Child:
            pool = supervisors.Supervisor(id="entrypoints", strategy="pool", backoff=None)
            manager.attach(pool)
            return supervisors.SupervisorChild(pool)

        return [
            supervisors.ChildSpec(id="entrypoints", start=entrypoints),
            supervisors.ChildSpec(id="manager", start=lambda: supervisors.TaskChild(manager.run)),
        ]

    return supervisors.supervisor_spec("jobs", children, strategy="one_for_all", intensity=JOBS_INTENSITY)
