"""SDM jobs doing real work: a copy job running the real qemu-img, followed as the engine does.

The factory here is a stand-in for the real copy_data (which works on managed volumes): it
copies between ``file://`` URLs, enough to show a job running a real command on a registry
worker, its ``-p`` progress reaching ``Host.getJobs``, its status events in order, and a
qemu-img failure reported as the job's error.
"""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from virthost.api.sdm import SdmApi
from virthost.common.scheduler import Scheduler
from virthost.rpc.events import Event, EventBus
from virthost.storage import qemuimg
from virthost.storage.jobs import JobContext, JobRegistry, JobWork
from virthost.storage.jobs import sdmrequests as req

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img is not installed"),
]

MiB = 1024 * 1024
WAIT = 60.0


def copy_between_files(job_id: str, request: req.CopyDataRequest) -> JobWork:
    source, destination = request.source, request.destination
    assert isinstance(source, req.ExternalEndpoint)
    assert isinstance(destination, req.ExternalEndpoint)

    def work(ctx: JobContext) -> None:
        qemuimg.convert(
            source.url.removeprefix("file://"),
            destination.url.removeprefix("file://"),
            dst_format=qemuimg.QCOW2,
            cache="writeback",
            progress=ctx.set_progress,
        )

    return JobWork(run=work)


class FinalStatus:
    def __init__(self, bus: EventBus) -> None:
        self.events: list[Event] = []
        self.finished = threading.Event()
        bus.add_listener(self._on_event)

    def _on_event(self, event: Event) -> None:
        self.events.append(event)
        status = next(iter(event.params.values()))["status"]
        if status in ("done", "failed", "aborted"):
            self.finished.set()

    def statuses(self) -> list[str]:
        return [next(iter(e.params.values()))["status"] for e in self.events]


@pytest.fixture
def api_and_events() -> Iterator[tuple[SdmApi, FinalStatus]]:
    scheduler = Scheduler("jobs-it-sched")
    scheduler.start()
    bus = EventBus()
    registry = JobRegistry(scheduler, bus, workers=2)
    registry.start()
    yield SdmApi(registry, {"copy_data": copy_between_files}), FinalStatus(bus)
    registry.shutdown(wait=True)
    scheduler.stop()


def external(path: Path) -> dict[str, str]:
    return {"endpoint_type": "external", "url": f"file://{path}"}


def test_a_copy_job_runs_qemu_img_and_reports_progress_and_status(
    api_and_events: tuple[SdmApi, FinalStatus], tmp_path: Path
) -> None:
    api, events = api_and_events
    source, target = tmp_path / "src.raw", tmp_path / "dst.qcow2"
    data = os.urandom(MiB)
    with source.open("wb") as f:
        f.truncate(8 * MiB)
        f.seek(3 * MiB)
        f.write(data)
    job_id = str(uuid.uuid4())

    api.copy_data(job_id, external(source), external(target))
    assert events.finished.wait(WAIT)

    assert events.statuses() == ["running", "done"]
    assert events.events[-1].name == f"|jobs|status|{job_id}"
    info = api.get_jobs("storage", [job_id])[job_id]
    assert info["status"] == "done" and info["description"] == "copy_data"
    assert info["progress"] == 100.0
    copied = qemuimg.info(target)
    assert copied.format == "qcow2" and copied.virtual_size == 8 * MiB
    back = tmp_path / "back.raw"
    qemuimg.convert(target, back, dst_format=qemuimg.RAW, cache="writeback")
    assert back.read_bytes()[3 * MiB : 4 * MiB] == data


def test_a_failing_qemu_img_fails_the_job_with_its_error(
    api_and_events: tuple[SdmApi, FinalStatus], tmp_path: Path
) -> None:
    api, events = api_and_events
    job_id = str(uuid.uuid4())
    api.copy_data(job_id, external(tmp_path / "missing.raw"), external(tmp_path / "dst"))
    assert events.finished.wait(WAIT)
    assert events.statuses() == ["running", "failed"]
    error = api.get_jobs(None, [job_id])[job_id]["error"]
    assert error["code"] == 100
    assert "qemu-img" in error["message"] and "missing.raw" in error["message"]
    api.delete_job(job_id)
    assert api.get_jobs() == {}
