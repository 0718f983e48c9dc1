"""What every image operation needs: domains, qemu-img, locks, leases, and the task's journal.

Locks follow VDSM's resource manager namespaces: every operation holds its domain SHARED in
``00_storage`` (so the domain cannot be detached or formatted under it) and the image in
``01_img_<sd>``: EXCLUSIVE to change it, SHARED to read or prepare it. Images are independent
resources, so operations on different images run in parallel and operations on one image
queue. All locks of an operation are taken together, in sorted order, under one deadline
(:meth:`ResourceManager.acquire_all`), so two operations never deadlock on each other.

``Record`` is the task's ``add_recovery``: an operation calls it with the name of one of
:meth:`ImageStore.recoveries` and string parameters *before* each step that leaves something
behind, so a task that fails (or a daemon that dies) can undo or finish what was started.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from virthost.common.commands import Runner
from virthost.common.resources import LockMode, LockSet, ResourceManager
from virthost.storage.filedomain import DomainHandle
from virthost.storage.images.leases import VolumeLeaseInitializer
from virthost.storage.qemuimg import Run

STORAGE_NAMESPACE = "00_storage"
IMAGE_NAMESPACE_PREFIX = "01_img_"

Record = Callable[[str, Mapping[str, str]], None]
Recovery = Callable[[Mapping[str, str]], None]
LockRequest = tuple[str, str, LockMode]


def image_namespace(sd_uuid: str) -> str:
    """The resource namespace of the images of domain ``sd_uuid``."""
    return IMAGE_NAMESPACE_PREFIX + sd_uuid


def image_lock(sd_uuid: str, img_uuid: str, mode: LockMode) -> list[LockRequest]:
    """The domain (SHARED) and the image (``mode``): what one image operation holds."""
    return [
        (STORAGE_NAMESPACE, sd_uuid, LockMode.SHARED),
        (image_namespace(sd_uuid), img_uuid, mode),
    ]


class DomainLocator(Protocol):
    """Finds a domain: :class:`~virthost.storage.filedomain.FileDomains` does."""

    def locate(self, sd_uuid: Any) -> DomainHandle: ...


@dataclass(frozen=True)
class StoreContext:
    domains: DomainLocator
    runner: Runner
    resources: ResourceManager
    lock_timeout: float
    leases: VolumeLeaseInitializer

    @property
    def qemu(self) -> Run:
        """How qemu-img runs: through our runner, with qemuimg's time box per command."""
        return {"runner": self.runner}

    def lock(self, requests: Iterable[LockRequest]) -> LockSet:
        return self.resources.acquire_all(requests, self.lock_timeout)


def noted(record: Record | None, name: str, **params: str) -> None:
    """Tell the task (if any) how to undo or finish the next step."""
    if record is not None:
        record(name, dict(params))
