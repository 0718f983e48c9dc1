"""SDM.amend_volume: change the qcow2 compat level of a volume in place (``qemu-img amend``).

The engine upgrades old disks to compat 1.1 after a domain was upgraded to version 4 or later;
a domain older than that only supports 0.10 (hosts that old cannot read 1.1), so 1.1 is refused
there, as are RAW volumes (no qcow2 header to amend) and templates (SHARED volumes are read by
other images' chains and are never written). The refusals are VDSM's general error (100)
naming the volume and the reason.

The volume is fenced by its generation (911) and the generation is bumped when done, but it is
*not* marked ILLEGAL meanwhile, as VDSM does not: a failed amend leaves a header qemu-img
either rewrote or did not, never data a guest could misread, and an ILLEGAL mark would only
stop the disk from being used for no reason. qemu-img opens the whole chain (the backing files
are named relative to the volume's directory), so the image lock is held EXCLUSIVE. The work
is a metadata walk with no progress to report, so it cannot be aborted.
"""

from __future__ import annotations

import logging

from virthost.common import errors
from virthost.storage import constants as sc
from virthost.storage import qemuimg
from virthost.storage.jobs import JobContext, JobWork
from virthost.storage.jobs.sdmrequests import AmendVolumeRequest
from virthost.storage.sdm.context import EXCLUSIVE, LocatedVolume, SdmContext, volume_operation

log = logging.getLogger("virthost.storage.sdm")


def supported_compat(domain_version: int) -> tuple[str, ...]:
    """The qcow2 compat levels volumes of a domain of this version may have."""
    if domain_version >= 4:
        return (sc.QCOW2_COMPAT_LEGACY, sc.QCOW2_COMPAT_V4)
    return (sc.QCOW2_COMPAT_LEGACY,)


def check_amendable(volume: LocatedVolume, compat: str) -> None:
    """Refuse (code 100) unless ``volume`` is a non-template COW volume whose domain takes
    ``compat``."""
    if volume.metadata.format is not sc.VolumeFormat.COW:
        raise _cannot_amend(volume, "volume is not COW format")
    if volume.metadata.voltype is sc.VolumeRole.SHARED:
        raise _cannot_amend(volume, "volume is shared")
    version = volume.handle.metadata.version
    if compat not in supported_compat(version):
        raise _cannot_amend(
            volume,
            f"storage domain {volume.handle.sd_uuid} (version {version}) does not support "
            f"compat {compat}",
        )


def _cannot_amend(volume: LocatedVolume, reason: str) -> errors.VirtHostError:
    """VDSM's amend error has the general code; errors.py has no class of its own for it."""
    return errors.VirtHostError(f"Cannot amend volume {volume.volume}: {reason}")


def amend_volume_work(ctx: SdmContext, request: AmendVolumeRequest) -> JobWork:
    """The JobWork of SDM.amend_volume."""
    target, compat = request.volume, request.compat

    def run(job: JobContext) -> None:
        with ctx.lock_image(target.sd_id, target.img_id, EXCLUSIVE):
            volume = ctx.locate(target.sd_id, target.img_id, target.vol_id)
            check_amendable(volume, compat)
            with volume_operation(volume, target.generation, set_illegal=False):
                log.info("Amending volume %s to qcow2 compat %s", volume.volume, compat)
                qemuimg.amend(volume.path, compat, **ctx.qemu)

    return JobWork(run=run, abortable=False)
