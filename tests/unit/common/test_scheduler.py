from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest

from virthost.common.scheduler import Scheduler


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def scheduler() -> Iterator[Scheduler]:
    sched = Scheduler("test-sched")
    sched.start()
    yield sched
    sched.stop()


def test_runs_call_after_delay(scheduler: Scheduler) -> None:
    ran = threading.Event()
    scheduler.schedule(0.01, ran.set)
    assert ran.wait(2)


def test_call_runs_on_the_named_scheduler_thread(scheduler: Scheduler) -> None:
    names: list[str] = []
    ran = threading.Event()

    def record() -> None:
        names.append(threading.current_thread().name)
        ran.set()

    scheduler.schedule(0, record)
    assert ran.wait(2)
    assert names == ["test-sched"]


def test_default_thread_name() -> None:
    sched = Scheduler()
    sched.start()
    try:
        assert "scheduler" in [t.name for t in threading.enumerate()]
    finally:
        sched.stop()


def test_deadline_comes_from_injected_clock() -> None:
    clock = FakeClock()
    sched = Scheduler(clock=clock)
    call = sched.schedule(5.0, lambda: None)
    assert call.deadline == 1005.0
    assert call.func is not None


def test_due_calls_run_in_deadline_order() -> None:
    clock = FakeClock()
    sched = Scheduler(clock=clock)
    order: list[str] = []
    done = threading.Event()
    sched.schedule(3, lambda: order.append("c"))
    sched.schedule(1, lambda: order.append("a"))
    sched.schedule(2, lambda: order.append("b"))
    sched.schedule(4, done.set)
    clock.now += 10
    sched.start()
    try:
        assert done.wait(2)
        assert order == ["a", "b", "c"]
    finally:
        sched.stop()


def test_calls_not_yet_due_do_not_run() -> None:
    clock = FakeClock()
    sched = Scheduler(clock=clock)
    ran: list[str] = []
    done = threading.Event()
    sched.schedule(1, done.set)
    sched.schedule(100, lambda: ran.append("late"))
    clock.now += 1
    sched.start()
    try:
        assert done.wait(2)
        assert ran == []
    finally:
        sched.stop()


def test_cancelled_call_does_not_run() -> None:
    clock = FakeClock()
    sched = Scheduler(clock=clock)
    ran: list[str] = []
    done = threading.Event()
    call = sched.schedule(1, lambda: ran.append("cancelled"))
    sched.schedule(2, done.set)
    call.cancel()
    call.cancel()  # idempotent
    assert call.cancelled
    clock.now += 5
    sched.start()
    try:
        assert done.wait(2)
        assert ran == []
    finally:
        sched.stop()


def test_call_cancelled_by_an_earlier_call_in_the_same_batch_does_not_run() -> None:
    clock = FakeClock()
    sched = Scheduler(clock=clock)
    ran: list[str] = []
    done = threading.Event()
    second = sched.schedule(2, lambda: ran.append("second"))
    sched.schedule(1, second.cancel)
    sched.schedule(3, done.set)
    clock.now += 5  # all three are due at once
    sched.start()
    try:
        assert done.wait(2)
        assert ran == []
    finally:
        sched.stop()


def test_exception_is_logged_and_thread_survives(
    scheduler: Scheduler, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="virthost.scheduler")
    done = threading.Event()

    def boom() -> None:
        raise RuntimeError("boom")

    scheduler.schedule(0, boom)
    scheduler.schedule(0.01, done.set)
    assert done.wait(2)
    errors = [r for r in caplog.records if r.name == "virthost.scheduler"]
    assert len(errors) == 1
    assert errors[0].exc_info is not None
    assert "boom" in str(errors[0].exc_info[1])


def test_earlier_call_scheduled_later_wakes_thread(scheduler: Scheduler) -> None:
    late = scheduler.schedule(60, lambda: None)
    ran = threading.Event()
    scheduler.schedule(0.01, ran.set)
    assert ran.wait(2)
    late.cancel()


def test_stop_ends_thread_and_drops_pending_calls() -> None:
    sched = Scheduler("stop-test")
    sched.start()
    ran: list[str] = []
    sched.schedule(60, lambda: ran.append("x"))
    sched.stop()
    assert "stop-test" not in [t.name for t in threading.enumerate()]
    after = sched.schedule(0, lambda: ran.append("after"))
    assert after.cancelled
    assert ran == []


def test_start_twice_is_refused(scheduler: Scheduler) -> None:
    with pytest.raises(RuntimeError):
        scheduler.start()


def test_cancelled_entries_do_not_pile_up() -> None:
    # Executors arm and cancel a timeout per task; the heap must not keep them all.
    sched = Scheduler()
    for _ in range(1000):
        sched.schedule(60, lambda: None).cancel()
    assert len(sched._heap) < 200
    keep = sched.schedule(60, lambda: None)
    for _ in range(1000):
        sched.schedule(60, lambda: None).cancel()
    assert any(entry[2] is keep for entry in sched._heap)
