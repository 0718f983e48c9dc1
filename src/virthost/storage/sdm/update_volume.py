"""SDM.update_volume: change a volume's legality, description, generation or type.

The rules live in :meth:`~virthost.storage.images.ImageStore.update_volume`, which the
Volume verbs share: the image is locked EXCLUSIVE, the generation the caller names
(``vol_info.generation``) fences stale callers with GenerationMismatch (911), the type may only
become SHARED (a template) for a LEAF without a parent, and the generation is bumped unless
``vol_attr.generation`` sets it. A metadata write is one atomic rename, so the job is not
abortable: there is nothing to stop half-way.
"""

from __future__ import annotations

from virthost.storage.jobs import JobContext, JobWork
from virthost.storage.jobs.sdmrequests import UpdateVolumeRequest
from virthost.storage.sdm.context import SdmContext


def update_volume_work(ctx: SdmContext, request: UpdateVolumeRequest) -> JobWork:
    """The JobWork of SDM.update_volume."""
    volume, attributes = request.volume, request.attributes

    def run(job: JobContext) -> None:
        ctx.images.update_volume(
            volume.sd_id,
            volume.img_id,
            volume.vol_id,
            legality=attributes.legality,
            description=attributes.description,
            generation=attributes.generation,
            vol_type=attributes.role,
            expected_generation=volume.generation,
        )

    return JobWork(run=run, abortable=False)
