from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from virthost.common import errors
from virthost.common.executor import Executor, ExecutorStopped, TooManyTasks
from virthost.common.scheduler import Scheduler


def wait_for(predicate: Callable[[], bool], timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()


@pytest.fixture
def scheduler() -> Iterator[Scheduler]:
    sched = Scheduler("exec-test-sched")
    sched.start()
    yield sched
    sched.stop()


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """Set at teardown so no blocked task outlives its test."""
    event = threading.Event()
    yield event
    event.set()


def make_executor(
    scheduler: Scheduler, workers: int = 2, max_tasks: int = 10, max_workers: int | None = None
) -> Executor:
    return Executor("test", workers, max_tasks, scheduler, max_workers=max_workers)


def scheduler_passed(scheduler: Scheduler, delay: float) -> None:
    """Return once the scheduler has handled everything due within ``delay`` from now."""
    done = threading.Event()
    scheduler.schedule(delay, done.set)
    assert done.wait(2)


def test_runs_tasks_on_named_workers(scheduler: Scheduler) -> None:
    executor = make_executor(scheduler)
    executor.start()
    names: list[str] = []
    done = threading.Event()

    def task() -> None:
        names.append(threading.current_thread().name)
        done.set()

    executor.dispatch(task)
    assert done.wait(2)
    assert names[0] in ("test/1", "test/2")
    assert executor.worker_count == 2
    executor.stop()


def test_queue_full_raises_too_many_tasks(scheduler: Scheduler) -> None:
    executor = make_executor(scheduler, max_tasks=2)  # not started: nothing consumes
    executor.dispatch(lambda: None)
    executor.dispatch(lambda: None)
    assert executor.queue_size == 2
    with pytest.raises(TooManyTasks) as info:
        executor.dispatch(lambda: None)
    assert isinstance(info.value, errors.ResourceExhausted)
    assert info.value.code == 1100


def test_dispatch_after_stop_raises(scheduler: Scheduler) -> None:
    executor = make_executor(scheduler)
    executor.start()
    executor.stop()
    with pytest.raises(ExecutorStopped) as info:
        executor.dispatch(lambda: None)
    assert isinstance(info.value, errors.VirtHostError)


def test_stop_joins_workers_and_drops_queued_tasks(scheduler: Scheduler) -> None:
    executor = make_executor(scheduler, workers=1)
    started = threading.Event()
    finish = threading.Event()
    ran: list[str] = []

    def first() -> None:
        started.set()
        finish.wait(2)
        ran.append("first")

    executor.start()
    executor.dispatch(first)
    assert started.wait(2)
    executor.dispatch(lambda: ran.append("queued"))
    threading.Timer(0.02, finish.set).start()
    executor.stop(wait=True)
    assert ran == ["first"]
    assert not [t for t in threading.enumerate() if t.name.startswith("test/")]


def test_task_exception_is_logged_and_worker_survives(
    scheduler: Scheduler, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="virthost.executor")
    executor = make_executor(scheduler, workers=1)
    executor.start()
    done = threading.Event()

    def boom() -> None:
        raise ValueError("boom")

    executor.dispatch(boom)
    executor.dispatch(done.set)
    assert done.wait(2)
    records = [r for r in caplog.records if r.name == "virthost.executor"]
    assert len(records) == 1
    assert records[0].exc_info is not None
    assert executor.worker_count == 1
    executor.stop()


def test_stuck_worker_is_discarded_and_replaced(
    scheduler: Scheduler, release: threading.Event
) -> None:
    executor = make_executor(scheduler, workers=1, max_workers=3)
    executor.start()
    stuck_threads: list[threading.Thread] = []

    def stuck() -> None:
        stuck_threads.append(threading.current_thread())
        release.wait(5)

    executor.dispatch(stuck, timeout=0.05)
    assert wait_for(lambda: executor.discarded_count == 1)

    served_by: list[str] = []
    done = threading.Event()

    def next_task() -> None:
        served_by.append(threading.current_thread().name)
        done.set()

    executor.dispatch(next_task)
    assert done.wait(2)  # served while the first worker is still stuck
    assert served_by == ["test/2"]
    assert executor.worker_count == 1
    assert executor.thread_count == 2

    release.set()
    stuck_threads[0].join(2)
    assert not stuck_threads[0].is_alive()  # the discarded thread exits after its call
    assert wait_for(lambda: executor.thread_count == 1)
    assert executor.worker_count == 1
    executor.stop()


def test_max_workers_bounds_replacements_and_pool_heals(
    scheduler: Scheduler, release: threading.Event, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="virthost.executor")
    executor = make_executor(scheduler, workers=1, max_workers=1)
    executor.start()
    executor.dispatch(lambda: release.wait(5), timeout=0.05)
    assert wait_for(lambda: executor.discarded_count == 1)
    assert executor.worker_count == 0
    assert any("not replacing" in r.getMessage() for r in caplog.records)

    done = threading.Event()
    executor.dispatch(done.set)
    assert not done.wait(0.05)
    assert executor.queue_size == 1

    release.set()  # the discarded thread exits, a new worker takes over
    assert done.wait(2)
    assert executor.worker_count == 1
    executor.stop()


def test_timeout_counts_from_task_start_and_is_cancelled_on_completion(
    scheduler: Scheduler,
) -> None:
    executor = make_executor(scheduler, workers=1)
    executor.start()
    done = threading.Event()
    executor.dispatch(done.set, timeout=0.05)
    assert done.wait(2)
    scheduler_passed(scheduler, 0.1)  # the timeout would have fired by now
    assert executor.discarded_count == 0
    assert executor.worker_count == 1
    executor.stop()


def test_blocked_worker_without_discard_is_reported_with_stack(
    scheduler: Scheduler, release: threading.Event, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="virthost.executor")
    executor = make_executor(scheduler, workers=1)
    executor.start()

    def slow_storage_call() -> None:
        release.wait(5)

    executor.dispatch(slow_storage_call, timeout=0.03, discard=False)

    def blocked_reports() -> list[str]:
        return [r.getMessage() for r in caplog.records if "Worker blocked" in r.getMessage()]

    assert wait_for(lambda: len(blocked_reports()) >= 2)  # repeated every timeout
    assert "slow_storage_call" in blocked_reports()[0].split("stack:")[1]
    assert executor.discarded_count == 0
    assert executor.worker_count == 1
    release.set()
    executor.stop()


def test_invalid_configuration_is_refused(scheduler: Scheduler) -> None:
    with pytest.raises(ValueError):
        Executor("bad", workers=0, max_tasks=1, scheduler=scheduler)
    with pytest.raises(ValueError):
        Executor("bad", workers=4, max_tasks=1, scheduler=scheduler, max_workers=2)
    executor = make_executor(scheduler)
    with pytest.raises(ValueError):
        executor.dispatch(lambda: None, timeout=0)
