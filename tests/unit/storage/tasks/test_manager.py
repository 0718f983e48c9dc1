"""TaskManager: running, failing, registering steps, stopping, reverting, clearing."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from virthost.common import errors
from virthost.storage import errors as se
from virthost.storage.tasks import (
    SUCCESS_MESSAGE,
    RecoveryStep,
    TaskContext,
    TaskManager,
    TaskState,
    TaskStore,
)

from .localio import FailingIO
from .support import TASK_ID, WAIT, Recoveries, failing_after, finished, looping_work, steps

# --- success and failure -----------------------------------------------------------------


def test_success(manager: TaskManager) -> None:
    task_id = manager.schedule("Volume.create", lambda ctx: {"uuid": ctx.task_id}, tag="pool")
    status = finished(manager, task_id)
    assert status == {
        "taskID": task_id,
        "taskState": "finished",
        "taskResult": "success",
        "code": 0,
        "message": SUCCESS_MESSAGE,
    }
    assert SUCCESS_MESSAGE == "1 jobs completed successfully"
    assert manager.info(task_id) == {"id": task_id, "verb": "Volume.create"}
    details = manager.details(task_id)
    assert details["state"] == "finished"
    assert details["tag"] == "pool"
    assert details["result"] == {"uuid": task_id}


def test_schedule_returns_at_once_and_the_task_shows_running(manager: TaskManager) -> None:
    release = threading.Event()
    task_id = manager.schedule("Image.delete", lambda ctx: release.wait(WAIT))
    status = manager.status(task_id)
    assert (status["taskState"], status["taskResult"]) == ("running", "")
    assert manager.unfinished() == [task_id]
    release.set()
    finished(manager, task_id)
    assert manager.unfinished() == []


def test_given_task_ids_are_validated_and_unique(manager: TaskManager) -> None:
    task_id = manager.schedule("v", lambda ctx: None, task_id=TASK_ID.upper())
    assert task_id == TASK_ID
    with pytest.raises(errors.InvalidParameter):
        manager.schedule("v", lambda ctx: None, task_id=TASK_ID)
    with pytest.raises(errors.InvalidParameter):
        manager.schedule("v", lambda ctx: None, task_id="../x")


def test_failure_rolls_back_in_reverse_order(manager: TaskManager, recoveries: Recoveries) -> None:
    task_id = manager.schedule("Volume.create", failing_after("a", "b", "c"))
    status = finished(manager, task_id)
    assert status["taskResult"] == "cleanSuccess"
    assert status["code"] == 205
    assert status["message"] == "Error creating a new volume: disk full"
    assert recoveries.calls == [("c", {"step": "c"}), ("b", {"step": "b"}), ("a", {"step": "a"})]


def test_results_are_plain_json(manager: TaskManager) -> None:
    task_id = manager.schedule("v", lambda ctx: {"path": Path("/a"), "n": (1, 2)})
    assert finished(manager, task_id)["taskResult"] == "success"
    assert manager.details(task_id)["result"] == {"path": "/a", "n": [1, 2]}


def test_a_result_json_cannot_carry_fails_the_task(manager: TaskManager) -> None:
    loop: list[object] = []
    loop.append(loop)
    status = finished(manager, manager.schedule("v", lambda ctx: loop))
    assert (status["taskResult"], status["code"]) == ("cleanSuccess", 100)


def test_other_exceptions_are_general_exceptions(manager: TaskManager) -> None:
    task_id = manager.schedule("v", failing_after("a", error=RuntimeError("oops")))
    status = finished(manager, task_id)
    assert status["code"] == 100
    assert status["message"] == "General Exception: oops"
    assert status["taskResult"] == "cleanSuccess"


def test_a_failing_recovery_step_does_not_stop_the_others(
    manager: TaskManager, recoveries: Recoveries
) -> None:
    task_id = manager.schedule("v", failing_after("a", "broken", "c"))
    status = finished(manager, task_id)
    assert status["taskResult"] == "cleanFailure"
    assert status["code"] == 205  # why the task failed, not why the rollback did
    assert recoveries.names == ["c", "broken", "a"]
    assert manager.details(task_id)["state"] == "failed"


def test_the_task_shows_cleaning_while_it_rolls_back(
    manager: TaskManager, recoveries: Recoveries
) -> None:
    inside, release = threading.Event(), threading.Event()

    def block() -> None:
        inside.set()
        release.wait(WAIT)

    recoveries.hooks["a"] = block
    task_id = manager.schedule("v", failing_after("a"))
    assert inside.wait(WAIT)
    status = manager.status(task_id)
    assert (status["taskState"], status["taskResult"]) == ("cleaning", "")
    assert manager.unfinished() == [task_id]
    with pytest.raises(se.TaskNotFinished):
        manager.clear(task_id)
    release.set()
    assert finished(manager, task_id)["taskResult"] == "cleanSuccess"


# --- recovery registration ---------------------------------------------------------------


def test_unknown_recovery_names_fail_at_once(manager: TaskManager, recoveries: Recoveries) -> None:
    seen: list[BaseException] = []

    def work(ctx: TaskContext) -> None:
        ctx.add_recovery("a", {})
        try:
            ctx.add_recovery("no_such_step", {})
        except errors.InvalidParameter as e:
            seen.append(e)
            raise

    status = finished(manager, manager.schedule("v", work))
    assert len(seen) == 1
    assert status["code"] == errors.InvalidParameter.code
    assert recoveries.names == ["a"]


@pytest.mark.parametrize(
    "params",
    [
        {"path": "/a\nname = evil"},
        {"path": "/a\rb"},
        {"pa\nth": "x"},
        {"params.x": "y"},
        {"path": 3},
    ],
)
def test_forged_or_strange_params_are_rejected(
    manager: TaskManager, store: TaskStore, params: dict[str, Any]
) -> None:
    seen: list[BaseException] = []

    def work(ctx: TaskContext) -> None:
        try:
            ctx.add_recovery("a", params)
        except errors.InvalidParameter as e:
            seen.append(e)
        ctx.add_recovery("b", {"path": "/ok"})

    task_id = manager.schedule("v", work, store=store)
    finished(manager, task_id)
    assert len(seen) == 1
    assert store.load(task_id).recoveries == (RecoveryStep("b", {"path": "/ok"}),)


def test_a_step_is_on_disk_before_add_recovery_returns(
    manager: TaskManager, store: TaskStore
) -> None:
    on_disk: list[tuple[RecoveryStep, ...]] = []

    def work(ctx: TaskContext) -> None:
        ctx.add_recovery("a", {"path": "/x"})
        on_disk.append(store.load(ctx.task_id).recoveries)
        ctx.add_recovery("b", {})
        on_disk.append(store.load(ctx.task_id).recoveries)
        record = store.load(ctx.task_id)
        assert record.state is TaskState.RUNNING

    finished(manager, manager.schedule("v", work, store=store))
    assert on_disk == [
        (RecoveryStep("a", {"path": "/x"}),),
        (RecoveryStep("a", {"path": "/x"}), RecoveryStep("b", {})),
    ]


def test_add_recovery_after_the_task_ended_is_refused(manager: TaskManager) -> None:
    kept: list[TaskContext] = []
    task_id = manager.schedule("v", kept.append)
    finished(manager, task_id)
    with pytest.raises(se.TaskStateError):
        kept[0].add_recovery("a", {})


def test_cleared_recoveries_are_not_run(manager: TaskManager, recoveries: Recoveries) -> None:
    def work(ctx: TaskContext) -> None:
        steps("a", "b")(ctx)
        ctx.clear_recoveries()
        ctx.add_recovery("c", {})
        raise se.VolumeCreationError()

    finished(manager, manager.schedule("v", work))
    assert recoveries.names == ["c"]


# --- stop --------------------------------------------------------------------------------


def test_stop_a_running_task(manager: TaskManager, recoveries: Recoveries) -> None:
    started, release = threading.Event(), threading.Event()
    task_id = manager.schedule("v", looping_work(started, release))
    assert started.wait(WAIT)
    manager.stop(task_id)
    status = manager.status(task_id)
    assert (status["taskState"], status["taskResult"]) == ("aborting", "")
    release.set()
    status = finished(manager, task_id)
    assert status["taskResult"] == "cleanSuccess"
    assert status["code"] == 411
    assert recoveries.names == ["a"]


def test_stop_before_the_work_started(manager: TaskManager, recoveries: Recoveries) -> None:
    release = threading.Event()
    blockers = [manager.schedule("v", lambda ctx: release.wait(WAIT)) for _ in range(2)]
    ran = threading.Event()
    task_id = manager.schedule("v", lambda ctx: ran.set())
    manager.stop(task_id)
    assert manager.status(task_id)["taskState"] == "aborting"
    release.set()
    status = finished(manager, task_id)
    assert (status["taskResult"], status["code"]) == ("cleanSuccess", 411)
    assert not ran.is_set()
    for blocker in blockers:
        finished(manager, blocker)


def test_work_that_ignores_the_stop_is_rolled_back_anyway(
    manager: TaskManager, recoveries: Recoveries
) -> None:
    started, release = threading.Event(), threading.Event()

    def work(ctx: TaskContext) -> None:
        ctx.add_recovery("a", {})
        started.set()
        release.wait(WAIT)
        assert ctx.aborting

    task_id = manager.schedule("v", work)
    assert started.wait(WAIT)
    manager.stop(task_id)
    release.set()
    assert finished(manager, task_id)["code"] == 411
    assert recoveries.names == ["a"]


def test_stop_is_ignored_past_the_point_of_no_return(manager: TaskManager) -> None:
    started, release = threading.Event(), threading.Event()

    def work(ctx: TaskContext) -> None:
        ctx.add_recovery("a", {})
        ctx.clear_recoveries()
        started.set()
        release.wait(WAIT)
        ctx.check_aborted()

    task_id = manager.schedule("v", work)
    assert started.wait(WAIT)
    manager.stop(task_id)
    assert manager.status(task_id)["taskState"] == "running"
    release.set()
    assert finished(manager, task_id)["taskResult"] == "success"


def test_clear_recoveries_after_a_stop_aborts(manager: TaskManager, recoveries: Recoveries) -> None:
    started, release = threading.Event(), threading.Event()

    def work(ctx: TaskContext) -> None:
        ctx.add_recovery("a", {})
        started.set()
        release.wait(WAIT)
        ctx.clear_recoveries()

    task_id = manager.schedule("v", work)
    assert started.wait(WAIT)
    manager.stop(task_id)
    release.set()
    assert finished(manager, task_id)["code"] == 411
    assert recoveries.names == ["a"]


def test_stop_of_an_ended_task_changes_nothing(manager: TaskManager) -> None:
    task_id = manager.schedule("v", lambda ctx: None)
    finished(manager, task_id)
    manager.stop(task_id)
    assert manager.status(task_id)["taskResult"] == "success"


# --- revert and clear --------------------------------------------------------------------


def test_revert_a_finished_task(manager: TaskManager, recoveries: Recoveries) -> None:
    task_id = manager.schedule("v", steps("a", "b"))
    assert finished(manager, task_id)["taskResult"] == "success"
    assert recoveries.calls == []
    manager.revert(task_id)
    assert finished(manager, task_id)["taskResult"] == "cleanSuccess"
    assert recoveries.names == ["b", "a"]
    with pytest.raises(se.TaskStateError) as info:
        manager.revert(task_id)
    assert info.value.code == 410


def test_revert_needs_an_ended_task(manager: TaskManager) -> None:
    release = threading.Event()
    task_id = manager.schedule("v", lambda ctx: release.wait(WAIT))
    with pytest.raises(se.TaskNotFinished) as info:
        manager.revert(task_id)
    assert info.value.code == 403
    release.set()
    finished(manager, task_id)


def test_a_failed_task_cannot_be_reverted_again(manager: TaskManager) -> None:
    task_id = manager.schedule("v", failing_after("a"))
    finished(manager, task_id)
    with pytest.raises(se.TaskStateError):
        manager.revert(task_id)


def test_clear_rules(manager: TaskManager, store: TaskStore) -> None:
    release = threading.Event()
    task_id = manager.schedule("v", lambda ctx: release.wait(WAIT), store=store)
    with pytest.raises(se.TaskNotFinished) as info:
        manager.clear(task_id)
    assert info.value.code == 403
    release.set()
    finished(manager, task_id)
    assert store.task_ids() == [task_id]
    manager.clear(task_id)
    assert store.task_ids() == []
    with pytest.raises(se.UnknownTask) as unknown:
        manager.status(task_id)
    assert unknown.value.code == 401
    with pytest.raises(se.UnknownTask):
        manager.clear(task_id)


def test_a_failed_removal_keeps_the_task(manager: TaskManager, tmp_path: Path) -> None:
    io = FailingIO()
    store = TaskStore(io, str(tmp_path / "tasks"))
    task_id = manager.schedule("v", lambda ctx: None, store=store)
    finished(manager, task_id)
    io.broken = True
    with pytest.raises(se.TaskMetaDataSaveError):
        manager.clear(task_id)
    assert manager.status(task_id)["taskResult"] == "success"
    io.broken = False
    manager.clear(task_id)
    assert store.task_ids() == []


@pytest.mark.parametrize("verb", ["status", "info", "stop", "revert", "clear"])
def test_unknown_and_malformed_ids(manager: TaskManager, verb: str) -> None:
    with pytest.raises(se.UnknownTask) as info:
        getattr(manager, verb)(TASK_ID)
    assert info.value.code == 401
    with pytest.raises(errors.InvalidParameter):
        getattr(manager, verb)("not-a-uuid")
