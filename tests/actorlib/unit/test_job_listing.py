"""``actorlib list jobs``: registered drivers and submitted jobs joined into one listing (pure)."""

from __future__ import annotations

from actorlib._head._services import joined_jobs
from actorlib._jobs import JobRecord
from actorlib._state import JobState


def driver(job_id: str, start: float, status: str = "RUNNING") -> JobState:
    return JobState(job_id=job_id, entrypoint="python script.py", driver_pid=10, start_time=start, status=status)


def record(submission_id: str, start_ms: int, status: str, job_id: str | None = None) -> JobRecord:
    return JobRecord(submission_id=submission_id, entrypoint="python job.py", status=status, start_time=start_ms, job_id=job_id)


def test_a_submitted_job_and_its_driver_are_one_row():
    rows = joined_jobs([driver("0a", 100.0)], [record("raysubmit_x", 99_000, "RUNNING", job_id="0a")])
    assert len(rows) == 1
    (row,) = rows
    assert (row.type, row.job_id, row.submission_id, row.status) == ("SUBMISSION", "0a", "raysubmit_x", "RUNNING")
    assert row.entrypoint == "python job.py" and row.driver_pid == 10


def test_submissions_without_a_driver_and_plain_drivers_are_listed_newest_first():
    rows = joined_jobs(
        [driver("01", 10.0, "FINISHED"), driver("02", 30.0)],
        [record("pending", 40_000, "PENDING"), record("forgotten", 20_000, "FAILED", job_id="ff")],
    )
    assert [(row.type, row.submission_id or row.job_id, row.status) for row in rows] == [
        ("SUBMISSION", "pending", "PENDING"),
        ("DRIVER", "02", "RUNNING"),
        ("SUBMISSION", "forgotten", "FAILED"),  # its driver is no longer in the drivers' history
        ("DRIVER", "01", "FINISHED"),
    ]
