"""Periodic operations: the scheduler says when, the executor does the work.

Sampling and monitoring (VM stats, watermarks, host stats) run every few seconds. Giving each its
own thread would cost a thread per operation and leave nothing to stop a blocked call from wedging
its operation forever. Instead, as in VDSM, each tick is a quick scheduler callback that only
*dispatches* the operation into a shared executor, whose timeouts discard stuck workers.

Two rescheduling policies:

* non-exclusive (default): the next tick is scheduled right after dispatch, so the operation keeps
  its rhythm even when one run is slow; runs may overlap, so the function must tolerate that.
* exclusive: the next tick is scheduled only when the run has finished, so runs never overlap;
  a run that blocks postpones the next one until it returns.

A full executor queue (:class:`~virthost.common.executor.TooManyTasks`) skips that tick but keeps
the operation ticking; it means the host is overloaded, so it is logged at most once a minute per
operation (with the number of skipped ticks) instead of flooding the log. Exceptions raised by the
function are throttled the same way, with the traceback of the first one reported.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from virthost.common.executor import Executor, ExecutorStopped, TooManyTasks
from virthost.common.scheduler import ScheduledCall, Scheduler

log = logging.getLogger("virthost.periodic")

LOG_THROTTLE_SECONDS = 60.0


class _ThrottledCounter:
    """Says whether an event may be logged now, and counts the ones suppressed meanwhile."""

    def __init__(self, interval: float, clock: Callable[[], float]) -> None:
        self._interval = interval
        self._clock = clock
        self._last_logged: float | None = None
        self._suppressed = 0
        self._lock = threading.Lock()

    def should_log(self) -> tuple[bool, int]:
        """(log now?, events suppressed since the last logged one)."""
        with self._lock:
            now = self._clock()
            if self._last_logged is not None and now - self._last_logged < self._interval:
                self._suppressed += 1
                return False, 0
            suppressed, self._suppressed = self._suppressed, 0
            self._last_logged = now
            return True, suppressed


class PeriodicOperation:
    """Runs ``func`` every ``period`` seconds in ``executor``, timed by ``scheduler``."""

    def __init__(
        self,
        name: str,
        func: Callable[[], None],
        period: float,
        scheduler: Scheduler,
        executor: Executor,
        timeout: float | None = None,
        exclusive: bool = False,
        discard: bool = True,
        first_delay: float = 0.0,
    ) -> None:
        if period <= 0:
            raise ValueError(f"period must be positive, got {period}")
        self._name = name
        self._func = func
        self._period = period
        self._scheduler = scheduler
        self._executor = executor
        self._timeout = period / 2 if timeout is None else timeout
        self._exclusive = exclusive
        self._discard = discard
        self._first_delay = first_delay
        self._lock = threading.Lock()
        self._call: ScheduledCall | None = None
        self._started = False
        self._stopped = False
        self._queue_full_log = _ThrottledCounter(LOG_THROTTLE_SECONDS, time.monotonic)
        self._failure_log = _ThrottledCounter(LOG_THROTTLE_SECONDS, time.monotonic)

    @property
    def name(self) -> str:
        return self._name

    @property
    def period(self) -> float:
        return self._period

    def start(self) -> None:
        with self._lock:
            if self._started:
                raise RuntimeError(f"periodic operation {self._name} already started")
            self._started = True
            self._call = self._scheduler.schedule(self._first_delay, self._tick)

    def stop(self) -> None:
        """No further ticks; a run already executing finishes, queued ones are skipped."""
        with self._lock:
            self._stopped = True
            if self._call is not None:
                self._call.cancel()
                self._call = None

    def _reschedule(self) -> None:
        with self._lock:
            if not self._stopped:
                self._call = self._scheduler.schedule(self._period, self._tick)

    def _tick(self) -> None:
        """On the scheduler thread: hand one run to the executor."""
        if self._stopped:
            return
        try:
            self._executor.dispatch(self._run, self._timeout, self._discard)
        except TooManyTasks:
            self._report_queue_full()
            self._reschedule()  # nothing is running for us, so exclusive ops reschedule too
            return
        except ExecutorStopped:
            log.debug("Periodic operation %s stops: executor stopped", self._name)
            self.stop()
            return
        if not self._exclusive:
            self._reschedule()

    def _run(self) -> None:
        """On an executor worker: one run of the operation."""
        try:
            if not self._stopped:
                self._func()
        except Exception:
            self._report_failure()
        finally:
            if self._exclusive:
                self._reschedule()

    def _report_queue_full(self) -> None:
        should_log, suppressed = self._queue_full_log.should_log()
        if should_log:
            log.warning(
                "Periodic operation %s skipped: executor %s queue is full "
                "(%d more skips since the last report)",
                self._name,
                self._executor.name,
                suppressed,
            )

    def _report_failure(self) -> None:
        should_log, suppressed = self._failure_log.should_log()
        if should_log:
            log.exception(
                "Periodic operation %s failed (%d more failures since the last report)",
                self._name,
                suppressed,
            )
