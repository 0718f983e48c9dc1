"""One host job: a piece of background work the engine follows by the id it chose.

A job goes through VDSM's statuses::

    pending --> running --> done
       |           |   \\--> failed        (the work raised; ``error`` says why)
       |           v
       |        aborting --> aborted      (the work noticed the abort and stopped)
       \\--------------------> aborted     (aborted before a worker picked it up)

``done``, ``failed`` and ``aborted`` are final. Every change of status is reported to the
job's listener (the registry, which turns it into a ``|jobs|status|<id>`` event) while the
job's lock is held, so listeners see the changes of one job in the order they happened even
when an abort from an RPC thread races with the worker finishing. Progress is not a status
change and is only reported when asked for, as VDSM does.

Why abort is cooperative: Python cannot stop a thread, and killing work half-way through
could leave a volume in a state nobody knows. The work function asks its :class:`JobContext`
(:meth:`JobContext.check_aborted` between steps, or :meth:`JobContext.on_abort` to kill a
running ``qemu-img``) and stops cleanly. A job whose work cannot do that is created with
``abortable=False`` and refuses aborts once running with AbortNotSupported (80); a job still
pending can always be aborted, since nothing of it has run yet.

A work function that finishes normally after an abort was requested makes the job ``done``:
the work did complete, and saying otherwise would mislead the engine about the volume.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import NotRequired, TypedDict

from virthost.common import errors, validate

log = logging.getLogger("virthost.storage.jobs")

STORAGE_JOB_TYPE = "storage"


class JobStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    ABORTING = "aborting"
    ABORTED = "aborted"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in _FINISHED


_FINISHED = frozenset({JobStatus.DONE, JobStatus.ABORTED, JobStatus.FAILED})


class JobError(TypedDict):
    code: int
    message: str


class JobInfo(TypedDict):
    """A job as ``Host.getJobs`` and the ``|jobs|status|<id>`` event report it."""

    id: str
    status: str
    description: str
    job_type: str
    progress: NotRequired[float]
    error: NotRequired[JobError]


class JobAborted(errors.ActionStopped):
    """Raised by :meth:`JobContext.check_aborted` to unwind work whose job was aborted."""

    message = "Job aborted"


WorkFunction = Callable[["JobContext"], None]
StatusListener = Callable[["Job", JobInfo], None]
AbortCallback = Callable[[], None]


@dataclass(frozen=True)
class JobWork:
    """What a job runs, and whether that work honours abort requests."""

    run: WorkFunction
    abortable: bool = False


class JobContext:
    """The job as its work function sees it: report progress, notice an abort."""

    def __init__(self, job: Job) -> None:
        self._job = job

    @property
    def job_id(self) -> str:
        return self._job.id

    @property
    def abort_requested(self) -> bool:
        return self._job._abort_requested.is_set()

    def set_progress(self, percent: float) -> None:
        """Record how far the work is, 0 to 100 (a float, as qemu-img reports it)."""
        if isinstance(percent, bool) or not 0 <= percent <= 100:
            raise ValueError(f"progress must be within 0..100, got {percent!r}")
        self._job._set_progress(float(percent))

    def check_aborted(self) -> None:
        """Raise :class:`JobAborted` if an abort was requested; work calls it between steps."""
        if self.abort_requested:
            raise JobAborted(self._job.id)

    def wait_for_abort(self, timeout: float | None = None) -> bool:
        """Sleep until an abort is requested or ``timeout`` passes; True when aborted."""
        return self._job._abort_requested.wait(timeout)

    def on_abort(self, callback: AbortCallback) -> None:
        """Call ``callback`` when an abort is requested (at once if it already was).

        It runs on the thread asking for the abort, typically an RPC worker, so it must be
        quick: kill a child process, set a flag.
        """
        self._job._add_abort_callback(callback)


class Job:
    """A piece of work with VDSM's job id, status, progress and error."""

    def __init__(
        self,
        job_id: str,
        description: str,
        work: WorkFunction,
        *,
        abortable: bool = False,
        job_type: str = STORAGE_JOB_TYPE,
    ) -> None:
        self._id = validate.uuid(job_id, "job_id")
        self._description = description
        self._work = work
        self._abortable = abortable
        self._job_type = job_type
        self._lock = threading.Lock()
        self._status = JobStatus.PENDING
        self._progress: float | None = None
        self._error: JobError | None = None
        self._listener: StatusListener | None = None
        self._abort_requested = threading.Event()
        self._abort_callbacks: list[AbortCallback] = []

    @classmethod
    def from_work(cls, job_id: str, description: str, work: JobWork) -> Job:
        return cls(job_id, description, work.run, abortable=work.abortable)

    @property
    def id(self) -> str:
        return self._id

    @property
    def description(self) -> str:
        return self._description

    @property
    def job_type(self) -> str:
        return self._job_type

    @property
    def abortable(self) -> bool:
        return self._abortable

    @property
    def status(self) -> JobStatus:
        with self._lock:
            return self._status

    @property
    def finished(self) -> bool:
        return self.status.finished

    @property
    def progress(self) -> float | None:
        with self._lock:
            return self._progress

    @property
    def error(self) -> JobError | None:
        with self._lock:
            return self._error

    def info(self) -> JobInfo:
        with self._lock:
            return self._info_locked()

    def watch(self, listener: StatusListener) -> None:
        """Report every status change to ``listener``; a job has one watcher, its registry.

        The listener runs with the job's lock held: it must be quick and must not call back
        into this job.
        """
        with self._lock:
            if self._listener is not None:
                raise ValueError(f"job {self._id} is already watched (added twice?)")
            self._listener = listener

    def run(self) -> None:
        """Run the work on the calling thread (a registry worker) to a final status."""
        with self._lock:
            if self._status is not JobStatus.PENDING:
                log.debug("Job %s is %s, not running it", self._id, self._status)
                return
            self._set_status_locked(JobStatus.RUNNING)
        try:
            self._work(JobContext(self))
        except Exception as exc:
            self._finish_with(exc)
        else:
            with self._lock:
                self._set_status_locked(JobStatus.DONE)

    def abort(self) -> None:
        """Ask the job to stop: a pending job is aborted at once, a running one is asked.

        Raises JobNotActive (84) when the job has finished and AbortNotSupported (80) when
        it is running work that cannot be aborted. Aborting a job already aborting is a no-op.
        """
        with self._lock:
            if self._status.finished:
                raise errors.JobNotActive(f"job {self._id} is {self._status}")
            if self._status is JobStatus.ABORTING:
                return
            if self._status is JobStatus.PENDING:
                self._set_status_locked(JobStatus.ABORTED)
                return
            if not self._abortable:
                raise errors.AbortNotSupported(f"job {self._id} ({self._description})")
            self._set_status_locked(JobStatus.ABORTING)
            self._abort_requested.set()
            callbacks = list(self._abort_callbacks)
        for callback in callbacks:
            self._call_abort_callback(callback)

    def _finish_with(self, exc: Exception) -> None:
        with self._lock:
            if self._status is JobStatus.ABORTING:
                log.info("Job %s stopped after abort: %s", self._id, exc)
                self._set_status_locked(JobStatus.ABORTED)
                return
            if isinstance(exc, errors.VirtHostError):
                log.warning("Job %s (%s) failed: %s", self._id, self._description, exc)
            else:
                log.exception("Job %s (%s) failed unexpectedly", self._id, self._description)
            wire = errors.to_wire(exc)
            self._error = JobError(code=wire["code"], message=wire["message"])
            self._set_status_locked(JobStatus.FAILED)

    def _set_status_locked(self, status: JobStatus) -> None:
        log.info("Job %s (%s): %s -> %s", self._id, self._description, self._status, status)
        self._status = status
        if self._listener is not None:
            try:
                self._listener(self, self._info_locked())
            except Exception:
                log.exception("Status listener of job %s failed", self._id)

    def _info_locked(self) -> JobInfo:
        info = JobInfo(
            id=self._id,
            status=self._status.value,
            description=self._description,
            job_type=self._job_type,
        )
        if self._progress is not None:
            info["progress"] = self._progress
        if self._error is not None:
            info["error"] = JobError(code=self._error["code"], message=self._error["message"])
        return info

    def _set_progress(self, percent: float) -> None:
        with self._lock:
            self._progress = percent

    def _add_abort_callback(self, callback: AbortCallback) -> None:
        with self._lock:
            if not self._abort_requested.is_set():
                self._abort_callbacks.append(callback)
                return
        self._call_abort_callback(callback)

    def _call_abort_callback(self, callback: AbortCallback) -> None:
        try:
            callback()
        except Exception:
            log.exception("Abort callback %r of job %s failed", callback, self._id)

    def __repr__(self) -> str:
        return f"<Job {self._id} {self._description} {self.status}>"
