from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from virthost.common.executor import Executor, TooManyTasks
from virthost.common.periodic import PeriodicOperation
from virthost.common.scheduler import Scheduler


def wait_for(predicate: Callable[[], bool], timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()


class RecordingExecutor:
    """Takes dispatches without running them, or refuses them when ``full``."""

    name = "recording"

    def __init__(self, full: bool = False) -> None:
        self.full = full
        self.dispatched: list[tuple[Callable[[], object], float | None, bool]] = []
        self.attempts = 0

    def dispatch(
        self, func: Callable[[], object], timeout: float | None = None, discard: bool = True
    ) -> None:
        self.attempts += 1
        if self.full:
            raise TooManyTasks("full")
        self.dispatched.append((func, timeout, discard))


@pytest.fixture
def scheduler() -> Iterator[Scheduler]:
    sched = Scheduler("periodic-test-sched")
    sched.start()
    yield sched
    sched.stop()


@pytest.fixture
def executor(scheduler: Scheduler) -> Iterator[Executor]:
    pool = Executor("periodic-test", 4, 20, scheduler)
    pool.start()
    yield pool
    pool.stop(wait=False)


@pytest.fixture
def release() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


def test_runs_repeatedly(scheduler: Scheduler, executor: Executor) -> None:
    runs: list[str] = []
    op = PeriodicOperation("count", lambda: runs.append(""), 0.01, scheduler, executor)
    op.start()
    assert wait_for(lambda: len(runs) >= 3)
    op.stop()


def test_runs_on_executor_workers(scheduler: Scheduler, executor: Executor) -> None:
    names: list[str] = []
    op = PeriodicOperation(
        "where", lambda: names.append(threading.current_thread().name), 10, scheduler, executor
    )
    op.start()
    assert wait_for(lambda: len(names) >= 1)
    op.stop()
    assert names[0].startswith("periodic-test/")


def test_dispatch_carries_timeout_and_discard(scheduler: Scheduler) -> None:
    fake = RecordingExecutor()
    default = PeriodicOperation("a", lambda: None, 4.0, scheduler, fake)  # type: ignore[arg-type]
    explicit = PeriodicOperation(
        "b",
        lambda: None,
        4.0,
        scheduler,
        fake,  # type: ignore[arg-type]
        timeout=1.5,
        discard=False,
    )
    default.start()
    explicit.start()
    assert wait_for(lambda: len(fake.dispatched) >= 2)
    default.stop()
    explicit.stop()
    assert sorted((t, d) for _, t, d in fake.dispatched[:2]) == [(1.5, False), (2.0, True)]


def test_first_delay_postpones_first_run(scheduler: Scheduler) -> None:
    fake = RecordingExecutor()
    op = PeriodicOperation(
        "later",
        lambda: None,
        0.01,
        scheduler,
        fake,  # type: ignore[arg-type]
        first_delay=60,
    )
    op.start()
    done = threading.Event()
    scheduler.schedule(0.1, done.set)
    assert done.wait(2)
    assert fake.attempts == 0
    op.stop()


def test_non_exclusive_runs_overlap(
    scheduler: Scheduler, executor: Executor, release: threading.Event
) -> None:
    started: list[str] = []

    def blocking() -> None:
        started.append("")
        release.wait(5)

    op = PeriodicOperation("overlap", blocking, 0.01, scheduler, executor, timeout=5)
    op.start()
    assert wait_for(lambda: len(started) >= 2)  # a second run began while the first blocks
    op.stop()


def test_exclusive_runs_never_overlap(
    scheduler: Scheduler, executor: Executor, release: threading.Event
) -> None:
    started: list[str] = []

    def blocking() -> None:
        started.append("")
        release.wait(5)

    op = PeriodicOperation(
        "exclusive", blocking, 0.01, scheduler, executor, timeout=5, exclusive=True
    )
    op.start()
    assert wait_for(lambda: len(started) == 1)
    done = threading.Event()
    scheduler.schedule(0.1, done.set)  # ten periods
    assert done.wait(2)
    assert len(started) == 1
    release.set()  # once the run completes, the next ones follow
    assert wait_for(lambda: len(started) >= 3)
    op.stop()


def test_full_queue_is_logged_once_and_op_keeps_ticking(
    scheduler: Scheduler, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="virthost.periodic")
    fake = RecordingExecutor(full=True)
    op = PeriodicOperation(
        "busy",
        lambda: None,
        0.005,
        scheduler,
        fake,  # type: ignore[arg-type]
        exclusive=True,
    )
    op.start()
    assert wait_for(lambda: fake.attempts >= 5)
    op.stop()
    warnings = [r for r in caplog.records if "queue is full" in r.getMessage()]
    assert len(warnings) == 1
    assert "busy" in warnings[0].getMessage()


def test_failures_are_logged_throttled_and_op_keeps_running(
    scheduler: Scheduler, executor: Executor, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    calls: list[str] = []

    def failing() -> None:
        calls.append("")
        raise OSError("device gone")

    op = PeriodicOperation("failing", failing, 0.005, scheduler, executor, exclusive=True)
    op.start()
    assert wait_for(lambda: len(calls) >= 4)
    op.stop()
    failures = [r for r in caplog.records if "failing" in r.getMessage()]
    assert len(failures) == 1
    assert failures[0].exc_info is not None


def test_no_runs_after_stop(scheduler: Scheduler) -> None:
    # One worker, so runs are serial; ticks queued behind the stopping run must be skipped.
    executor = Executor("serial", 1, 20, scheduler)
    executor.start()
    calls: list[str] = []
    holder: list[PeriodicOperation] = []

    def run() -> None:
        calls.append("")
        if len(calls) == 3:
            holder[0].stop()

    op = PeriodicOperation("stopping", run, 0.005, scheduler, executor)
    holder.append(op)
    op.start()
    assert wait_for(lambda: len(calls) >= 3)
    done = threading.Event()
    scheduler.schedule(0.1, done.set)  # twenty periods
    assert done.wait(2)
    drained = threading.Event()
    executor.dispatch(drained.set)
    assert drained.wait(2)
    assert len(calls) == 3
    executor.stop()


def test_run_already_queued_at_stop_is_skipped(scheduler: Scheduler) -> None:
    fake = RecordingExecutor()
    calls: list[str] = []
    op = PeriodicOperation(
        "queued",
        lambda: calls.append(""),
        60,
        scheduler,
        fake,  # type: ignore[arg-type]
    )
    op.start()
    assert wait_for(lambda: len(fake.dispatched) == 1)
    op.stop()
    queued_run = fake.dispatched[0][0]
    queued_run()  # a worker picks the task up only now
    assert calls == []


def test_stops_ticking_when_executor_stopped(scheduler: Scheduler) -> None:
    pool = Executor("stopped-pool", 1, 5, scheduler)
    pool.stop()
    op = PeriodicOperation("orphan", lambda: None, 0.005, scheduler, pool)
    op.start()
    assert wait_for(lambda: op._call is None)


def test_invalid_period_is_refused(scheduler: Scheduler, executor: Executor) -> None:
    with pytest.raises(ValueError):
        PeriodicOperation("bad", lambda: None, 0, scheduler, executor)
