"""The host's jobs: start them in the background, report them, abort and forget them.

The SDM verbs answer at once and leave the work to a job here; the engine then follows it
with ``Host.getJobs`` and the ``|jobs|status|<id>`` events published on every status change.
Jobs run on the registry's own bounded executor, never on the caller's thread: an RPC worker
must not be held for a copy of hours, and a burst of jobs queues (or is refused with
ResourceExhausted when the queue is full) instead of starting a thread each.

A finished job stays visible for ``autodelete_delay`` seconds (VDSM's ``[jobs]
autodelete_delay``, an hour) so the engine can read its final status even if it missed the
event, then is forgotten; ``delete`` forgets it earlier.

Why jobs are kept in memory only, as VDSM does: if the daemon dies, its jobs die with it, and
nothing here needs to survive that. The engine learns of it because the job is gone from
``Host.getJobs``, and the storage itself fences the dead job's effects: a job works under the
volume's lease (sanlock drops it with the process) and checks the volume's ``generation``,
which a completed job bumps; the engine inspects the generation and the job status recorded
in the volume lease to decide whether the work happened, and a stale retry fails with
GenerationMismatch (911) rather than acting twice. A persisted job would only add a second,
less reliable account of the same facts.

Locking: the registry's lock is a leaf and is never held while calling into a job. A job
reports its status changes with its own lock held and the registry's listener may then take
the registry's lock (job, then registry), never the reverse.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterable
from typing import Any

from virthost.common import errors, validate
from virthost.common.executor import Executor, ExecutorStopped
from virthost.common.scheduler import ScheduledCall, Scheduler
from virthost.rpc.events import EventBus, event_name
from virthost.storage.jobs.job import Job, JobInfo, JobStatus

log = logging.getLogger("virthost.storage.jobs")

DEFAULT_AUTODELETE_DELAY = 3600.0
DEFAULT_WORKERS = 10  # VDSM runs SDM jobs on its storage pool of thread_pool_size threads
DEFAULT_MAX_QUEUED = 500  # and caps queued work at max_tasks
EVENT_NAMESPACE = "jobs"
EVENT_STATUS = "status"


class JobRegistry:
    """Jobs by id, run on a bounded pool, with status events and automatic deletion."""

    def __init__(
        self,
        scheduler: Scheduler,
        events: EventBus,
        *,
        workers: int = DEFAULT_WORKERS,
        max_queued: int = DEFAULT_MAX_QUEUED,
        autodelete_delay: float = DEFAULT_AUTODELETE_DELAY,
    ) -> None:
        if autodelete_delay < 0:
            raise ValueError(f"autodelete_delay must not be negative, got {autodelete_delay}")
        self._scheduler = scheduler
        self._events = events
        self._autodelete_delay = autodelete_delay
        self._executor = Executor("jobs", workers, max_queued, scheduler)
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self._autodelete_calls: dict[str, ScheduledCall] = {}
        self._closed = False

    def start(self) -> None:
        self._executor.start()

    def shutdown(self, wait: bool = False) -> None:
        """Take no more jobs; abort those that can stop, stop the workers.

        Running jobs that cannot be aborted are left to end with the process (``wait`` joins
        them; a copy can take hours, so the daemon does not).
        """
        with self._lock:
            self._closed = True
            jobs = list(self._jobs.values())
            calls = list(self._autodelete_calls.values())
            self._autodelete_calls.clear()
        for call in calls:
            call.cancel()
        for job in jobs:
            status = job.status
            if status.finished or (status is not JobStatus.PENDING and not job.abortable):
                continue
            # It may have moved on meanwhile (started, or finished): then it stays as it is.
            with contextlib.suppress(errors.JobNotActive, errors.AbortNotSupported):
                job.abort()
        self._executor.stop(wait=wait)

    # --- jobs --------------------------------------------------------------------------------

    def add_and_start(self, job: Job) -> None:
        """Register ``job`` and queue it; JobExists (69) if its id is known.

        Raises ResourceExhausted (1100) when too many jobs are queued, and forgets the job
        then, so the caller may retry with the same id.
        """
        job.watch(self._status_changed)
        with self._lock:
            if self._closed:
                raise ExecutorStopped("the job registry is shut down")
            if job.id in self._jobs:
                raise errors.JobExists(job.id)
            self._jobs[job.id] = job
        try:
            self._executor.dispatch(job.run)
        except Exception:
            with self._lock:
                if self._jobs.get(job.id) is job:
                    del self._jobs[job.id]
            raise
        log.info("Job %s (%s) queued", job.id, job.description)

    def get(self, job_id: Any) -> Job:
        job_id = validate.uuid(job_id, "job_id")
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise errors.NoSuchJob(job_id)
        return job

    def get_jobs(
        self, job_type: str | None = None, job_ids: Iterable[Any] | None = None
    ) -> dict[str, JobInfo]:
        """VDSM's ``Host.getJobs`` map; unknown ids are left out, no ids means all jobs."""
        wanted = {validate.uuid(job_id, "job_ids") for job_id in job_ids or ()}
        with self._lock:
            jobs = list(self._jobs.values())
        return {
            job.id: job.info()
            for job in jobs
            if (not wanted or job.id in wanted) and (job_type is None or job.job_type == job_type)
        }

    def abort(self, job_id: Any) -> None:
        """Abort a job: NoSuchJob (66), JobNotActive (84) or AbortNotSupported (80)."""
        self.get(job_id).abort()

    def delete(self, job_id: Any) -> None:
        """Forget a finished job now: NoSuchJob (66), or JobNotDone (68) while it is active."""
        job = self.get(job_id)
        if not job.finished:
            raise errors.JobNotDone(f"job {job.id} is {job.status}")
        self._forget(job)
        log.info("Job %s deleted", job.id)

    # --- status changes ----------------------------------------------------------------------

    def _status_changed(self, job: Job, info: JobInfo) -> None:
        """Runs with the job's lock held, on whatever thread changed the status.

        The autodelete is armed before the event goes out, so whoever sees a job's final
        status also sees a job that will be forgotten.
        """
        if JobStatus(info["status"]).finished:
            self._schedule_autodelete(job)
        self._events.publish(event_name(EVENT_NAMESPACE, EVENT_STATUS, job.id), {job.id: info})

    def _schedule_autodelete(self, job: Job) -> None:
        with self._lock:
            if self._closed or self._jobs.get(job.id) is not job:
                return
            if job.id in self._autodelete_calls:
                return
            self._autodelete_calls[job.id] = self._scheduler.schedule(
                self._autodelete_delay, lambda: self._autodelete(job)
            )

    def _autodelete(self, job: Job) -> None:
        """Runs on the scheduler thread."""
        if self._forget(job):
            log.info("Job %s deleted %s s after it finished", job.id, self._autodelete_delay)

    def _forget(self, job: Job) -> bool:
        with self._lock:
            if self._jobs.get(job.id) is not job:
                return False
            del self._jobs[job.id]
            call = self._autodelete_calls.pop(job.id, None)
        if call is not None:
            call.cancel()
        return True
