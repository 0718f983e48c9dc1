"""Job on its own: statuses seen by its watcher, progress bounds, errors, abort rules.

Jobs here run on the test's thread by calling ``run()`` directly; the registry tests cover
running them on workers.
"""

from __future__ import annotations

import uuid

import pytest

from virthost.common import errors
from virthost.storage.jobs import Job, JobContext, JobInfo, JobStatus, JobWork

JOB_ID = "6c2ac3c9-7d3f-4bd4-8a61-3ef0d0f3a2a1"


def watched(job: Job) -> list[JobInfo]:
    seen: list[JobInfo] = []
    job.watch(lambda _job, info: seen.append(info))
    return seen


def test_a_new_job_is_pending_with_a_canonical_id() -> None:
    job = Job(JOB_ID.upper(), "copy_data", lambda ctx: None)
    assert job.id == JOB_ID
    assert job.info() == {
        "id": JOB_ID,
        "status": "pending",
        "description": "copy_data",
        "job_type": "storage",
    }


def test_run_reports_running_then_done_with_progress() -> None:
    def work(ctx: JobContext) -> None:
        assert ctx.job_id == JOB_ID
        ctx.set_progress(10)
        ctx.set_progress(99.5)

    job = Job(JOB_ID, "copy_data", work)
    seen = watched(job)
    job.run()
    assert [info["status"] for info in seen] == ["running", "done"]
    assert "progress" not in seen[0]
    assert seen[1]["progress"] == 99.5
    assert job.progress == 99.5 and job.finished


@pytest.mark.parametrize("bad", [-0.1, 100.01, True])
def test_progress_outside_0_to_100_is_a_programming_error(bad: float) -> None:
    job = Job(JOB_ID, "x", lambda ctx: ctx.set_progress(bad))
    job.run()
    assert job.status is JobStatus.FAILED
    assert job.progress is None


def test_a_failure_keeps_the_vdsm_error_of_the_exception() -> None:
    def work(ctx: JobContext) -> None:
        raise errors.ResourceTimeout("image lock")

    job = Job(JOB_ID, "merge", work)
    job.run()
    assert job.error == {"code": 851, "message": "Resource timeout: image lock"}
    assert job.info()["error"] == job.error


def test_a_job_runs_once() -> None:
    calls: list[int] = []
    job = Job(JOB_ID, "x", lambda ctx: calls.append(1))
    job.run()
    job.run()
    assert calls == [1]


def test_an_aborted_pending_job_never_runs() -> None:
    calls: list[int] = []
    job = Job(JOB_ID, "x", lambda ctx: calls.append(1))
    seen = watched(job)
    job.abort()
    job.run()
    assert calls == []
    assert [info["status"] for info in seen] == ["aborted"]


def test_abortable_comes_from_the_job_work() -> None:
    work = JobWork(run=lambda ctx: None, abortable=True)
    job = Job.from_work(str(uuid.uuid4()), "sparsify_volume", work)
    assert job.abortable and job.description == "sparsify_volume"
    assert not Job(str(uuid.uuid4()), "x", lambda ctx: None).abortable


def test_a_failing_watcher_does_not_stop_the_job() -> None:
    def broken(_job: Job, _info: JobInfo) -> None:
        raise RuntimeError("listener bug")

    job = Job(JOB_ID, "x", lambda ctx: None)
    job.watch(broken)
    job.run()
    assert job.status is JobStatus.DONE


def test_a_job_has_a_single_watcher() -> None:
    job = Job(JOB_ID, "x", lambda ctx: None)
    job.watch(lambda _job, _info: None)
    with pytest.raises(ValueError):
        job.watch(lambda _job, _info: None)


def test_check_aborted_raised_without_an_abort_is_a_failure() -> None:
    def work(ctx: JobContext) -> None:
        assert not ctx.abort_requested
        ctx.check_aborted()  # no abort: carries on
        raise errors.ActionStopped("work gave up by itself")

    job = Job(JOB_ID, "x", work, abortable=True)
    job.run()
    assert job.status is JobStatus.FAILED
    assert job.error is not None and job.error["code"] == 443
