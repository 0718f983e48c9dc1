"""What every SDM job needs: the storage services, a located volume, and the volume operation.

A job's work runs on a registry worker and holds its image locks (:mod:`virthost.common.
resources`, VDSM's namespaces: the domain SHARED in ``00_storage``, the image in
``01_img_<sd>``) for the whole of its work, so nothing else on this host changes the chain
under it. The metadata it reads is only trusted once those locks are held.

:func:`volume_operation` is how a job changes a volume's data: the ``generation`` the engine
expects is checked first (a mismatch is GenerationMismatch, 911), the volume is marked ILLEGAL
while its data is in flux, and only when the work has completed is it made LEGAL again with
the next generation. The engine reads these two fields to learn what happened to a job it lost
sight of, which is why nothing about the job itself needs to be persisted:

- the job completed: LEGAL, generation + 1; a retry with the old generation fails with 911
  instead of doing the work twice;
- the job failed, was aborted, or died with its daemon (kill -9) half-way: the volume stays
  ILLEGAL with the *old* generation, so a retry with that generation is accepted and redoes
  the work from the start, while a stale caller holding an older generation is still fenced.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from virthost.common.commands import Runner
from virthost.common.resources import LockMode, LockSet, ResourceManager
from virthost.storage import constants as sc
from virthost.storage import errors as se
from virthost.storage import qemuimg
from virthost.storage.filedomain import DomainHandle
from virthost.storage.images import DomainLocator, ImageStore
from virthost.storage.images.context import LockRequest, image_lock
from virthost.storage.images.layout import ImagePaths, VolumePaths, volume_id
from virthost.storage.images.volume import read_metadata, write_metadata
from virthost.storage.jobs import JobContext
from virthost.storage.volmetadata import VolumeMetadata, next_generation

log = logging.getLogger("virthost.storage.sdm")

EXCLUSIVE, SHARED = LockMode.EXCLUSIVE, LockMode.SHARED


@dataclass(frozen=True)
class SdmContext:
    """The services behind the SDM jobs; the daemon builds one from its storage graph.

    ``images`` does the work that already has a home there (metadata updates, extending a
    volume); ``domains``, ``runner`` and ``resources`` are the same objects the ImageStore was
    built with, so the locks taken here and there are one table.
    """

    images: ImageStore
    domains: DomainLocator
    runner: Runner
    resources: ResourceManager
    lock_timeout: float

    @property
    def qemu(self) -> qemuimg.Run:
        """How qemu-img runs: through our runner, with qemuimg's time box per command."""
        return {"runner": self.runner}

    def lock(self, requests: Iterable[LockRequest]) -> LockSet:
        return self.resources.acquire_all(requests, self.lock_timeout)

    def lock_image(self, sd_uuid: str, img_uuid: str, mode: LockMode) -> LockSet:
        return self.lock(image_lock(sd_uuid, img_uuid, mode))

    def locate(self, sd_uuid: str, img_uuid: str, vol_uuid: str) -> LocatedVolume:
        """Read a volume's record (201 when it has none); the caller holds the image lock."""
        handle = self.domains.locate(sd_uuid)
        paths = ImagePaths(handle.images_dir, img_uuid).volume(vol_uuid)
        return LocatedVolume(handle, paths, read_metadata(handle.io, paths))


@dataclass(frozen=True)
class LocatedVolume:
    """A volume of a located domain with its record as last read or written here."""

    handle: DomainHandle
    paths: VolumePaths
    metadata: VolumeMetadata

    @property
    def volume(self) -> str:
        return self.paths.volume

    @property
    def path(self) -> str:
        return self.paths.data

    @property
    def qemu_format(self) -> str:
        return self.metadata.format.qemu_format

    def sibling(self, vol_uuid: str) -> LocatedVolume:
        """Another volume of the same image directory (a parent, a child, a linked template)."""
        paths = VolumePaths(self.paths.image_dir, volume_id(vol_uuid, "volume"))
        return LocatedVolume(self.handle, paths, read_metadata(self.handle.io, paths))

    def reread(self) -> LocatedVolume:
        return replace(self, metadata=read_metadata(self.handle.io, self.paths))

    def update(self, **changes: Any) -> LocatedVolume:
        """Write the record with ``changes`` applied (atomically); returns the new state."""
        md = replace(self.metadata, **changes)
        write_metadata(self.handle.io, self.paths, md, self.handle.metadata.version)
        return replace(self, metadata=md)


def check_generation(volume: LocatedVolume, expected: int | None) -> None:
    """GenerationMismatch (911) unless ``expected`` is None or the volume's generation."""
    actual = volume.metadata.generation
    if expected is not None and expected != actual:
        raise se.GenerationMismatch(
            f"volume {volume.volume}: requested generation {expected}, actual {actual}"
        )


@contextmanager
def volume_operation(
    volume: LocatedVolume, expected_generation: int | None, *, set_illegal: bool = True
) -> Iterator[LocatedVolume]:
    """Fence by generation, keep the volume ILLEGAL during the work, then LEGAL and bumped.

    Nothing is undone when the work raises: the volume keeps ILLEGAL and its old generation,
    which is exactly the state a retry needs (see the module docstring). ``set_illegal=False``
    is for work that cannot spoil the volume's data when it fails (amending the qcow2 header):
    the legality is left alone and only the generation is bumped.
    """
    check_generation(volume, expected_generation)
    if set_illegal:
        volume = volume.update(legality=sc.Legality.ILLEGAL)
    yield volume
    done = volume.reread()
    changes: dict[str, Any] = {"generation": next_generation(done.metadata.generation)}
    if set_illegal:
        changes["legality"] = sc.Legality.LEGAL
    done.update(**changes)
    log.info(
        "Volume %s: operation done, generation %d -> %d",
        volume.volume,
        done.metadata.generation,
        changes["generation"],
    )


def progress_reporter(job: JobContext) -> qemuimg.ProgressCallback:
    """qemu-img's ``-p`` percentages as the job's progress, and the way an abort stops it.

    The runner hands each progress record to this callback on the job's own thread while
    qemu-img runs; raising :class:`~virthost.storage.jobs.JobAborted` from here makes the
    runner kill qemu-img's whole process group before the error unwinds the job. This is the
    only handle on a running qemu-img that :class:`~virthost.common.commands.CommandRunner`
    offers, so an abort takes effect at the next record qemu-img prints (every 1% of the work,
    and always once at the end).
    """

    def report(percent: float) -> None:
        job.check_aborted()
        job.set_progress(min(max(percent, 0.0), 100.0))

    return report
