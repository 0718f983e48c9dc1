"""Real file domains for image tests: FileDomains.create on a set-group-id ``sanlock``
directory treated as mounted, real out-of-process I/O, real qemu-img and real sanlock."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fixtures.sanlock import SanlockDaemon, local_daemon_for_session, make_workdir
from virthost.common.commands import CommandRunner
from virthost.common.resources import ResourceManager
from virthost.storage.connections import LOCALFS
from virthost.storage.filedomain import CreateRequest, FileDomains
from virthost.storage.images import ImageStore, SanlockVolumeLeases
from virthost.storage.oop import ProcessPools


@pytest.fixture(scope="session")
def sanlock_daemon() -> Iterator[SanlockDaemon]:
    yield from local_daemon_for_session()


@dataclass
class Lab:
    """Mounted storage with domains on it, and an ImageStore over them."""

    root: Path
    pools: ProcessPools
    domains: FileDomains
    store: ImageStore

    @property
    def mount(self) -> Path:
        return self.root / "mnt" / "storage"

    def new_domain(self) -> str:
        sd = str(uuid.uuid4())
        req = CreateRequest.from_wire(sd, LOCALFS, str(self.mount), "images test", 1, 5)
        self.domains.create(req)
        return sd

    def image_dir(self, sd: str, img: str) -> Path:
        return self.mount / sd / "images" / img


def make_lab(root: Path) -> Lab:
    mount = root / "mnt" / "storage"
    mount.mkdir(parents=True)
    for directory in (root / "mnt", mount):
        shutil.chown(directory, group="sanlock")
        directory.chmod(0o2770)
    pools = ProcessPools(reap_interval=0)
    domains = FileDomains(root / "mnt", lambda kind, remote: mount, pools)
    store = ImageStore(domains, CommandRunner(), ResourceManager(), 30.0, SanlockVolumeLeases())
    return Lab(root, pools, domains, store)


@pytest.fixture
def lab(sanlock_daemon: SanlockDaemon) -> Iterator[Lab]:
    root = make_workdir("virthost-images-")
    made = make_lab(root)
    try:
        yield made
    finally:
        made.pools.close()
        shutil.rmtree(root, ignore_errors=True)
