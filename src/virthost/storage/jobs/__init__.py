"""Host jobs (VDSM's ``vdsm.jobs``): background work the engine follows with ``Host.getJobs``.

:class:`Job` is one piece of work with a status, progress and error; :class:`JobRegistry`
runs jobs on a bounded pool, publishes ``|jobs|status|<id>`` events and forgets finished
jobs after a delay. :mod:`~virthost.storage.jobs.sdmrequests` holds the typed requests of the
SDM verbs and the :class:`JobFactory` protocol through which their work plugs in.
"""

from virthost.storage.jobs.job import (
    STORAGE_JOB_TYPE,
    Job,
    JobAborted,
    JobContext,
    JobError,
    JobInfo,
    JobStatus,
    JobWork,
    WorkFunction,
)
from virthost.storage.jobs.registry import DEFAULT_AUTODELETE_DELAY, JobRegistry
from virthost.storage.jobs.sdmrequests import JobFactory

__all__ = [
    "DEFAULT_AUTODELETE_DELAY",
    "STORAGE_JOB_TYPE",
    "Job",
    "JobAborted",
    "JobContext",
    "JobError",
    "JobFactory",
    "JobInfo",
    "JobRegistry",
    "JobStatus",
    "JobWork",
    "WorkFunction",
]
