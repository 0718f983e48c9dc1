"""Helpers for job tests: an event log to wait on, gated work, and a scheduler tests move."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from virthost.common.scheduler import ScheduledCall, Scheduler
from virthost.rpc.events import Event, EventBus
from virthost.storage.jobs import JobContext

WAIT = 10.0  # generous upper bound for a thread to get somewhere; never a timing assertion


class EventLog:
    """Collects the bus's events and lets a test wait for a given job status."""

    def __init__(self, bus: EventBus) -> None:
        self._cond = threading.Condition()
        self.events: list[Event] = []
        bus.add_listener(self._on_event)

    def _on_event(self, event: Event) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def statuses(self, job_id: str) -> list[str]:
        with self._cond:
            return [e.params[job_id]["status"] for e in self.events if job_id in e.params]

    def for_job(self, job_id: str) -> list[Event]:
        with self._cond:
            return [e for e in self.events if job_id in e.params]

    def wait_for(self, job_id: str, status: str) -> None:
        with self._cond:
            reached = self._cond.wait_for(lambda: status in self._statuses_locked(job_id), WAIT)
        assert reached, f"job {job_id} never reached {status}: {self.statuses(job_id)}"

    def _statuses_locked(self, job_id: str) -> list[str]:
        return [e.params[job_id]["status"] for e in self.events if job_id in e.params]


class Gate:
    """Work that tells when it started and waits for the test to let it finish."""

    def __init__(self, result: BaseException | None = None) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.result = result
        self.calls = 0
        self.thread: threading.Thread | None = None

    def __call__(self, ctx: JobContext) -> None:
        self.calls += 1
        self.thread = threading.current_thread()
        self.started.set()
        assert self.release.wait(WAIT), "the test never released the work"
        if self.result is not None:
            raise self.result

    def wait_started(self) -> None:
        assert self.started.wait(WAIT), "the work never started"


def abort_aware(started: threading.Event) -> Any:
    """Work that waits for an abort, then unwinds through check_aborted."""

    def work(ctx: JobContext) -> None:
        started.set()
        ctx.wait_for_abort(WAIT)
        ctx.check_aborted()

    return work


class FakeClock:
    """A monotonic clock the test advances by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class ClockedScheduler(Scheduler):
    """A scheduler on a clock the test moves: :meth:`advance` runs what fell due, in order.

    Due calls run on the test's thread, so a test knows they have run when ``advance``
    returns. The thread of the real scheduler is never started.
    """

    def __init__(self) -> None:
        self.clock = FakeClock()
        super().__init__("jobs-test-sched", clock=self.clock)
        self._lock = threading.Lock()
        self._calls: list[ScheduledCall] = []

    def schedule(self, delay: float, func: Callable[[], None]) -> ScheduledCall:
        call = ScheduledCall(self.clock() + max(delay, 0.0), func)
        with self._lock:
            self._calls.append(call)
        return call

    def advance(self, seconds: float) -> None:
        self.clock.now += seconds
        with self._lock:
            due = sorted(
                (c for c in self._calls if c.deadline <= self.clock.now), key=lambda c: c.deadline
            )
            self._calls = [c for c in self._calls if c not in due]
        for call in due:
            if not call.cancelled:
                call.func()
