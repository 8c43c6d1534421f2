"""Job records and their rules, and the CLI's job table (pure)."""

from __future__ import annotations

import msgspec
import pytest

from actorlib._cli._job import render_jobs
from actorlib._jobs import JobError, JobSubmitRequest
from actorlib._jobs._records import details, ended, failed, record_of, running
from actorlib.job_submission import JobDetails, JobStatus


def test_a_record_goes_pending_running_then_final_with_rays_messages() -> None:
    record = record_of(JobSubmitRequest(entrypoint="python x.py", metadata={"a": "b"}))
    assert record.status == "PENDING" and record.message == "Job has not started yet."
    assert record.submission_id.startswith("raysubmit_")
    assert running(record, 42).message == "Job is currently running."
    done = ended(running(record, 42), stopped=False, code=0, log_tail="")
    assert (done.status, done.driver_exit_code, done.error_type) == ("SUCCEEDED", 0, None) and done.end_time
    bad = ended(record, stopped=False, code=-9, log_tail="last words\n")
    assert bad.status == "FAILED" and bad.driver_exit_code == -9 and bad.message.endswith("last words\n")
    assert ended(record, stopped=True, code=-15, log_tail="").driver_exit_code is None
    assert failed(record, "why", "RUNTIME_ENV_SETUP_FAILURE").message == "why"


def test_a_record_with_packages_says_it_waits_for_them() -> None:
    request = JobSubmitRequest(entrypoint="x", runtime_env={"working_dir": "gcs://_ray_pkg_ab.zip", "excludes": ["*.log"]})
    record = record_of(request)
    assert "runtime environment" in record.message and record.runtime_env == {"working_dir": "gcs://_ray_pkg_ab.zip"}


@pytest.mark.parametrize(
    "request_,match",
    [
        (JobSubmitRequest(entrypoint=""), "non-empty"),
        (JobSubmitRequest(entrypoint="x", submission_id="a/b"), "invalid submission_id"),
        (JobSubmitRequest(entrypoint="x", submission_id="x" * 200), "invalid submission_id"),
        (JobSubmitRequest(entrypoint="x", runtime_env={"container": {}}), "'container'"),
        (JobSubmitRequest(entrypoint="x", entrypoint_memory=-1), "non-negative"),
    ],
)
def test_bad_requests_are_400(request_, match) -> None:
    with pytest.raises(JobError, match=match) as refused:
        record_of(request_)
    assert refused.value.status == 400


def test_details_parse_as_the_sdks_job_details() -> None:
    record = record_of(JobSubmitRequest(entrypoint="x", entrypoint_num_cpus=2, entrypoint_resources={"ssd": 1}))
    parsed = msgspec.json.decode(msgspec.json.encode(details(record)), type=JobDetails)
    assert parsed.status is JobStatus.PENDING and parsed.entrypoint_num_cpus == 2 and parsed.entrypoint_resources == {"ssd": 1}
    assert not parsed.status.is_terminal() and JobStatus.FAILED.is_terminal()
    assert "PENDING" in render_jobs([parsed]) and render_jobs([]) == "No jobs."
