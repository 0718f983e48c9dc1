"""The SDM verbs this package implements, as the job factories :class:`~virthost.api.sdm.SdmApi`
takes: ``{verb: (job_id, request) -> JobWork}``.

A factory runs on the RPC thread that received the verb, so it only checks what needs no
storage access (an unsupported endpoint or option answers the verb itself); everything that
touches a domain happens in the job's work, on a registry worker.
"""

from __future__ import annotations

from typing import Any

from virthost.storage.jobs import JobFactory, JobWork
from virthost.storage.jobs.sdmrequests import (
    AmendVolumeRequest,
    CopyDataRequest,
    MergeRequest,
    UpdateVolumeRequest,
)
from virthost.storage.sdm.amend_volume import amend_volume_work
from virthost.storage.sdm.context import SdmContext
from virthost.storage.sdm.copy_data import copy_data_work
from virthost.storage.sdm.merge import merge_work
from virthost.storage.sdm.update_volume import update_volume_work


def job_factories(ctx: SdmContext) -> dict[str, JobFactory[Any]]:
    """One factory per implemented SDM verb, all working through ``ctx``."""

    def copy_data(job_id: str, request: CopyDataRequest, /) -> JobWork:
        return copy_data_work(ctx, request)

    def update_volume(job_id: str, request: UpdateVolumeRequest, /) -> JobWork:
        return update_volume_work(ctx, request)

    def amend_volume(job_id: str, request: AmendVolumeRequest, /) -> JobWork:
        return amend_volume_work(ctx, request)

    def merge(job_id: str, request: MergeRequest, /) -> JobWork:
        return merge_work(ctx, request)

    return {
        "copy_data": copy_data,
        "update_volume": update_volume,
        "amend_volume": amend_volume,
        "merge": merge,
    }
