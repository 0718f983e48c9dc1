"""SDM jobs on real file domains: FileDomains with real out-of-process I/O and sanlock leases
(the images tests' lab), real qemu-img, and jobs run by a real JobRegistry behind SdmApi."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fixtures.sanlock import local_daemon_for_session, make_workdir
from integration.storage.images.conftest import make_lab
from virthost.api.sdm import SdmApi
from virthost.common.commands import CommandResult, CommandRunner
from virthost.common.resources import ResourceManager
from virthost.common.scheduler import Scheduler
from virthost.rpc.events import Event, EventBus
from virthost.storage.connections import LOCALFS
from virthost.storage.filedomain import CreateRequest, FileDomains
from virthost.storage.images import ImageStore, SanlockVolumeLeases
from virthost.storage.jobs import JobInfo, JobRegistry
from virthost.storage.oop import ProcessPools
from virthost.storage.sdm import SdmContext, job_factories
from virthost.storage.volmetadata import VolumeMetadata

MiB = 1024 * 1024
WAIT = 120.0  # an upper bound for a job to end, never a timing assertion
FINAL = ("done", "failed", "aborted")


@pytest.fixture(scope="session")
def sanlock_daemon() -> Iterator[object]:
    yield from local_daemon_for_session()


class GatedRunner(CommandRunner):
    """A real runner that holds back the first output chunk of a streaming command (the
    first progress record of qemu-img ``-p``) until the test says ``go_on``."""

    def __init__(self) -> None:
        super().__init__()
        self.gate_next = False
        self.first_output = threading.Event()
        self.go_on = threading.Event()

    def run_streaming(
        self,
        argv: Sequence[str],
        timeout: float,
        on_stdout: Callable[[bytes], None],
        *,
        cwd: str | None = None,
        check: bool = True,
    ) -> CommandResult:
        gated, self.gate_next = self.gate_next, False

        def hold(chunk: bytes) -> None:
            if gated and not self.first_output.is_set():
                self.first_output.set()
                assert self.go_on.wait(WAIT), "the test never let the command go on"
            on_stdout(chunk)

        return super().run_streaming(argv, timeout, hold, cwd=cwd, check=check)


class JobEvents:
    """The ``|jobs|status|<id>`` events, with a wait for a job's final status."""

    def __init__(self, bus: EventBus) -> None:
        self._cond = threading.Condition()
        self._events: list[Event] = []
        bus.add_listener(self._on_event)

    def _on_event(self, event: Event) -> None:
        with self._cond:
            self._events.append(event)
            self._cond.notify_all()

    def statuses(self, job_id: str) -> list[str]:
        with self._cond:
            return [e.params[job_id]["status"] for e in self._events if job_id in e.params]

    def wait_final(self, job_id: str) -> str:
        with self._cond:
            ended = self._cond.wait_for(
                lambda: any(s in FINAL for s in self.statuses(job_id)), WAIT
            )
        assert ended, f"job {job_id} did not end: {self.statuses(job_id)}"
        return self.statuses(job_id)[-1]


@dataclass
class SdmLab:
    root: Path
    pools: ProcessPools
    domains: FileDomains
    store: ImageStore
    runner: GatedRunner
    ctx: SdmContext
    registry: JobRegistry
    api: SdmApi
    events: JobEvents

    @property
    def mount(self) -> Path:
        return self.root / "mnt" / "storage"

    def new_domain(self, version: int = 5) -> str:
        sd = new_id()
        self.domains.create(
            CreateRequest.from_wire(sd, LOCALFS, str(self.mount), "sdm test", 1, version)
        )
        return sd

    def path(self, sd: str, img: str, vol: str) -> Path:
        return self.mount / sd / "images" / img / vol

    def meta(self, sd: str, img: str, vol: str) -> VolumeMetadata:
        return VolumeMetadata.parse(self.path(sd, img, f"{vol}.meta").read_bytes())

    def run_job(self, verb: str, *args: Any) -> tuple[str, JobInfo]:
        """Call ``SDM.<verb>`` with a new job id, wait for its end; (final status, job info)."""
        job_id = new_id()
        getattr(self.api, verb)(job_id, *args)
        status = self.events.wait_final(job_id)
        return status, self.api.get_jobs(None, [job_id])[job_id]


@pytest.fixture
def sdm(sanlock_daemon: object) -> Iterator[SdmLab]:
    root = make_workdir("virthost-sdm-")
    base = make_lab(root)  # mount directories sanlock may use, pools and domains
    runner, resources = GatedRunner(), ResourceManager()
    store = ImageStore(base.domains, runner, resources, 30.0, SanlockVolumeLeases())
    ctx = SdmContext(store, base.domains, runner, resources, 30.0)
    scheduler = Scheduler("sdm-it-sched")
    scheduler.start()
    bus = EventBus()
    registry = JobRegistry(scheduler, bus, workers=2)
    registry.start()
    api = SdmApi(registry, job_factories(ctx))
    try:
        yield SdmLab(root, base.pools, base.domains, store, runner, ctx, registry, api,
                     JobEvents(bus))  # fmt: skip
    finally:
        runner.go_on.set()
        registry.shutdown(wait=True)
        scheduler.stop()
        base.pools.close()
        shutil.rmtree(root, ignore_errors=True)


def new_id() -> str:
    return str(uuid.uuid4())


def div(sd: str, img: str, vol: str, generation: int | None = None) -> dict[str, Any]:
    endpoint: dict[str, Any] = {"endpoint_type": "div", "sd_id": sd, "img_id": img, "vol_id": vol}
    if generation is not None:
        endpoint["generation"] = generation
    return endpoint


def qemu_io(path: Path, fmt: str, *commands: str) -> None:
    argv = ["qemu-io", "-f", fmt]
    for command in commands:
        argv += ["-c", command]
    subprocess.run([*argv, str(path)], check=True, capture_output=True)


def qemu_info(path: Path) -> dict[str, Any]:
    out = subprocess.run(
        ["qemu-img", "info", "--output", "json", "-U", str(path)],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    info = json.loads(out)
    assert isinstance(info, dict)
    return info


def qemu_map(path: Path) -> list[dict[str, Any]]:
    out = subprocess.run(
        ["qemu-img", "map", "--output", "json", "-U", str(path)],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    extents = json.loads(out)
    assert isinstance(extents, list)
    return extents


def identical(a: Path, a_fmt: str, b: Path, b_fmt: str) -> bool:
    """Whether the guest-visible bytes (whole chains) of two images are the same."""
    argv = ["qemu-img", "compare", "-U", "-f", a_fmt, "-F", b_fmt, str(a), str(b)]
    result = subprocess.run(argv, capture_output=True, text=True)
    assert result.returncode in (0, 1), result.stderr
    return result.returncode == 0
