"""``TaskManager``: the storage tasks of this host, as the engine polls and clears them.

VDSM's SPM verbs (Volume.create, Image.delete, StoragePool.spmStart ...) do not answer with a
result: they schedule a task and return its UUID at once; the engine polls
``Task.getStatus``/``Host.getAllTasksStatuses`` and finally ``Task.clear``. The manager keeps
those tasks by id, runs their work on a bounded pool of threads (VDSM's ``thread_pool_size``
10, at most ``max_tasks`` 500 waiting) and never makes the caller wait for the work.

Tasks scheduled with a :class:`TaskStore` are persistent: everything about them, rollback steps
included, is on the master domain. When this host becomes SPM again after a crash, or another
host becomes SPM, :meth:`TaskManager.load` brings them back: those that had ended are shown as
they ended, the others are rolled back. Tasks carry a *tag* (the pool id) so that the tasks of
one pool can be listed, counted (spmStop refuses while any is unfinished) and dropped together.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import replace

from virthost.common import errors, validate
from virthost.common.executor import Executor
from virthost.common.scheduler import Scheduler
from virthost.storage import errors as se
from virthost.storage.tasks.records import TaskRecord
from virthost.storage.tasks.reports import TaskDetails, TaskInfo, TaskStatus
from virthost.storage.tasks.states import TaskState
from virthost.storage.tasks.store import TaskStore
from virthost.storage.tasks.task import RecoveryFn, Task, Work

log = logging.getLogger("virthost.storage.tasks")

DEFAULT_MAX_WORKERS = 10
DEFAULT_MAX_TASKS = 500


class TaskManager:
    """Schedules, reports, stops, reverts, clears and reloads storage tasks."""

    def __init__(
        self,
        recoveries: Mapping[str, RecoveryFn],
        *,
        max_workers: int = DEFAULT_MAX_WORKERS,
        max_tasks: int = DEFAULT_MAX_TASKS,
        executor: Executor | None = None,
    ) -> None:
        """``recoveries``: the rollback functions by name, the only ones a task may register.

        ``executor``: a started pool to run the work on; by default the manager makes its own
        with ``max_workers`` threads and room for ``max_tasks`` waiting tasks.
        """
        self._recoveries = dict(recoveries)
        self._lock = threading.Lock()
        self._tasks: dict[str, Task] = {}
        self._closed = False
        self._scheduler: Scheduler | None = None
        if executor is None:
            self._scheduler = Scheduler("tasks/timer")
            self._scheduler.start()
            executor = Executor(
                "tasks",
                workers=max_workers,
                max_tasks=max_tasks,
                scheduler=self._scheduler,
                max_workers=max_workers,
            )
            executor.start()
            self._own_executor = True
        else:
            self._own_executor = False
        self._executor = executor

    # --- scheduling -----------------------------------------------------------------------

    def schedule(
        self,
        verb: str,
        work: Work,
        *,
        task_id: str | None = None,
        store: TaskStore | None = None,
        tag: str = "",
    ) -> str:
        """Start ``work`` as a task and return its id at once.

        With ``store`` the task is persistent (saved before the work starts). Raises
        InvalidParameter for a malformed or already used ``task_id`` and TooManyTasks (1100)
        when the pool's queue is full.
        """
        if not isinstance(verb, str) or not verb:
            raise errors.InvalidParameter("a task needs a verb", param="verb")
        task_id = str(uuid.uuid4()) if task_id is None else validate.uuid(task_id, "taskID")
        record = TaskRecord(task_id=task_id, verb=verb, state=TaskState.INIT, tag=tag)
        task = Task(record, store, self._recoveries, busy=True)
        with self._lock:
            self._check_open()
            if task_id in self._tasks:
                raise errors.InvalidParameter(f"task {task_id} already exists", param="taskID")
            self._tasks[task_id] = task
            task.mark_queued()
        try:
            self._executor.dispatch(lambda: task.run(work))
        except errors.VirtHostError:
            with self._lock:
                self._tasks.pop(task_id, None)
            raise
        log.info("Task %s (%s) scheduled", task_id, verb)
        return task_id

    def _check_open(self) -> None:
        """Called with the lock held."""
        if self._closed:
            raise errors.ResourceUnavailable("the task manager is shut down")

    def _get(self, task_id: str) -> Task:
        task_id = validate.uuid(task_id, "taskID")
        with self._lock:
            task = self._tasks.get(task_id)
        if task is None:
            raise se.UnknownTask(task_id)
        return task

    def _select(self, tag: str | None) -> list[Task]:
        with self._lock:
            tasks = list(self._tasks.values())
        return [task for task in tasks if tag is None or task.tag == tag]

    # --- reports --------------------------------------------------------------------------

    def status(self, task_id: str) -> TaskStatus:
        return self._get(task_id).status()

    def info(self, task_id: str) -> TaskInfo:
        return self._get(task_id).info()

    def details(self, task_id: str) -> TaskDetails:
        return self._get(task_id).details()

    def all_statuses(self, tag: str | None = None) -> dict[str, TaskStatus]:
        return {task.task_id: task.status() for task in self._select(tag)}

    def all_info(self, tag: str | None = None) -> dict[str, TaskInfo]:
        return {task.task_id: task.info() for task in self._select(tag)}

    def all_details(self, tag: str | None = None) -> dict[str, TaskDetails]:
        return {task.task_id: task.details() for task in self._select(tag)}

    def unfinished(self, tag: str | None = None) -> list[str]:
        """Tasks still running or rolling back: spmStop must refuse (653) while any exist."""
        return sorted(task.task_id for task in self._select(tag) if not task.finished)

    def wait(self, task_id: str, timeout: float | None) -> TaskStatus:
        """The status once the task has ended and nothing runs for it, or after ``timeout``."""
        task = self._get(task_id)
        task.wait(timeout)
        return task.status()

    # --- engine operations ----------------------------------------------------------------

    def stop(self, task_id: str) -> None:
        """Ask the work to stop; it is then rolled back. Ignored for a task that has ended."""
        task = self._get(task_id)
        if task.request_stop():
            log.info("Task %s: stop requested", task.task_id)
        else:
            log.info("Task %s: not stopped, it is %s", task.task_id, task.record.state)

    def revert(self, task_id: str) -> None:
        """Roll back a task that finished successfully (403 before it ends, 410 if rolled back).

        The rollback runs on the pool; the task shows "cleaning" and then cleanSuccess or
        cleanFailure.
        """
        task = self._get(task_id)
        task.begin_revert()
        try:
            self._executor.dispatch(task.revert)
        except errors.VirtHostError:
            task.cancel_busy()
            raise
        log.info("Task %s: revert started", task.task_id)

    def clear(self, task_id: str) -> None:
        """Forget a task that has ended, on disk too (403 TaskNotFinished otherwise)."""
        task = self._get(task_id)
        task.clear()
        with self._lock:
            if self._tasks.get(task.task_id) is task:
                del self._tasks[task.task_id]
        log.info("Task %s cleared", task.task_id)

    # --- SPM role -------------------------------------------------------------------------

    def load(self, store: TaskStore, tag: str = "") -> list[str]:
        """Bring back the tasks persisted in ``store``; returns their ids.

        Tasks that had ended show as they ended. The others are rolled back on the pool from
        the steps on disk, in reverse order, and end recovered or failed. Tasks already known
        here are left alone; unreadable ones are logged and left on disk. ``tag`` (the pool)
        replaces the saved tag when given.
        """
        loaded = []
        for record in store.load_all():
            if tag:
                record = replace(record, tag=tag)
            unfinished = not record.state.done
            task = Task(record, store, self._recoveries, busy=unfinished)
            with self._lock:
                self._check_open()
                if record.task_id in self._tasks:
                    log.warning("Task %s is already known; not loaded again", record.task_id)
                    continue
                self._tasks[record.task_id] = task
            loaded.append(record.task_id)
            if unfinished:
                log.info(
                    "Task %s (%s) was %s: rolling back", task.task_id, record.verb, record.state
                )
                try:
                    self._executor.dispatch(task.resume)
                except errors.VirtHostError:
                    log.warning("Task %s: the pool is full, rolling back here", task.task_id)
                    task.resume()
            else:
                log.info("Task %s (%s) loaded as %s", task.task_id, record.verb, record.state)
        return loaded

    def forget(self, tag: str) -> None:
        """Drop the tasks of ``tag`` from memory (the SPM role was given up); disk is kept.

        Unfinished ones are asked to stop first: their work must not go on unseen.
        """
        with self._lock:
            dropped = [task for task in self._tasks.values() if task.tag == tag]
            for task in dropped:
                del self._tasks[task.task_id]
        for task in dropped:
            if not task.finished:
                log.warning("Task %s forgotten while unfinished; stop requested", task.task_id)
                task.request_stop()

    def shutdown(self, timeout: float) -> None:
        """Stop every task and wait up to ``timeout`` s for them to end; take no new ones.

        Persistent tasks still unfinished at the deadline are rolled back by the next load.
        """
        with self._lock:
            self._closed = True
            tasks = list(self._tasks.values())
        for task in tasks:
            task.request_stop()
        deadline = time.monotonic() + timeout
        for task in tasks:
            if not task.wait(max(deadline - time.monotonic(), 0.0)):
                log.warning("Task %s still %s at shutdown", task.task_id, task.record.state)
        if self._own_executor:
            self._executor.stop(wait=False)
        if self._scheduler is not None:
            self._scheduler.stop()
