"""TaskStore through a real out-of-process I/O helper, as the daemon uses it."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from virthost.storage import errors as se
from virthost.storage.oop import OutOfProcessIO, ProcessPools
from virthost.storage.tasks import RecoveryStep, TaskRecord, TaskState, TaskStore, tasks_dir_of

pytestmark = pytest.mark.integration

TASK_ID = "3a4b5c6d-7e8f-4091-a2b3-c4d5e6f70819"
RECORD = TaskRecord(
    TASK_ID,
    "Image.delete",
    TaskState.RUNNING,
    tag="pool",
    message="line one\nline two",
    recoveries=(RecoveryStep("restore", {"path": "/rhev/x"}), RecoveryStep("unlock")),
)


@pytest.fixture
def io() -> Iterator[OutOfProcessIO]:
    pools = ProcessPools()
    try:
        yield pools.get("master")
    finally:
        pools.close()


@pytest.fixture
def store(io: OutOfProcessIO, tmp_path: Path) -> TaskStore:
    return TaskStore(io, tasks_dir_of(str(tmp_path)))


def test_round_trip_replace_and_remove(store: TaskStore) -> None:
    store.save(RECORD)
    assert store.load_all() == [RECORD]
    done = TaskRecord(TASK_ID, "Image.delete", TaskState.FINISHED, tag="pool", result=[1, 2])
    store.save(done)
    assert store.load_all() == [done]
    assert os.listdir(store.directory) == [TASK_ID]
    store.remove(TASK_ID)
    assert store.load_all() == []
    assert os.listdir(store.directory) == []


def test_an_interrupted_swap_is_repaired(store: TaskStore) -> None:
    store.save(RECORD)
    path = Path(store.task_dir(TASK_ID))
    os.rename(path, f"{path}.backup")
    shutil.copytree(f"{path}.backup", f"{path}.temp")
    assert store.load_all() == [RECORD]
    assert os.listdir(store.directory) == [TASK_ID]


def test_a_corrupt_task_file_is_a_load_error(store: TaskStore) -> None:
    store.save(RECORD)
    task_file = Path(store.task_dir(TASK_ID)) / f"{TASK_ID}.task"
    task_file.write_text("garbage\n")
    with pytest.raises(se.TaskMetaDataLoadError):
        store.load(TASK_ID)
    assert store.load_all() == []
