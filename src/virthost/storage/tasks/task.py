"""One storage task: its work, its rollback steps, its state, and what the engine is told.

A task runs its *work* once on a pool thread. While it runs, the work registers rollback steps
(:meth:`TaskContext.add_recovery`): a name from the manager's table of recovery functions and
plain string parameters, so that the step can be written to disk and run by a later process.
If the work raises, or the task was stopped, the steps run in reverse order, each failure
logged and the rest still run; the task ends ``recovered`` or, when a step failed, ``failed``.

Why a step is saved before ``add_recovery`` returns: the work registers the step *before* it
makes the change the step undoes (create the volume only once "remove the volume" is on disk).
Then a crash at any instant leaves on disk a list of steps covering whatever was done, and the
next SPM rolls it back. Steps must therefore tolerate undoing something that was never done,
and being run twice (a crash during rollback runs the remaining steps again, and a step that
ran just before the crash is run again).

Concurrency: the work and the rollback run on one pool thread at a time; the task is *busy*
meanwhile, and also while it is being cleared, so clear, revert and the run never overlap.
Every change of the record is saved before it shows (the engine never sees "finished" before
the disk says so), and saves of one task are serialised. Readers (status, info) only take a
short lock and never wait for storage. A stop request is a flag the work sees at its next
:meth:`TaskContext.check_aborted`; the task is reported ``aborting`` from then on.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from virthost.common import errors
from virthost.storage import errors as se
from virthost.storage.tasks.records import PARAM_NAME, RecoveryStep, TaskRecord
from virthost.storage.tasks.reports import TaskDetails, TaskInfo, TaskStatus
from virthost.storage.tasks.states import ACTIVE_STATES, TaskState, check_move, wire_pair
from virthost.storage.tasks.store import TaskStore

log = logging.getLogger("virthost.storage.tasks")

RecoveryFn = Callable[[Mapping[str, str]], None]
"""A rollback step: it gets the parameters it was registered with."""

Work = Callable[["TaskContext"], object]

SUCCESS_MESSAGE = "1 jobs completed successfully"
RUNNING_MESSAGE = "running job 1 of 1"

_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


def error_of(exc: BaseException) -> tuple[int, str]:
    """The code and message a task reports when its work raised ``exc``."""
    if isinstance(exc, errors.VirtHostError):
        return exc.code, exc.wire_message
    general = errors.VirtHostError(str(exc) or type(exc).__name__)
    return general.code, general.wire_message


def _plain_json(value: object) -> object:
    """``value`` as it will read back from disk, so memory and disk always agree."""
    return json.loads(json.dumps(value, default=str))


def _check_params(params: Mapping[str, str]) -> dict[str, str]:
    checked = {}
    for key, value in params.items():
        if not isinstance(key, str) or not PARAM_NAME.fullmatch(key):
            raise errors.InvalidParameter(f"bad recovery parameter name {key!r}", param=str(key))
        if not isinstance(value, str) or _CONTROL_CHARS.search(value):
            raise errors.InvalidParameter(
                f"recovery parameter {key}={value!r}: not a string without control characters",
                param=key,
            )
        checked[key] = value
    return checked


class Task:
    """A task's record and lifecycle; created and driven by the task manager."""

    def __init__(
        self,
        record: TaskRecord,
        store: TaskStore | None,
        recoveries: Mapping[str, RecoveryFn],
        *,
        busy: bool,
    ) -> None:
        self._lock = threading.Lock()  # guards the fields below; never held during I/O
        self._save_lock = threading.Lock()  # one save of this task at a time
        self._record = record
        self._store = store
        self._recoveries = recoveries
        self._busy = busy
        self._abort_requested = False
        self._past_no_return = False
        self._cleared = False
        self._idle = threading.Event()  # set when the task is done and not busy
        if not busy:
            self._idle.set()

    def __repr__(self) -> str:
        return f"<Task {self.task_id} {self._record.verb} {self._record.state}>"

    @property
    def task_id(self) -> str:
        return self._record.task_id

    @property
    def tag(self) -> str:
        return self._record.tag

    @property
    def persistent(self) -> bool:
        return self._store is not None

    @property
    def record(self) -> TaskRecord:
        with self._lock:
            return self._record

    @property
    def finished(self) -> bool:
        """Done (finished, recovered or failed) and nothing is running for it."""
        with self._lock:
            return self._record.state.done and not self._busy

    def wait(self, timeout: float | None) -> bool:
        return self._idle.wait(timeout)

    # --- reports --------------------------------------------------------------------------

    def _shown_state(self) -> tuple[TaskRecord, TaskState]:
        with self._lock:
            record, aborting = self._record, self._abort_requested
        if aborting and record.state in ACTIVE_STATES:
            return record, TaskState.ABORTING
        return record, record.state

    def status(self) -> TaskStatus:
        record, state = self._shown_state()
        task_state, task_result = wire_pair(state)
        return {
            "taskID": record.task_id,
            "taskState": task_state,
            "taskResult": task_result,
            "code": record.code,
            "message": record.message,
        }

    def info(self) -> TaskInfo:
        record = self.record
        return {"id": record.task_id, "verb": record.verb}

    def details(self) -> TaskDetails:
        record, state = self._shown_state()
        return {
            "id": record.task_id,
            "verb": record.verb,
            "state": state.value,
            "tag": record.tag,
            "code": record.code,
            "message": record.message,
            "result": record.result,
        }

    # --- saving ---------------------------------------------------------------------------

    def _commit(self, *, strict: bool, **changes: Any) -> None:
        """Save the record with ``changes``, then show them.

        ``strict``: a failed save raises TaskMetaDataSaveError and nothing changes. Otherwise
        (during rollback, where giving up would help nobody) it is logged and the change shows
        anyway; the disk then holds an older state, which a later load rolls back again.
        """
        with self._save_lock:
            with self._lock:
                record = replace(self._record, **changes)
                if record.state is not self._record.state:
                    check_move(record.task_id, self._record.state, record.state)
            if self._store is not None:
                try:
                    self._store.save(record)
                except se.TaskMetaDataSaveError:
                    if strict:
                        raise
                    log.exception("Task %s: state %s not saved", record.task_id, record.state)
            with self._lock:
                self._record = record

    # --- what the work calls (through its TaskContext) ------------------------------------

    def add_recovery(self, name: str, params: Mapping[str, str]) -> None:
        if name not in self._recoveries:
            raise errors.InvalidParameter(f"no recovery function named {name!r}", param="name")
        step = RecoveryStep(name, _check_params(params))
        with self._lock:
            if self._record.state is not TaskState.RUNNING:
                raise se.TaskStateError(f"task {self.task_id} is {self._record.state}")
            steps = self._record.recoveries
        self._commit(strict=True, recoveries=(*steps, step))

    def clear_recoveries(self) -> None:
        with self._lock:
            if self._record.state is not TaskState.RUNNING:
                raise se.TaskStateError(f"task {self.task_id} is {self._record.state}")
            if self._abort_requested:
                raise se.TaskAborted(f"task {self.task_id} was stopped")
            self._past_no_return = True
        self._commit(strict=True, recoveries=())

    def check_aborted(self) -> None:
        with self._lock:
            if self._abort_requested:
                raise se.TaskAborted(f"task {self.task_id} was stopped")

    @property
    def abort_requested(self) -> bool:
        with self._lock:
            return self._abort_requested

    # --- lifecycle (driven by the manager) ------------------------------------------------

    def mark_queued(self) -> None:
        """In memory only: the work is about to be handed to the pool."""
        with self._lock:
            check_move(self.task_id, self._record.state, TaskState.QUEUED)
            self._record = replace(self._record, state=TaskState.QUEUED)

    def request_stop(self) -> bool:
        """Ask the work to stop; False when it is too late (ended, or past clear_recoveries)."""
        with self._lock:
            if self._record.state not in ACTIVE_STATES or self._past_no_return:
                return False
            self._abort_requested = True
            return True

    def run(self, work: Work) -> None:
        """The pool thread's job for a scheduled task: the work, then success or rollback."""
        try:
            self._run(work)
        except Exception:
            log.exception("Task %s: unexpected failure of the task machinery", self.task_id)
        finally:
            self._end_busy()

    def _run(self, work: Work) -> None:
        if self.abort_requested:
            self._fail(se.TaskAborted(f"task {self.task_id} was stopped before it started"))
            return
        try:
            self._commit(strict=True, state=TaskState.RUNNING, message=RUNNING_MESSAGE)
        except se.TaskMetaDataSaveError as e:
            self._fail(e)
            return
        error: Exception | None = None
        result: object = None
        try:
            result = _plain_json(work(TaskContext(self)))
        except Exception as e:  # a result JSON cannot carry fails the task too
            error = e
        with self._lock:
            if error is None and self._abort_requested:
                error = se.TaskAborted(f"task {self.task_id} was stopped")
            if error is None:
                self._past_no_return = True
        if error is not None:
            self._fail(error)
            return
        try:
            self._commit(
                strict=True,
                state=TaskState.FINISHED,
                code=0,
                message=SUCCESS_MESSAGE,
                result=result,
            )
        except se.TaskMetaDataSaveError as e:
            self._fail(e)  # not recorded as finished: after a crash it would be rolled back
        else:
            log.info("Task %s (%s) finished", self.task_id, self._record.verb)

    def _fail(self, error: Exception) -> None:
        code, message = error_of(error)
        if isinstance(error, errors.VirtHostError):
            log.warning("Task %s (%s) failed: %s", self.task_id, self._record.verb, message)
        else:
            log.error("Task %s (%s) failed", self.task_id, self._record.verb, exc_info=error)
        self._commit(strict=False, state=TaskState.ABORTING, code=code, message=message)
        self._roll_back()

    def _roll_back(self) -> None:
        """Run the recorded steps, last first; each one is dropped from disk once it ran."""
        self._commit(strict=False, state=TaskState.RECOVERING)
        steps = list(self.record.recoveries)
        failed = 0
        while steps:
            step = steps.pop()
            recover = self._recoveries.get(step.name)
            try:
                if recover is None:
                    raise KeyError(f"no recovery function named {step.name!r}")
                recover(step.params)
            except Exception:
                failed += 1
                log.exception("Task %s: recovery step %s failed", self.task_id, step.name)
            else:
                log.info("Task %s: recovery step %s done", self.task_id, step.name)
            self._commit(strict=False, recoveries=tuple(steps))
        final = TaskState.FAILED if failed else TaskState.RECOVERED
        self._commit(strict=False, state=final)
        log.info("Task %s rolled back: %s", self.task_id, final)

    def resume(self) -> None:
        """For a task loaded unfinished from disk: roll back what it had recorded."""
        try:
            if self.record.state in ACTIVE_STATES:
                code, message = error_of(
                    se.TaskAborted(f"task {self.task_id} was interrupted by a restart")
                )
                self._commit(strict=False, state=TaskState.ABORTING, code=code, message=message)
            self._roll_back()  # from aborting, or again from recovering: what is left of it
        except Exception:
            log.exception("Task %s: rollback after a restart failed", self.task_id)
        finally:
            self._end_busy()

    def begin_revert(self) -> None:
        """Claim a finished task for :meth:`revert` (403 while busy, 410 once rolled back)."""
        with self._lock:
            if self._busy or not self._record.state.done:
                raise se.TaskNotFinished(f"task {self.task_id} is {self._record.state}")
            if self._record.state is not TaskState.FINISHED:
                raise se.TaskStateError(f"task {self.task_id} was already rolled back")
            self._busy = True
            self._idle.clear()

    def revert(self) -> None:
        """The pool thread's job after :meth:`begin_revert`: run the finished task's steps."""
        try:
            self._roll_back()
        except Exception:
            log.exception("Task %s: revert failed", self.task_id)
        finally:
            self._end_busy()

    def cancel_busy(self) -> None:
        """Undo a claim whose job could not be handed to the pool."""
        self._end_busy()

    def clear(self) -> None:
        """Remove a finished task from disk (403 unless finished and idle)."""
        with self._lock:
            if self._cleared:
                raise se.UnknownTask(self.task_id)
            if self._busy or not self._record.state.done:
                raise se.TaskNotFinished(f"task {self.task_id} is {self._record.state}")
            self._busy = True
            self._idle.clear()
        try:
            if self._store is not None:
                self._store.remove(self.task_id)
            with self._lock:
                self._cleared = True
        finally:
            self._end_busy()

    def _end_busy(self) -> None:
        with self._lock:
            self._busy = False
            done = self._record.state.done
        if done:
            self._idle.set()


class TaskContext:
    """What the work of a task gets: its id, rollback registration and the stop flag."""

    def __init__(self, task: Task) -> None:
        self._task = task

    @property
    def task_id(self) -> str:
        return self._task.task_id

    def add_recovery(self, name: str, params: Mapping[str, str]) -> None:
        """Register a rollback step, saved before this returns when the task is persistent.

        ``name`` must be in the manager's recovery table (InvalidParameter otherwise);
        parameter names are identifiers and values strings without control characters.
        """
        self._task.add_recovery(name, params)

    def clear_recoveries(self) -> None:
        """Drop every step: the work is past the point where undoing it is wanted.

        From then on a stop request is ignored; if a stop came first, TaskAborted is raised
        instead, so the work is rolled back as asked.
        """
        self._task.clear_recoveries()

    def check_aborted(self) -> None:
        """Raise TaskAborted (411) once the task was asked to stop."""
        self._task.check_aborted()

    @property
    def aborting(self) -> bool:
        return self._task.abort_requested
