"""Merges run as host jobs of type virt: Host.getJobs reports them, done or failed."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from virthost.common import errors
from virthost.common.scheduler import Scheduler
from virthost.rpc.events import EventBus
from virthost.storage.jobs import JobRegistry
from virthost.virt.livemerge import registry_runner


@pytest.fixture
def registry() -> Iterator[JobRegistry]:
    scheduler = Scheduler("jobs-test")
    scheduler.start()
    jobs = JobRegistry(scheduler, EventBus(), workers=1)
    jobs.start()
    yield jobs
    jobs.shutdown()
    scheduler.stop()


def finished(registry: JobRegistry, job_id: str) -> dict[str, object]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        info = registry.get_jobs("virt", [job_id]).get(job_id)
        if info is not None and info["status"] in ("done", "failed"):
            return dict(info)
        time.sleep(0.01)
    raise AssertionError(f"job {job_id} did not finish")


def test_merge_jobs_are_virt_jobs(registry: JobRegistry) -> None:
    run = registry_runner(registry)
    ok, bad = str(uuid.uuid4()), str(uuid.uuid4())
    ran: list[str] = []
    run(ok, "merge vda", lambda: ran.append(ok))

    def fail() -> None:
        raise errors.MergeFailed("the block commit did not complete")

    run(bad, "merge vdb", fail)
    assert finished(registry, ok)["status"] == "done" and ran == [ok]
    failed = finished(registry, bad)
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == 52  # type: ignore[index]
    assert registry.get_jobs("storage") == {}
