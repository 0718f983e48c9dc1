"""A file domain on a temporary directory with real out-of-process I/O, recorded cluster-lock
calls and a scripted qemu-img: fast tests of the ImageStore's own logic."""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from virthost.common.commands import CommandResult
from virthost.common.resources import ResourceManager
from virthost.storage.connections import LOCALFS
from virthost.storage.filedomain import CreateRequest, FileDomains
from virthost.storage.images import ImageStore
from virthost.storage.oop import ProcessPools

MiB = 1024 * 1024


class RecordingDomainLocks:
    def init_lockspace(self, *args: Any) -> None:
        pass

    def init_sdm_lease(self, *args: Any) -> None:
        pass


@dataclass
class RecordingLeases:
    calls: list[tuple[str, str, str]] = field(default_factory=list)
    on_init: Callable[[str], None] | None = None

    def init_volume_lease(
        self, sd_uuid: str, vol_uuid: str, lease_path: str, alignment: int, block_size: int
    ) -> None:
        self.calls.append((sd_uuid, vol_uuid, lease_path))
        if self.on_init is not None:
            self.on_init(lease_path)


class FakeQemuImg:
    """Answers qemu-img as scripted: ``create``/``resize`` do nothing (the store made the
    file), ``info`` prints what ``infos`` says for the path; ``ln`` really links."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.infos: dict[str, Any] = {}
        self.on_create: Callable[[list[str]], None] | None = None
        self.lock = threading.Lock()

    def run(self, argv: Sequence[str], timeout: float, **kwargs: Any) -> CommandResult:
        args = list(argv)
        with self.lock:
            self.calls.append(args)
        out = b""
        if args[0] == "ln":
            os.link(args[-2], args[-1])
        elif args[1] == "create" and self.on_create is not None:
            self.on_create(args)
        elif args[1] == "info":
            out = json.dumps(self.infos[args[-1]]).encode()
        return CommandResult(tuple(args), 0, out, b"", 0.0)


@dataclass
class Env:
    root: Path
    pools: ProcessPools
    qemu: FakeQemuImg
    leases: RecordingLeases
    resources: ResourceManager
    store: ImageStore
    sd: str

    def image_dir(self, img: str) -> Path:
        return self.root / "storage" / self.sd / "images" / img


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    mount = tmp_path / "storage"
    mount.mkdir()
    pools = ProcessPools(reap_interval=0)
    domains = FileDomains(tmp_path, lambda kind, remote: mount, pools, RecordingDomainLocks())  # type: ignore[arg-type]
    sd = str(uuid.uuid4())
    domains.create(CreateRequest.from_wire(sd, LOCALFS, str(mount), "unit", 1, 5))
    qemu, leases, resources = FakeQemuImg(), RecordingLeases(), ResourceManager()
    store = ImageStore(domains, qemu, resources, 5.0, leases)
    yield Env(tmp_path, pools, qemu, leases, resources, store, sd)
    pools.close()


def new_id() -> str:
    return str(uuid.uuid4())
