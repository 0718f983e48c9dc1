"""A file domain on a temporary directory with real out-of-process I/O and the real qemu-img
(small images are cheap), recorded cluster-lock calls: the SDM work without a job registry."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from unit.storage.images.conftest import RecordingDomainLocks, RecordingLeases
from virthost.common.commands import CommandResult, CommandRunner
from virthost.common.resources import ResourceManager
from virthost.storage.connections import LOCALFS
from virthost.storage.filedomain import CreateRequest, FileDomains
from virthost.storage.images import ImageStore
from virthost.storage.jobs import Job, JobContext
from virthost.storage.oop import ProcessPools
from virthost.storage.sdm import SdmContext
from virthost.storage.volmetadata import VolumeMetadata

MiB = 1024 * 1024
WAIT = 10.0


class FailingRunner(CommandRunner):
    """The real runner, except that qemu-img subcommands named in ``fail`` exit 1."""

    def __init__(self) -> None:
        super().__init__()
        self.fail: set[str] = set()

    def run(self, argv: Sequence[str], timeout: float, **kwargs: Any) -> CommandResult:
        if len(argv) > 1 and argv[0] == "qemu-img" and argv[1] in self.fail:
            return CommandResult(tuple(argv), 1, b"", b"injected failure", 0.0)
        return super().run(argv, timeout, **kwargs)


@dataclass
class Env:
    root: Path
    runner: FailingRunner
    store: ImageStore
    ctx: SdmContext
    sd: str

    def path(self, img: str, vol: str) -> Path:
        return self.root / "storage" / self.sd / "images" / img / vol

    def meta(self, img: str, vol: str) -> VolumeMetadata:
        return VolumeMetadata.parse(self.path(img, f"{vol}.meta").read_bytes())


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    mount = tmp_path / "storage"
    mount.mkdir()
    pools = ProcessPools(reap_interval=0)
    domains = FileDomains(tmp_path, lambda kind, remote: mount, pools, RecordingDomainLocks())  # type: ignore[arg-type]
    sd = new_id()
    domains.create(CreateRequest.from_wire(sd, LOCALFS, str(mount), "unit", 1, 5))
    runner, resources = FailingRunner(), ResourceManager()
    store = ImageStore(domains, runner, resources, 5.0, RecordingLeases())
    yield Env(tmp_path, runner, store, SdmContext(store, domains, runner, resources, 5.0), sd)
    pools.close()


def new_id() -> str:
    return str(uuid.uuid4())


def run_in_job(work: Any, abortable: bool = True) -> Job:
    """Run ``work(ctx)`` as a job on the calling thread; the job ends in a final status."""
    job = Job(new_id(), "test", work, abortable=abortable)
    job.run()
    return job


class RunningJob:
    """A job running ``work`` on a thread of its own, for tests that abort it meanwhile."""

    def __init__(self, work: Any) -> None:
        self.started = threading.Event()
        self.ctx: JobContext | None = None

        def wrapped(ctx: JobContext) -> None:
            self.ctx = ctx
            self.started.set()
            work(ctx)

        self.job = Job(new_id(), "test", wrapped, abortable=True)
        self.thread = threading.Thread(target=self.job.run)
        self.thread.start()
        assert self.started.wait(WAIT)

    def join(self) -> None:
        self.thread.join(WAIT)
        assert not self.thread.is_alive()
