"""TaskStore on a local directory: round trips, the layout, and crashes at every step."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from virthost.common import errors
from virthost.storage import errors as se
from virthost.storage.tasks.records import RecoveryStep, TaskRecord
from virthost.storage.tasks.states import TaskState
from virthost.storage.tasks.store import TaskStore, tasks_dir_of

from .localio import Crash, CrashingIO, FailingIO, LocalIO

TASK_ID = "0b7c1a52-9c1e-4d55-8f33-2a6f0e4c9d11"
OTHER_ID = "5d0e8f7a-1b2c-4d3e-9f40-516273849abc"

OLD = TaskRecord(
    TASK_ID,
    "Volume.create",
    TaskState.RUNNING,
    tag="pool",
    message="running job 1 of 1",
    recoveries=(RecoveryStep("remove_volume", {"path": "/a/b"}),),
)
NEW = TaskRecord(
    TASK_ID,
    "Volume.create",
    TaskState.FINISHED,
    tag="pool",
    message="1 jobs completed successfully\nstate = running",
    recoveries=(
        RecoveryStep("remove_volume", {"path": "/a/b"}),
        RecoveryStep("unlink", {"path": "/a/c", "force": "yes"}),
    ),
    result={"uuid": "x"},
)


@pytest.fixture
def tasks_dir(tmp_path: Path) -> Path:
    return Path(tasks_dir_of(str(tmp_path / "master-domain")))


def store_on(tasks_dir: Path, io: LocalIO | None = None) -> TaskStore:
    return TaskStore(io or LocalIO(), str(tasks_dir))


def test_tasks_live_in_the_master_directory_of_the_domain() -> None:
    assert (
        tasks_dir_of("/rhev/data-center/mnt/s:_e/sd")
        == "/rhev/data-center/mnt/s:_e/sd/master/tasks"
    )


def test_round_trip_and_layout(tasks_dir: Path) -> None:
    store = store_on(tasks_dir)
    store.save(NEW)
    assert sorted(os.listdir(tasks_dir)) == [TASK_ID]
    assert sorted(os.listdir(tasks_dir / TASK_ID)) == [
        f"{TASK_ID}.recover.0",
        f"{TASK_ID}.recover.1",
        f"{TASK_ID}.result",
        f"{TASK_ID}.task",
    ]
    text = (tasks_dir / TASK_ID / f"{TASK_ID}.task").read_text()
    assert f"id = {TASK_ID}\n" in text
    assert "state = finished\n" in text
    assert "verb = Volume.create\n" in text
    assert "recoveries = 2\n" in text
    assert "message = 1 jobs completed successfully\\nstate = running\n" in text
    step = (tasks_dir / TASK_ID / f"{TASK_ID}.recover.1").read_text()
    assert step == "name = unlink\nparams.path = /a/c\nparams.force = yes\n"
    assert store_on(tasks_dir).load(TASK_ID) == NEW
    assert store_on(tasks_dir).load_all() == [NEW]


def test_a_save_replaces_the_previous_version(tasks_dir: Path) -> None:
    store = store_on(tasks_dir)
    store.save(NEW)
    store.save(OLD)
    assert store.load(TASK_ID) == OLD
    assert not (tasks_dir / TASK_ID / f"{TASK_ID}.recover.1").exists()
    assert not (tasks_dir / TASK_ID / f"{TASK_ID}.result").exists()
    assert os.listdir(tasks_dir) == [TASK_ID]


def test_remove(tasks_dir: Path) -> None:
    store = store_on(tasks_dir)
    store.save(OLD)
    store.remove(TASK_ID)
    assert os.listdir(tasks_dir) == []
    store.remove(TASK_ID)  # nothing there: fine
    assert store.load_all() == []


def test_no_directory_means_no_tasks(tasks_dir: Path) -> None:
    assert store_on(tasks_dir).load_all() == []


def test_ids_and_paths_are_validated(tasks_dir: Path) -> None:
    store = store_on(tasks_dir)
    with pytest.raises(errors.InvalidParameter):
        store.save(TaskRecord("../../etc", "v", TaskState.RUNNING))
    with pytest.raises(errors.InvalidParameter):
        store.remove("x/../y")
    with pytest.raises(errors.InvalidParameter):
        TaskStore(LocalIO(), "relative/tasks")


def test_foreign_entries_are_ignored(tasks_dir: Path) -> None:
    store = store_on(tasks_dir)
    store.save(OLD)
    (tasks_dir / "README").write_text("hello")
    (tasks_dir / "not-a-uuid.temp").mkdir()
    assert store.load_all() == [OLD]
    assert (tasks_dir / "README").exists()


def test_an_unreadable_task_is_skipped_and_left_alone(tasks_dir: Path) -> None:
    store = store_on(tasks_dir)
    store.save(OLD)
    store.save(TaskRecord(OTHER_ID, "Image.delete", TaskState.RUNNING))
    task_file = tasks_dir / OTHER_ID / f"{OTHER_ID}.task"
    task_file.write_text(task_file.read_text().replace("recoveries = 0", "recoveries = 1"))
    assert store.load_all() == [OLD]
    with pytest.raises(se.TaskMetaDataLoadError) as info:
        store.load(OTHER_ID)
    assert info.value.code == 408
    assert task_file.exists()


@pytest.mark.parametrize("missing", [".task", ".recover.0"])
def test_a_task_missing_a_file_does_not_load(tasks_dir: Path, missing: str) -> None:
    store = store_on(tasks_dir)
    store.save(OLD)
    os.unlink(tasks_dir / TASK_ID / f"{TASK_ID}{missing}")
    with pytest.raises(se.TaskMetaDataLoadError):
        store.load(TASK_ID)


def test_a_gap_in_the_steps_does_not_load(tasks_dir: Path) -> None:
    store = store_on(tasks_dir)
    store.save(NEW)
    os.rename(
        tasks_dir / TASK_ID / f"{TASK_ID}.recover.1", tasks_dir / TASK_ID / f"{TASK_ID}.recover.2"
    )
    with pytest.raises(se.TaskMetaDataLoadError):
        store.load(TASK_ID)


def test_a_task_directory_holding_another_task_does_not_load(tasks_dir: Path) -> None:
    store = store_on(tasks_dir)
    store.save(OLD)
    os.rename(tasks_dir / TASK_ID, tasks_dir / OTHER_ID)
    for name in os.listdir(tasks_dir / OTHER_ID):
        os.rename(
            tasks_dir / OTHER_ID / name, tasks_dir / OTHER_ID / name.replace(TASK_ID, OTHER_ID)
        )
    with pytest.raises(se.TaskMetaDataLoadError):
        store.load(OTHER_ID)


def test_storage_errors_become_407(tasks_dir: Path) -> None:
    io = FailingIO()
    store = store_on(tasks_dir, io)
    store.save(OLD)
    io.broken = True
    with pytest.raises(se.TaskMetaDataSaveError) as info:
        store.save(NEW)
    assert info.value.code == 407
    with pytest.raises(se.TaskMetaDataSaveError):
        store.remove(TASK_ID)
    io.broken = False
    assert store.load_all() == [OLD]


# --- crashes ---------------------------------------------------------------------------------


def _crash_every_step(tasks_dir: Path, action: str) -> list[list[TaskRecord]]:
    """Run ``action`` on a store holding OLD, dying before each of its changes in turn.

    Returns what a fresh store loads after each crash, and after the action completes.
    """
    outcomes = []
    crash_at = 0
    while True:
        shutil.rmtree(tasks_dir, ignore_errors=True)
        store_on(tasks_dir).save(OLD)
        io = CrashingIO(crash_at)
        store = store_on(tasks_dir, io)
        try:
            if action == "save":
                store.save(NEW)
            else:
                store.remove(TASK_ID)
        except Crash:
            crashed = True
        else:
            crashed = False
        outcomes.append(store_on(tasks_dir).load_all())
        if not crashed:
            return outcomes
        crash_at += 1


def test_a_crash_at_any_step_of_a_save_leaves_old_or_new(tasks_dir: Path) -> None:
    outcomes = _crash_every_step(tasks_dir, "save")
    assert len(outcomes) > 6  # every change of the save was interrupted once
    assert outcomes[0] == [OLD]
    assert outcomes[-1] == [NEW]
    for loaded in outcomes:
        assert loaded in ([OLD], [NEW])
    # once the new version shows, it stays: no crash point makes the old one come back
    first_new = outcomes.index([NEW])
    assert all(loaded == [NEW] for loaded in outcomes[first_new:])
    assert os.listdir(tasks_dir) == [TASK_ID]


def test_a_crash_at_any_step_of_a_removal_leaves_all_or_nothing(tasks_dir: Path) -> None:
    outcomes = _crash_every_step(tasks_dir, "remove")
    assert outcomes[0] == [OLD]
    assert outcomes[-1] == []
    for loaded in outcomes:
        assert loaded in ([OLD], [])


def test_a_crash_during_a_first_save_leaves_nothing_or_the_task(tasks_dir: Path) -> None:
    crash_at = 0
    while True:
        shutil.rmtree(tasks_dir, ignore_errors=True)
        try:
            store_on(tasks_dir, CrashingIO(crash_at)).save(NEW)
        except Crash:
            assert store_on(tasks_dir).load_all() in ([], [NEW])
            crash_at += 1
            continue
        break
    assert store_on(tasks_dir).load_all() == [NEW]


def test_an_interrupted_swap_is_repaired_from_the_backup(tasks_dir: Path) -> None:
    store = store_on(tasks_dir)
    store.save(OLD)
    os.rename(tasks_dir / TASK_ID, tasks_dir / f"{TASK_ID}.backup")
    shutil.copytree(tasks_dir / f"{TASK_ID}.backup", tasks_dir / f"{TASK_ID}.temp")
    assert store.load_all() == [OLD]
    assert os.listdir(tasks_dir) == [TASK_ID]


def test_a_save_after_a_failed_save_keeps_the_store_consistent(tasks_dir: Path) -> None:
    io = FailingIO()
    store = store_on(tasks_dir, io)
    store.save(OLD)
    os.rename(tasks_dir / TASK_ID, tasks_dir / f"{TASK_ID}.backup")  # failed between renames
    store.save(NEW)
    assert os.listdir(tasks_dir) == [TASK_ID]
    assert store.load_all() == [NEW]
