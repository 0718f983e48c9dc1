"""TaskManager with a store: what reaches the disk, reloading after a restart, tags, limits."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from virthost.common import errors
from virthost.common.executor import TooManyTasks
from virthost.storage import errors as se
from virthost.storage.tasks import (
    SUCCESS_MESSAGE,
    RecoveryStep,
    TaskContext,
    TaskManager,
    TaskRecord,
    TaskState,
    TaskStore,
)

from .localio import FailingIO, LocalIO
from .support import TASK_ID, WAIT, Recoveries, failing_after, finished, looping_work, steps

# --- persistence -------------------------------------------------------------------------


def test_the_disk_follows_the_task(manager: TaskManager, store: TaskStore) -> None:
    task_id = manager.schedule("Volume.create", steps("a"), store=store, tag="pool")
    finished(manager, task_id)
    record = store.load(task_id)
    assert record.state is TaskState.FINISHED
    assert (record.verb, record.tag, record.code) == ("Volume.create", "pool", 0)
    assert record.recoveries == (RecoveryStep("a", {"step": "a"}),)  # kept for a revert
    manager.revert(task_id)
    finished(manager, task_id)
    record = store.load(task_id)
    assert (record.state, record.recoveries) == (TaskState.RECOVERED, ())


def test_each_step_leaves_the_disk_once_it_ran(
    manager: TaskManager, recoveries: Recoveries, store: TaskStore
) -> None:
    seen: list[list[str]] = []
    recoveries.hooks["b"] = lambda: seen.append([s.name for s in store.load_all()[0].recoveries])
    task_id = manager.schedule("v", failing_after("a", "b", "c"), store=store)
    finished(manager, task_id)
    assert seen == [["a", "b"]]  # c is gone, b still there while it runs


def test_storage_down_at_start_fails_the_task_with_407(
    manager: TaskManager, recoveries: Recoveries, tmp_path: Path
) -> None:
    io = FailingIO()
    io.broken = True
    ran = threading.Event()
    task_id = manager.schedule("v", lambda ctx: ran.set(), store=TaskStore(io, str(tmp_path)))
    status = finished(manager, task_id)
    assert (status["code"], status["taskResult"]) == (407, "cleanSuccess")
    assert not ran.is_set()


def test_a_finish_that_cannot_be_saved_is_rolled_back(
    manager: TaskManager, recoveries: Recoveries, tmp_path: Path
) -> None:
    class NoFinishStore(TaskStore):
        def save(self, record: TaskRecord) -> None:
            if record.state is TaskState.FINISHED:
                raise se.TaskMetaDataSaveError("storage went away")
            super().save(record)

    store = NoFinishStore(LocalIO(), str(tmp_path / "tasks"))
    task_id = manager.schedule("v", steps("a"), store=store)
    status = finished(manager, task_id)
    assert (status["code"], status["taskResult"]) == (407, "cleanSuccess")
    assert recoveries.names == ["a"]


# --- load after a restart ----------------------------------------------------------------


def saved(store: TaskStore, state: TaskState, *names: str, task_id: str = TASK_ID) -> str:
    store.save(
        TaskRecord(
            task_id,
            "Volume.create",
            state,
            tag="old-pool",
            code=0,
            message="1 jobs completed successfully" if state is TaskState.FINISHED else "",
            recoveries=tuple(RecoveryStep(name, {"step": name}) for name in names),
            result={"uuid": "u"} if state is TaskState.FINISHED else None,
        )
    )
    return task_id


def test_load_shows_finished_tasks_as_they_ended(
    manager: TaskManager, recoveries: Recoveries, store: TaskStore
) -> None:
    task_id = saved(store, TaskState.FINISHED, "a")
    assert manager.load(store, tag="pool") == [task_id]
    status = finished(manager, task_id)
    assert (status["taskResult"], status["code"], status["message"]) == (
        "success",
        0,
        SUCCESS_MESSAGE,
    )
    assert manager.details(task_id)["result"] == {"uuid": "u"}
    assert manager.details(task_id)["tag"] == "pool"
    assert recoveries.calls == []
    manager.clear(task_id)
    assert store.task_ids() == []


@pytest.mark.parametrize("state", [TaskState.RUNNING, TaskState.QUEUED, TaskState.ABORTING])
def test_load_rolls_back_unfinished_tasks(
    manager: TaskManager, recoveries: Recoveries, store: TaskStore, state: TaskState
) -> None:
    task_id = saved(store, state, "a", "b", "c")
    assert manager.load(store) == [task_id]
    status = finished(manager, task_id)
    assert status["taskResult"] == "cleanSuccess"
    assert recoveries.names == ["c", "b", "a"]
    record = store.load(task_id)
    assert (record.state, record.recoveries) == (TaskState.RECOVERED, ())
    if state is not TaskState.ABORTING:
        assert status["code"] == 411


def test_load_resumes_an_interrupted_rollback(
    manager: TaskManager, recoveries: Recoveries, store: TaskStore
) -> None:
    task_id = saved(store, TaskState.RECOVERING, "a")  # b and c had run before the crash
    manager.load(store)
    assert finished(manager, task_id)["taskResult"] == "cleanSuccess"
    assert recoveries.names == ["a"]


def test_load_with_an_unknown_step_ends_in_clean_failure(
    manager: TaskManager, recoveries: Recoveries, store: TaskStore
) -> None:
    task_id = saved(store, TaskState.RUNNING, "a", "gone")
    manager.load(store)
    assert finished(manager, task_id)["taskResult"] == "cleanFailure"
    assert recoveries.names == ["a"]


def test_load_leaves_known_tasks_alone(manager: TaskManager, store: TaskStore) -> None:
    task_id = manager.schedule("v", lambda ctx: None, store=store)
    finished(manager, task_id)
    assert manager.load(store) == []


def test_load_of_several_tasks(
    manager: TaskManager, recoveries: Recoveries, store: TaskStore
) -> None:
    other = "1e2d3c4b-5a69-4788-9a0b-c1d2e3f40516"
    done = saved(store, TaskState.FINISHED, "a")
    running = saved(store, TaskState.RUNNING, "b", task_id=other)
    assert sorted(manager.load(store, tag="pool")) == sorted([done, running])
    assert finished(manager, running)["taskResult"] == "cleanSuccess"
    assert finished(manager, done)["taskResult"] == "success"
    assert recoveries.names == ["b"]


# --- tags, forget, limits, shutdown ------------------------------------------------------


def test_tags_select_tasks(manager: TaskManager) -> None:
    release = threading.Event()
    first = manager.schedule("v", lambda ctx: release.wait(WAIT), tag="pool-1")
    second = manager.schedule("v", lambda ctx: None, tag="pool-2")
    finished(manager, second)
    assert manager.unfinished("pool-1") == [first]
    assert manager.unfinished("pool-2") == []
    assert set(manager.all_statuses()) == {first, second}
    assert set(manager.all_statuses("pool-2")) == {second}
    assert manager.all_info("pool-1") == {first: {"id": first, "verb": "v"}}
    release.set()
    finished(manager, first)


def test_forget_drops_a_tag_and_stops_its_work(manager: TaskManager) -> None:
    started, release = threading.Event(), threading.Event()
    running = manager.schedule("v", looping_work(started, release), tag="pool")
    other = manager.schedule("v", lambda ctx: None, tag="other")
    assert started.wait(WAIT)
    manager.forget("pool")
    release.set()
    assert set(manager.all_statuses()) == {other}
    with pytest.raises(se.UnknownTask):
        manager.status(running)


def test_a_full_queue_refuses_new_tasks(recoveries: Recoveries) -> None:
    tasks = TaskManager(recoveries.table(), max_workers=1, max_tasks=1)
    release, started = threading.Event(), threading.Event()

    def block(ctx: TaskContext) -> None:
        started.set()
        release.wait(WAIT)

    try:
        tasks.schedule("v", block)
        assert started.wait(WAIT)
        tasks.schedule("v", lambda ctx: None)
        with pytest.raises(TooManyTasks) as info:
            tasks.schedule("v", lambda ctx: None, task_id=TASK_ID)
        assert info.value.code == 1100
        with pytest.raises(se.UnknownTask):
            tasks.status(TASK_ID)
    finally:
        release.set()
        tasks.shutdown(WAIT)


def test_shutdown_stops_running_tasks(recoveries: Recoveries) -> None:
    tasks = TaskManager(recoveries.table())
    started, release = threading.Event(), threading.Event()
    task_id = tasks.schedule("v", looping_work(started, release))
    assert started.wait(WAIT)
    release.set()
    tasks.shutdown(WAIT)
    assert tasks.status(task_id)["code"] == 411
    assert recoveries.names == ["a"]
    with pytest.raises(errors.ResourceUnavailable):
        tasks.schedule("v", lambda ctx: None)
