"""The SDM namespace: storage verbs that start a host job and answer at once.

Each ``SDM.*`` verb takes a ``job_id`` chosen by the caller, checks its params, asks the
verb's :class:`~virthost.storage.jobs.JobFactory` for the work and registers it as a job; the
engine then follows the job with ``Host.getJobs`` and the ``|jobs|status|<id>`` events. A
verb whose factory is not plugged in answers MethodNotImplemented (44), like any verb not
implemented yet.

The job plumbing the Host namespace exposes (``Host.getJobs``; abort and delete for the
verbs that take them) is here as plain methods, for the Host API to delegate to.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from virthost.common import errors, validate
from virthost.storage.jobs import Job, JobFactory, JobInfo, JobRegistry
from virthost.storage.jobs import sdmrequests as req

log = logging.getLogger("virthost.api.sdm")

SDM_VERBS = frozenset(
    {
        "copy_data",
        "sparsify_volume",
        "merge",
        "amend_volume",
        "move_domain_device",
        "reduce_domain",
        "update_volume",
        "add_bitmap",
        "remove_bitmap",
        "clear_bitmaps",
    }
)


class SdmApi:
    """``SDM.*`` verbs over a :class:`JobRegistry`, with one job factory per implemented verb."""

    def __init__(self, registry: JobRegistry, factories: Mapping[str, JobFactory[Any]]) -> None:
        unknown = set(factories) - SDM_VERBS
        if unknown:
            raise ValueError(f"job factories for verbs SDM does not have: {sorted(unknown)}")
        self._registry = registry
        self._factories = dict(factories)

    # --- SDM verbs -----------------------------------------------------------------------

    def copy_data(
        self, job_id: Any, source: Any, destination: Any, copy_bitmaps: Any = False
    ) -> None:
        self._start(
            "copy_data",
            job_id,
            lambda: req.CopyDataRequest(
                source=req.copy_endpoint(source, "source"),
                destination=req.copy_endpoint(destination, "destination"),
                copy_bitmaps=req.flag(copy_bitmaps, "copy_bitmaps"),
            ),
        )

    def sparsify_volume(self, job_id: Any, vol_info: Any) -> None:
        self._start(
            "sparsify_volume",
            job_id,
            lambda: req.VolumeRequest(req.volume_endpoint(vol_info, "vol_info")),
        )

    def merge(self, job_id: Any, subchain_info: Any, merge_bitmaps: Any = False) -> None:
        self._start(
            "merge",
            job_id,
            lambda: req.MergeRequest(
                subchain=req.subchain_info(subchain_info, "subchain_info"),
                merge_bitmaps=req.flag(merge_bitmaps, "merge_bitmaps"),
            ),
        )

    def amend_volume(self, job_id: Any, vol_info: Any, qcow2_attr: Any) -> None:
        self._start(
            "amend_volume",
            job_id,
            lambda: req.AmendVolumeRequest(
                volume=req.volume_endpoint(vol_info, "vol_info"),
                compat=req.qcow2_compat(qcow2_attr, "qcow2_attr"),
            ),
        )

    def move_domain_device(self, job_id: Any, move_params: Any) -> None:
        self._start(
            "move_domain_device", job_id, lambda: req.move_device(move_params, "move_params")
        )

    def reduce_domain(self, job_id: Any, reduce_params: Any) -> None:
        self._start(
            "reduce_domain", job_id, lambda: req.reduce_domain(reduce_params, "reduce_params")
        )

    def update_volume(self, job_id: Any, vol_info: Any, vol_attr: Any) -> None:
        self._start(
            "update_volume",
            job_id,
            lambda: req.UpdateVolumeRequest(
                volume=req.volume_endpoint(vol_info, "vol_info"),
                attributes=req.volume_attributes(vol_attr, "vol_attr"),
            ),
        )

    def add_bitmap(self, job_id: Any, vol_info: Any, bitmap: Any) -> None:
        self._start("add_bitmap", job_id, lambda: _bitmap_request(vol_info, bitmap))

    def remove_bitmap(self, job_id: Any, vol_info: Any, bitmap: Any) -> None:
        self._start("remove_bitmap", job_id, lambda: _bitmap_request(vol_info, bitmap))

    def clear_bitmaps(self, job_id: Any, vol_info: Any) -> None:
        self._start(
            "clear_bitmaps",
            job_id,
            lambda: req.VolumeRequest(req.volume_endpoint(vol_info, "vol_info")),
        )

    # --- job plumbing for the Host namespace -------------------------------------------------

    def get_jobs(
        self, job_type: str | None = None, job_ids: Iterable[Any] | None = None
    ) -> dict[str, JobInfo]:
        """``Host.getJobs``: jobs by id, optionally of one type or only the ids given."""
        return self._registry.get_jobs(job_type, job_ids)

    def abort_job(self, job_id: Any) -> None:
        self._registry.abort(job_id)

    def delete_job(self, job_id: Any) -> None:
        self._registry.delete(job_id)

    # --- helpers -------------------------------------------------------------------------

    def _start(self, verb: str, job_id: Any, make_request: Callable[[], object]) -> None:
        """Check, make the work, register the job; errors here answer the verb itself."""
        factory = self._factories.get(verb)
        if factory is None:
            raise errors.MethodNotImplemented(f"SDM.{verb}")
        job_id = validate.uuid(job_id, "job_id")
        work = factory(job_id, make_request())
        self._registry.add_and_start(Job.from_work(job_id, verb, work))
        log.info("SDM.%s started job %s", verb, job_id)


def _bitmap_request(vol_info: Any, bitmap: Any) -> req.BitmapRequest:
    return req.BitmapRequest(
        volume=req.volume_endpoint(vol_info, "vol_info"),
        bitmap=req.bitmap_name(bitmap, "bitmap"),
    )
