"""JobRegistry: jobs run in the background, report status events, abort, delete, autodelete."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable

import pytest

from virthost.common import errors
from virthost.common.executor import ExecutorStopped
from virthost.rpc.events import EventBus
from virthost.storage.jobs import Job, JobContext, JobRegistry, JobStatus

from .support import WAIT, ClockedScheduler, EventLog, Gate, abort_aware


def new_id() -> str:
    return str(uuid.uuid4())


def start(
    registry: JobRegistry, work: Callable[[JobContext], None], abortable: bool = False
) -> str:
    job_id = new_id()
    registry.add_and_start(Job(job_id, "test_work", work, abortable=abortable))
    return job_id


# --- running and reporting -------------------------------------------------------------------


def test_job_runs_on_a_worker_and_reports_each_status_once_in_order(
    registry: JobRegistry, event_log: EventLog
) -> None:
    gate = Gate()
    job_id = start(registry, gate)
    gate.wait_started()
    assert registry.get_jobs()[job_id]["status"] == "running"
    gate.release.set()
    event_log.wait_for(job_id, "done")

    assert gate.thread is not threading.current_thread()
    assert gate.calls == 1
    assert event_log.statuses(job_id) == ["running", "done"]
    done = event_log.for_job(job_id)[-1]
    assert done.name == f"|jobs|status|{job_id}"
    assert done.params[job_id] == {
        "id": job_id,
        "status": "done",
        "description": "test_work",
        "job_type": "storage",
    }
    assert isinstance(done.params["notify_time"], int)


def test_get_jobs_reports_progress_without_sending_events(
    registry: JobRegistry, event_log: EventLog
) -> None:
    reported = threading.Event()
    release = threading.Event()

    def work(ctx: JobContext) -> None:
        ctx.set_progress(42.5)
        reported.set()
        release.wait(WAIT)

    job_id = start(registry, work)
    assert reported.wait(WAIT)
    assert registry.get_jobs()[job_id]["progress"] == 42.5
    assert event_log.statuses(job_id) == ["running"]
    release.set()
    event_log.wait_for(job_id, "done")
    assert registry.get_jobs()[job_id]["progress"] == 42.5


def test_a_pending_job_has_no_progress_key(make_registry: Callable[..., JobRegistry]) -> None:
    registry = make_registry(workers=1)
    blocker = Gate()
    start(registry, blocker)
    blocker.wait_started()
    job_id = start(registry, Gate())
    info = registry.get_jobs()[job_id]
    assert info["status"] == "pending"
    assert "progress" not in info and "error" not in info
    blocker.release.set()


def test_a_failing_job_reports_the_error_code_and_message(
    registry: JobRegistry, event_log: EventLog
) -> None:
    job_id = start(registry, lambda ctx: _raise(errors.InvalidParameter("bad generation")))
    event_log.wait_for(job_id, "failed")
    info = registry.get_jobs()[job_id]
    assert info["error"] == {"code": 91, "message": "Invalid parameter: bad generation"}
    assert event_log.for_job(job_id)[-1].params[job_id]["error"]["code"] == 91
    assert event_log.statuses(job_id) == ["running", "failed"]


def _raise(exc: Exception) -> None:
    raise exc


def test_an_unexpected_exception_fails_the_job_with_code_16(
    registry: JobRegistry, event_log: EventLog
) -> None:
    def work(ctx: JobContext) -> None:
        raise ValueError("secret internals")

    job_id = start(registry, work)
    event_log.wait_for(job_id, "failed")
    assert registry.get_jobs()[job_id]["error"] == {
        "code": 16,
        "message": "Unexpected exception",
    }


# --- ids -----------------------------------------------------------------------------------


def test_a_known_job_id_is_refused_with_job_exists(
    registry: JobRegistry, event_log: EventLog
) -> None:
    gate = Gate()
    job_id = start(registry, gate)
    second = Gate()
    with pytest.raises(errors.JobExists) as running:
        registry.add_and_start(Job(job_id, "again", second))
    gate.release.set()
    event_log.wait_for(job_id, "done")
    with pytest.raises(errors.JobExists) as finished:
        registry.add_and_start(Job(job_id.upper(), "again", second))
    assert running.value.code == finished.value.code == 69
    assert second.calls == 0


def test_unknown_job_ids_raise_no_such_job(registry: JobRegistry) -> None:
    unknown = new_id()
    for call in (registry.get, registry.abort, registry.delete):
        with pytest.raises(errors.NoSuchJob) as exc:
            call(unknown)
        assert exc.value.code == 66


def test_job_ids_are_validated(registry: JobRegistry) -> None:
    with pytest.raises(errors.InvalidParameter):
        registry.get("../etc")
    with pytest.raises(errors.InvalidParameter):
        registry.get_jobs(job_ids=["not-a-uuid"])
    with pytest.raises(errors.InvalidParameter):
        Job("not-a-uuid", "x", Gate())


def test_get_jobs_filters_by_ids_and_type(registry: JobRegistry, event_log: EventLog) -> None:
    first, second = start(registry, lambda ctx: None), start(registry, lambda ctx: None)
    event_log.wait_for(first, "done")
    event_log.wait_for(second, "done")
    assert set(registry.get_jobs()) == {first, second}
    assert set(registry.get_jobs(job_ids=[first.upper(), new_id()])) == {first}
    assert set(registry.get_jobs(job_ids=[])) == {first, second}
    assert set(registry.get_jobs(job_type="storage")) == {first, second}
    assert registry.get_jobs(job_type="virt") == {}


def test_the_same_job_object_cannot_be_added_twice(registry: JobRegistry) -> None:
    job = Job(new_id(), "once", lambda ctx: None)
    registry.add_and_start(job)
    with pytest.raises(ValueError):
        registry.add_and_start(job)


# --- abort ---------------------------------------------------------------------------------


def test_aborting_a_running_job_that_checks_ends_aborted(
    registry: JobRegistry, event_log: EventLog
) -> None:
    started = threading.Event()
    job_id = start(registry, abort_aware(started), abortable=True)
    assert started.wait(WAIT)
    registry.abort(job_id)
    event_log.wait_for(job_id, "aborted")
    assert event_log.statuses(job_id) == ["running", "aborting", "aborted"]
    assert "error" not in registry.get_jobs()[job_id]


def test_aborting_again_while_aborting_changes_nothing(
    registry: JobRegistry, event_log: EventLog
) -> None:
    started, finish = threading.Event(), threading.Event()

    def work(ctx: JobContext) -> None:
        started.set()
        finish.wait(WAIT)
        ctx.check_aborted()

    job_id = start(registry, work, abortable=True)
    assert started.wait(WAIT)
    registry.abort(job_id)
    registry.abort(job_id)
    finish.set()
    event_log.wait_for(job_id, "aborted")
    assert event_log.statuses(job_id) == ["running", "aborting", "aborted"]


def test_work_that_completes_despite_an_abort_is_done(
    registry: JobRegistry, event_log: EventLog
) -> None:
    started = threading.Event()

    def work(ctx: JobContext) -> None:
        started.set()
        ctx.wait_for_abort(WAIT)

    job_id = start(registry, work, abortable=True)
    assert started.wait(WAIT)
    registry.abort(job_id)
    event_log.wait_for(job_id, "done")
    assert event_log.statuses(job_id) == ["running", "aborting", "done"]


def test_a_running_job_that_cannot_abort_refuses_with_80_and_carries_on(
    registry: JobRegistry, event_log: EventLog
) -> None:
    gate = Gate()
    job_id = start(registry, gate)
    gate.wait_started()
    with pytest.raises(errors.AbortNotSupported) as exc:
        registry.abort(job_id)
    assert exc.value.code == 80
    gate.release.set()
    event_log.wait_for(job_id, "done")
    assert event_log.statuses(job_id) == ["running", "done"]


def test_a_pending_job_aborts_at_once_and_never_runs(
    make_registry: Callable[..., JobRegistry], event_log: EventLog
) -> None:
    registry = make_registry(workers=1)
    blocker, queued, after = Gate(), Gate(), Gate()
    blocker_id = start(registry, blocker)
    blocker.wait_started()
    queued_id = start(registry, queued)
    after_id = start(registry, after)
    registry.abort(queued_id)
    assert registry.get_jobs()[queued_id]["status"] == "aborted"
    blocker.release.set()
    after.release.set()
    event_log.wait_for(after_id, "done")  # the worker went past the aborted job
    event_log.wait_for(blocker_id, "done")
    assert queued.calls == 0
    assert event_log.statuses(queued_id) == ["aborted"]


def test_aborting_a_finished_job_raises_job_not_active(
    registry: JobRegistry, event_log: EventLog
) -> None:
    job_id = start(registry, lambda ctx: None)
    event_log.wait_for(job_id, "done")
    with pytest.raises(errors.JobNotActive):
        registry.abort(job_id)


def test_abort_callbacks_run_once_even_when_registered_late(
    registry: JobRegistry, event_log: EventLog
) -> None:
    calls: list[str] = []
    started, go_on = threading.Event(), threading.Event()

    def work(ctx: JobContext) -> None:
        ctx.on_abort(lambda: calls.append("early"))
        started.set()
        go_on.wait(WAIT)
        ctx.on_abort(lambda: calls.append("late"))
        ctx.check_aborted()

    job_id = start(registry, work, abortable=True)
    assert started.wait(WAIT)
    registry.abort(job_id)
    assert calls == ["early"]
    go_on.set()
    event_log.wait_for(job_id, "aborted")
    assert calls == ["early", "late"]


# --- delete and autodelete ---------------------------------------------------------------------


def test_deleting_an_active_job_raises_job_not_done(
    registry: JobRegistry, event_log: EventLog
) -> None:
    gate = Gate()
    job_id = start(registry, gate)
    gate.wait_started()
    with pytest.raises(errors.JobNotDone) as exc:
        registry.delete(job_id)
    assert exc.value.code == 68
    gate.release.set()
    event_log.wait_for(job_id, "done")
    registry.delete(job_id)
    assert registry.get_jobs() == {}
    with pytest.raises(errors.NoSuchJob):
        registry.delete(job_id)


def test_finished_jobs_are_deleted_after_the_autodelete_delay(
    make_registry: Callable[..., JobRegistry], event_log: EventLog, clocked: ClockedScheduler
) -> None:
    registry = make_registry(autodelete_delay=3600)
    gate = Gate()
    job_id = start(registry, gate)
    gate.wait_started()
    clocked.advance(7200)  # time running does not count
    assert job_id in registry.get_jobs()
    gate.release.set()
    event_log.wait_for(job_id, "done")
    clocked.advance(3599)
    assert job_id in registry.get_jobs()
    clocked.advance(2)
    assert job_id not in registry.get_jobs()
    start_again = Job(job_id, "reused id", lambda ctx: None)
    registry.add_and_start(start_again)  # the id is free again
    assert registry.get(job_id) is start_again


def test_a_deleted_job_is_not_removed_again_by_its_autodelete(
    make_registry: Callable[..., JobRegistry], event_log: EventLog, clocked: ClockedScheduler
) -> None:
    registry = make_registry(autodelete_delay=10)
    job_id = start(registry, lambda ctx: None)
    event_log.wait_for(job_id, "done")
    registry.delete(job_id)
    gate = Gate()
    registry.add_and_start(Job(job_id, "same id, new job", gate))
    gate.wait_started()
    clocked.advance(11)
    assert registry.get_jobs()[job_id]["description"] == "same id, new job"
    gate.release.set()


# --- the pool ----------------------------------------------------------------------------------


def test_more_jobs_than_workers_queue_and_all_finish(
    make_registry: Callable[..., JobRegistry], event_log: EventLog
) -> None:
    registry = make_registry(workers=2, max_queued=10)
    gates = [Gate() for _ in range(6)]
    ids = [start(registry, gate) for gate in gates]
    gates[0].wait_started()
    gates[1].wait_started()
    statuses = [registry.get_jobs()[job_id]["status"] for job_id in ids]
    assert statuses == ["running", "running", "pending", "pending", "pending", "pending"]
    for gate in gates:
        gate.release.set()
    for job_id in ids:
        event_log.wait_for(job_id, "done")
    assert [gate.calls for gate in gates] == [1] * 6


def test_a_full_queue_refuses_the_job_and_forgets_it(
    make_registry: Callable[..., JobRegistry], event_log: EventLog
) -> None:
    registry = make_registry(workers=1, max_queued=1)
    running, queued = Gate(), Gate()
    start(registry, running)
    running.wait_started()
    start(registry, queued)
    refused_id = new_id()
    with pytest.raises(errors.ResourceExhausted):
        registry.add_and_start(Job(refused_id, "one too many", Gate()))
    assert refused_id not in registry.get_jobs()
    assert event_log.statuses(refused_id) == []
    running.release.set()
    queued.release.set()


def test_shutdown_aborts_what_it_can_and_refuses_new_jobs(
    clocked: ClockedScheduler, bus: EventBus, event_log: EventLog
) -> None:
    registry = JobRegistry(clocked, bus, workers=2)
    registry.start()
    started = threading.Event()
    stubborn, pending = Gate(), Gate()
    abortable_id = start(registry, abort_aware(started), abortable=True)
    stubborn_id = start(registry, stubborn)
    assert started.wait(WAIT)
    stubborn.wait_started()
    pending_id = start(registry, pending)
    registry.shutdown()
    event_log.wait_for(abortable_id, "aborted")
    assert event_log.statuses(pending_id) == ["aborted"]
    assert registry.get(stubborn_id).status is JobStatus.RUNNING
    with pytest.raises(ExecutorStopped):
        registry.add_and_start(Job(new_id(), "late", Gate()))
    stubborn.release.set()
    event_log.wait_for(stubborn_id, "done")
    assert pending.calls == 0
