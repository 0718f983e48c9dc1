"""VM.merge: a live merge removes a snapshot layer from a running VM's disk.

The engine deletes a snapshot of a running VM by merging the snapshot's volume (``top``) into
its parent (``base``). When ``top`` is the disk's leaf, the guest writes to it right now, so
the merge is an *active* block commit: libvirt copies ``top``'s data down into ``base`` while
mirroring new writes, reports the job ready when both hold the same data, and is then told to
*pivot*: the guest continues on ``base`` and ``top`` is out of the chain.

The merge runs as a VM job the engine follows in two places: VM.getStats' ``vmJobs`` (VDSM's
``{id, jobType: block, blockJobType: commit, imgUUID, bandwidth, cur, end, drive}``, present
while the job runs) and, when the daemon has a job registry, Host.getJobs with job type
``virt`` (``done`` or ``failed`` with the error). The job polls libvirt's block job, pivots
when it is ready, and then makes the records agree with what the guest uses:

* the disk's ``volumeID`` and ``volumeChain`` in the VM's metadata (live and persistent);
* ``top``'s volume metadata, marked ILLEGAL through the ImageStore: no host may prepare it
  again, and the engine deletes it next (Volume.delete, which also makes ``base`` a leaf).

Only active merges (``top`` is the leaf) are supported: merging an internal volume rewrites the
backing file of ``top``'s child, and the ImageStore has no verb yet to change that child's
parent in its metadata (UnsupportedOperation, 75, meanwhile).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import libvirt

from virthost.common import errors, validate
from virthost.storage.jobs.job import Job
from virthost.virt.deviceops import DomainAccess
from virthost.virt.domxml import parse_domain
from virthost.virt.domxml.volumes import (
    VolumeRef,
    disk_of_image,
    drop_chain_volumes,
    set_drive_volume,
)
from virthost.virt.snapshot import write_metadata_live
from virthost.virt.storagedrives import VmVolumes
from virthost.virt.vm import Vm

log = logging.getLogger("virthost.virt.livemerge")

VIRT_JOB_TYPE = "virt"
POLL_INTERVAL = 0.5
MAX_JOB_SECONDS = 24 * 3600.0


class JobRunner(Protocol):
    """Runs a merge in the background: ``run(job_id, description, work)``."""

    def __call__(self, job_id: str, description: str, work: Callable[[], None]) -> None: ...


class JobRegistry(Protocol):
    def add_and_start(self, job: Job) -> None: ...


def registry_runner(registry: JobRegistry) -> JobRunner:
    """Run merges as host jobs of type ``virt``, which Host.getJobs reports."""

    def run(job_id: str, description: str, work: Callable[[], None]) -> None:
        registry.add_and_start(Job(job_id, description, lambda _: work(), job_type=VIRT_JOB_TYPE))

    return run


@dataclass
class MergeJob:
    """One live merge as VM.getStats reports it in ``vmJobs``."""

    id: str
    vm_id: str
    target: str
    image: str
    base: VolumeRef
    top: VolumeRef
    bandwidth: int
    cur: int = 0
    end: int = 0
    pivoted: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def report(self) -> dict[str, Any]:
        with self.lock:
            return {
                "id": self.id,
                "jobType": "block",
                "blockJobType": "commit",
                "imgUUID": self.image,
                "bandwidth": self.bandwidth,
                "cur": str(self.cur),
                "end": str(self.end),
                "drive": self.target,
            }


class LiveMerge:
    """VM.merge for the VM service, and the ``vmJobs`` of each VM."""

    def __init__(
        self,
        access: DomainAccess,
        volumes: VmVolumes,
        run_job: JobRunner,
        poll_interval: float = POLL_INTERVAL,
    ) -> None:
        self._access = access
        self._volumes = volumes
        self._run_job = run_job
        self._poll_interval = poll_interval
        self._lock = threading.Lock()
        self._jobs: dict[str, dict[str, MergeJob]] = {}

    def jobs_of(self, vm_id: str) -> dict[str, dict[str, Any]]:
        """``vmJobs`` of the VM: the merges still running."""
        with self._lock:
            jobs = list(self._jobs.get(vm_id, {}).values())
        return {job.id: job.report() for job in jobs}

    def start(
        self, vm: Vm, drive: Any, base: Any, top: Any, bandwidth: int, job_id: Any
    ) -> MergeJob:
        """Check the request, start libvirt's block commit and the job following it."""
        job = self._plan(vm, drive, base, top, bandwidth, job_id)
        with self._lock:
            running = self._jobs.setdefault(vm.id, {})
            if job.id in running:
                raise errors.JobExists(job.id)
            if any(other.target == job.target for other in running.values()):
                raise errors.MergeFailed(f"disk {job.target} has a merge running already")
            running[job.id] = job
        try:
            self._commit(vm, job)
            self._run_job(
                job.id, f"merge {job.target} of vm {vm.id}", lambda: self._follow(vm, job)
            )
        except BaseException:
            self._forget(job)
            raise
        log.info(
            "vm %s: merging %s into %s on %s (job %s)",
            vm.id, job.top.volume, job.base.volume, job.target, job.id,
        )  # fmt: skip
        return job

    # --- planning and starting -----------------------------------------------------------

    def _plan(
        self, vm: Vm, drive: Any, base: Any, top: Any, bandwidth: int, job_id: Any
    ) -> MergeJob:
        if not isinstance(drive, Mapping):
            raise errors.InvalidParameter("drive must be a volume record", param="drive")
        sd = validate.uuid(drive.get("domainID"), "drive.domainID")
        img = validate.uuid(drive.get("imageID"), "drive.imageID")
        base_vol = validate.uuid(base, "baseVolUUID")
        top_vol = validate.uuid(top, "topVolUUID")
        job = validate.uuid(job_id, "jobUUID") if job_id else str(uuid.uuid4())
        if bandwidth < 0:
            raise errors.InvalidParameter(f"bandwidth={bandwidth}", param="bandwidth")
        metadata = parse_domain(self._access.live_xml(vm)).metadata
        found = disk_of_image(metadata, sd, img)
        if found is None:
            raise errors.ImageFileNotFound(f"vm {vm.id} has no disk of image {img} on {sd}")
        target, leaf = found
        chain = [node.volume for node in self._volumes.preparer.prepare(leaf).chain]
        for vol, name in ((base_vol, "baseVolUUID"), (top_vol, "topVolUUID")):
            if vol not in chain:
                raise errors.MergeFailed(
                    f"{name}={vol} is not in the chain of disk {target}: {chain}"
                )
        if chain.index(base_vol) + 1 != chain.index(top_vol):
            raise errors.MergeFailed(f"{base_vol} is not the parent of {top_vol} on disk {target}")
        if top_vol != leaf.volume:
            raise errors.UnsupportedOperation(
                f"merging the internal volume {top_vol}: only the leaf can be merged yet"
            )
        return MergeJob(
            id=job,
            vm_id=vm.id,
            target=target,
            image=img,
            base=leaf.with_volume(base_vol),
            top=leaf.with_volume(top_vol),
            bandwidth=bandwidth,
        )

    def _commit(self, vm: Vm, job: MergeJob) -> None:
        base_path = self._path_of(job.base)
        flags = libvirt.VIR_DOMAIN_BLOCK_COMMIT_ACTIVE
        self._access.apply(
            vm,
            "starting a block commit on",
            errors.MergeFailed,
            lambda dom: dom.blockCommit(job.target, base_path, None, job.bandwidth, flags),
        )

    def _path_of(self, ref: VolumeRef) -> str:
        return self._volumes.preparer.prepare(ref).path

    # --- following the job ----------------------------------------------------------------

    def _follow(self, vm: Vm, job: MergeJob) -> None:
        """Run in the job: wait for the commit, pivot, then fix the records."""
        try:
            self._wait_and_pivot(vm, job)
            self._finish(vm, job)
        finally:
            self._forget(job)

    def _wait_and_pivot(self, vm: Vm, job: MergeJob) -> None:
        deadline = time.monotonic() + MAX_JOB_SECONDS
        while time.monotonic() < deadline:
            if vm.is_down:
                raise errors.MergeFailed(f"vm {vm.id} went down during the merge")
            info = self._access.apply(
                vm, "reading the block job of", errors.MergeFailed,
                lambda dom: dom.blockJobInfo(job.target, 0),
            )  # fmt: skip
            if not info:
                return  # the job is gone: pivoted, or it failed (the check below says)
            with job.lock:
                job.cur, job.end = int(info.get("cur", 0)), int(info.get("end", 0))
                ready = job.end > 0 and job.cur == job.end
            if ready and not job.pivoted:
                self._pivot(vm, job)
            time.sleep(self._poll_interval)
        raise errors.MergeFailed(f"merge job {job.id} did not end in {MAX_JOB_SECONDS:g} s")

    def _pivot(self, vm: Vm, job: MergeJob) -> None:
        try:
            self._access.apply(
                vm, "pivoting", errors.MergeFailed,
                lambda dom: dom.blockJobAbort(
                    job.target, libvirt.VIR_DOMAIN_BLOCK_JOB_ABORT_PIVOT
                ),
            )  # fmt: skip
        except errors.MergeFailed as e:
            # "not ready yet": the copy caught up but qemu did not say so yet; next poll
            log.info("vm %s: pivot of %s not done yet: %s", vm.id, job.target, e)
            return
        job.pivoted = True
        log.info("vm %s: disk %s pivoted to %s", vm.id, job.target, job.base.volume)

    def _finish(self, vm: Vm, job: MergeJob) -> None:
        live = parse_domain(self._access.live_xml(vm))
        disk = live.devices.disk(job.target)
        base_path = self._path_of(job.base)
        if disk is None or disk.path != base_path:
            raise errors.MergeFailed(
                f"disk {job.target} uses {disk.path if disk else None} after the merge, "
                f"not {base_path}: the block commit did not complete"
            )
        set_drive_volume(live.metadata, job.target, job.base.volume)
        drop_chain_volumes(live.metadata, job.target, [job.top.volume])
        write_metadata_live(self._access, vm, live.metadata, errors.MergeFailed)
        self._access.live_xml(vm)
        self._volumes.swap(vm, job.top, job.base)
        self._volumes.preparer.retire(job.top)
        log.info("vm %s: merge %s done; volume %s retired", vm.id, job.id, job.top.volume)

    def _forget(self, job: MergeJob) -> None:
        with self._lock:
            running = self._jobs.get(job.vm_id, {})
            running.pop(job.id, None)
            if not running:
                self._jobs.pop(job.vm_id, None)
