"""A bounded thread pool whose stuck workers are discarded and replaced.

The daemon calls things that can block for minutes or forever: libvirt on a wedged domain, a file
on a hung NFS mount, a guest agent that stopped answering. Python cannot interrupt a thread, so a
plain pool slowly fills with stuck threads and then stops serving everybody. Following VDSM, each
task may carry a timeout, armed on the shared :class:`~virthost.common.scheduler.Scheduler` when a
worker *starts* it (time spent queued does not count). If the timeout expires first:

* ``discard=True``: the worker is *discarded*. A replacement is started at once so the pool keeps
  its size, and the stuck thread exits as soon as its call finally returns. Threads (serving plus
  stuck) never exceed ``max_workers``; at that bound no replacement is made and a warning is
  logged, and the pool heals later, when a discarded thread returns and exits.
* ``discard=False``: the worker is left alone, but "Worker blocked" is logged with the worker's
  current stack, once per timeout, so the log shows *where* it is stuck.

The task queue is bounded: a caller that overruns it gets :class:`TooManyTasks` immediately,
rather than queueing work that would be stale by the time it ran. Tasks are fire-and-forget; an
exception escaping a task is logged with its traceback and the worker carries on.

Stopping closes the queue: workers finish their current task and exit, tasks still queued are
dropped (running them could delay shutdown indefinitely), and :meth:`Executor.dispatch` raises
:class:`ExecutorStopped`.
"""

from __future__ import annotations

import itertools
import logging
import sys
import threading
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from virthost.common import errors
from virthost.common.scheduler import ScheduledCall, Scheduler

log = logging.getLogger("virthost.executor")


class TooManyTasks(errors.ResourceExhausted):
    """The executor's task queue is full."""


class ExecutorStopped(errors.VirtHostError):
    """The executor was stopped and takes no more tasks."""

    message = "Executor stopped"


@dataclass(frozen=True)
class _Task:
    func: Callable[[], object]
    timeout: float | None
    discard: bool


class _TaskQueue:
    """A bounded FIFO that refuses instead of blocking producers, and can be closed."""

    def __init__(self, max_tasks: int) -> None:
        self._max_tasks = max_tasks
        self._tasks: deque[_Task] = deque()
        self._cond = threading.Condition(threading.Lock())
        self._closed = False

    def __len__(self) -> int:
        return len(self._tasks)

    def put(self, task: _Task, executor_name: str) -> None:
        with self._cond:
            if self._closed:
                raise ExecutorStopped(f"executor {executor_name} is stopped")
            if len(self._tasks) >= self._max_tasks:
                raise TooManyTasks(
                    f"executor {executor_name} has {self._max_tasks} tasks queued",
                    executor=executor_name,
                )
            self._tasks.append(task)
            self._cond.notify()

    def get(self) -> _Task | None:
        """The next task, waiting for one; None once the queue is closed."""
        with self._cond:
            while not self._tasks and not self._closed:
                self._cond.wait()
            if self._closed:
                return None
            return self._tasks.popleft()

    def close(self) -> int:
        """Wake every waiting worker and drop queued tasks; returns how many were dropped."""
        with self._cond:
            self._closed = True
            dropped = len(self._tasks)
            self._tasks.clear()
            self._cond.notify_all()
            return dropped


class _Worker:
    """One pool thread. Its lock guards the task it is running, shared with the timeout call.

    Lock order: a worker's lock may be held while taking the executor's lock, never the reverse.
    """

    def __init__(self, executor: Executor, name: str) -> None:
        self._executor = executor
        self._lock = threading.Lock()
        self._task: _Task | None = None
        self._task_serial = 0
        self._timeout_call: ScheduledCall | None = None
        self.discarded = False
        self.thread = threading.Thread(target=self._serve, name=name, daemon=True)

    @property
    def name(self) -> str:
        return self.thread.name

    def _serve(self) -> None:
        try:
            while not self.discarded:
                task = self._executor._queue.get()
                if task is None:
                    return
                self._execute(task)
        finally:
            self._executor._worker_exited(self)

    def _execute(self, task: _Task) -> None:
        with self._lock:
            self._task = task
            self._task_serial += 1
            serial = self._task_serial
            if task.timeout is not None:
                self._arm_timeout(task.timeout, serial)
        try:
            task.func()
        except Exception:
            log.exception("Unhandled exception in task %r on worker %s", task.func, self.name)
        finally:
            with self._lock:
                self._task = None
                if self._timeout_call is not None:
                    self._timeout_call.cancel()
                    self._timeout_call = None

    def _arm_timeout(self, timeout: float, serial: int) -> None:
        """Called with the lock held."""
        scheduler = self._executor._scheduler
        self._timeout_call = scheduler.schedule(timeout, lambda: self._timed_out(serial))

    def _timed_out(self, serial: int) -> None:
        """Runs on the scheduler thread when the task numbered ``serial`` overran its timeout."""
        with self._lock:
            task = self._task
            if task is None or serial != self._task_serial or task.timeout is None:
                return  # that task finished just in time
            self._timeout_call = None
            if not task.discard:
                self._log_blocked(task)
                self._arm_timeout(task.timeout, serial)
                return
            log.warning(
                "Worker %s discarded: task %r exceeded its timeout of %s s",
                self.name,
                task.func,
                task.timeout,
            )
            # Still under our lock, so the thread cannot finish the task and exit before the
            # executor has moved it to its stuck workers.
            self.discarded = True
            self._executor._worker_discarded(self)

    def _log_blocked(self, task: _Task) -> None:
        frame = sys._current_frames().get(self.thread.ident or -1)
        stack = "".join(traceback.format_stack(frame)) if frame is not None else "(no stack)\n"
        log.warning(
            "Worker blocked: %s running %r longer than %s s, stack:\n%s",
            self.name,
            task.func,
            task.timeout,
            stack.rstrip("\n"),
        )


class Executor:
    """A fixed-size pool of discardable worker threads fed by a bounded queue."""

    def __init__(
        self,
        name: str,
        workers: int,
        max_tasks: int,
        scheduler: Scheduler,
        max_workers: int | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        if max_tasks < 1:
            raise ValueError(f"max_tasks must be at least 1, got {max_tasks}")
        if max_workers is not None and max_workers < workers:
            raise ValueError(f"max_workers ({max_workers}) is less than workers ({workers})")
        self._name = name
        self._target_workers = workers
        self._max_workers = max_workers
        self._scheduler = scheduler
        self._queue = _TaskQueue(max_tasks)
        self._lock = threading.Lock()
        self._serving: set[_Worker] = set()
        self._stuck: set[_Worker] = set()  # discarded but still inside their task
        self._worker_numbers = itertools.count(1)
        self._discarded_total = 0
        self._started = False
        self._stopped = False

    @property
    def name(self) -> str:
        return self._name

    @property
    def worker_count(self) -> int:
        """Workers serving the queue (discarded ones not counted)."""
        with self._lock:
            return len(self._serving)

    @property
    def thread_count(self) -> int:
        """All live pool threads: serving workers plus discarded ones still stuck in a task."""
        with self._lock:
            return len(self._serving) + len(self._stuck)

    @property
    def queue_size(self) -> int:
        return len(self._queue)

    @property
    def discarded_count(self) -> int:
        """How many workers were discarded since the executor was created."""
        with self._lock:
            return self._discarded_total

    def start(self) -> None:
        with self._lock:
            if self._started:
                raise RuntimeError(f"executor {self._name} already started")
            self._started = True
            for _ in range(self._target_workers):
                self._add_worker()
        log.debug("Executor %s started with %d workers", self._name, self._target_workers)

    def stop(self, wait: bool = True) -> None:
        """Stop taking tasks; with ``wait``, join the serving workers (not the stuck ones)."""
        with self._lock:
            self._stopped = True
            workers = list(self._serving)
        dropped = self._queue.close()
        if dropped:
            log.info("Executor %s stopped with %d queued tasks dropped", self._name, dropped)
        if wait:
            current = threading.current_thread()
            for worker in workers:
                if worker.thread is not current:
                    worker.thread.join()
        log.debug("Executor %s stopped", self._name)

    def dispatch(
        self, func: Callable[[], object], timeout: float | None = None, discard: bool = True
    ) -> None:
        """Queue ``func``; raises TooManyTasks when the queue is full, ExecutorStopped after stop.

        ``timeout`` counts from when a worker starts the call; None means no timeout.
        """
        if timeout is not None and timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        self._queue.put(_Task(func, timeout, discard), self._name)

    def _add_worker(self) -> None:
        """Start one worker; called with the lock held."""
        worker = _Worker(self, f"{self._name}/{next(self._worker_numbers)}")
        try:
            worker.thread.start()
        except RuntimeError:
            log.exception("Executor %s could not start worker %s", self._name, worker.name)
            return
        self._serving.add(worker)

    def _worker_discarded(self, worker: _Worker) -> None:
        with self._lock:
            self._serving.discard(worker)
            self._stuck.add(worker)
            self._discarded_total += 1
            if self._stopped:
                return
            threads = len(self._serving) + len(self._stuck)
            if self._max_workers is not None and threads >= self._max_workers:
                log.warning(
                    "Executor %s has %d threads (limit %d): not replacing discarded worker %s",
                    self._name,
                    threads,
                    self._max_workers,
                    worker.name,
                )
                return
            self._add_worker()

    def _worker_exited(self, worker: _Worker) -> None:
        with self._lock:
            self._serving.discard(worker)
            if worker in self._stuck:
                self._stuck.discard(worker)
                log.info("Discarded worker %s returned and exited", worker.name)
            # Heal a pool that could not replace discarded workers while at its thread limit.
            if not self._stopped and len(self._serving) < self._target_workers:
                self._add_worker()
