"""SDM.merge: the data step of a cold merge, ``qemu-img commit`` of ``top`` into ``base``.

With VDSM a cold merge is three calls: ``StoragePool.prepareMerge`` (the base grows to the
top's capacity), this job, and ``StoragePool.finalizeMerge`` (the chain is re-linked without
the top); the first and last are :func:`~virthost.storage.sdm.merge_steps.prepare_merge` and
:func:`~virthost.storage.sdm.merge_steps.finalize_merge`. This job only moves data, and leaves
the chain as it was, so that a failed or repeated job never leaves a chain the finalize step
could not recognise.

The work: lock the image EXCLUSIVE; check the subchain (:mod:`.subchain`) and that what qemu-img
will read (the top and everything under the base) is LEGAL; fence the base by
``base_generation`` (911) and mark it ILLEGAL, since while the commit runs the base alone holds
a mix of its old data and the top's; commit (``qemu-img commit -b <base>``, which keeps the
top's data, so the top's child still reads the same guest data whatever happens); mark the base
LEGAL with the next generation. The base itself may be ILLEGAL when the job starts: that is
what an interrupted attempt leaves behind, with the old generation, and committing the same
top again completes it.

The job cannot be aborted, as with VDSM: stopping a commit half-way gains nothing over letting
it end, and the base would have to be merged again anyway. Merging bitmaps is not supported
yet and is refused when the verb is called.
"""

from __future__ import annotations

import logging

from virthost.common import errors
from virthost.storage import qemuimg
from virthost.storage.jobs import JobContext, JobWork
from virthost.storage.jobs.sdmrequests import MergeRequest, SubchainInfo
from virthost.storage.sdm.context import EXCLUSIVE, SdmContext, progress_reporter, volume_operation
from virthost.storage.sdm.subchain import check_legal, locate_subchain

log = logging.getLogger("virthost.storage.sdm")


def commit_subchain(ctx: SdmContext, info: SubchainInfo, job: JobContext) -> None:
    """Commit ``info.top_id`` into ``info.base_id`` under the image lock (the job's work)."""
    with ctx.lock_image(info.sd_id, info.img_id, EXCLUSIVE):
        subchain = locate_subchain(ctx, info)
        check_legal(subchain, subchain.top)
        with volume_operation(subchain.base, info.base_generation) as base:
            log.info("Committing %s into %s", subchain.top.path, base.path)
            qemuimg.commit(
                subchain.top.path,
                subchain.top.qemu_format,
                base=base.volume,
                progress=progress_reporter(job),
                **ctx.qemu,
            )


def merge_work(ctx: SdmContext, request: MergeRequest) -> JobWork:
    """The JobWork of SDM.merge."""
    if request.merge_bitmaps:
        raise errors.UnsupportedOperation("merge_bitmaps: merging bitmaps is not supported yet")
    info = request.subchain

    def run(job: JobContext) -> None:
        commit_subchain(ctx, info, job)

    return JobWork(run=run, abortable=False)
