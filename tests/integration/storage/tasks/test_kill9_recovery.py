"""kill -9 in the middle of a persistent task: the next manager rolls it back from disk.

A child process (spm_child.py) plays the SPM: its task registers a rollback step, creates
files on a "master domain" directory through real out-of-process I/O, and the test kills it
with SIGKILL. A fresh TaskManager in the test then loads the task directory: an interrupted
task is rolled back (the files are gone) and shows finished/cleanSuccess; a task that had
finished shows finished/success and keeps its files. Clearing removes the task directory.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from virthost.storage.oop import OutOfProcessIO, ProcessPools
from virthost.storage.tasks import (
    RecoveryStep,
    TaskManager,
    TaskState,
    TaskStore,
    tasks_dir_of,
)

pytestmark = pytest.mark.integration

CHILD = Path(__file__).with_name("spm_child.py")
WAIT = 60.0


def eventually(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"never happened: {what}")
        time.sleep(0.01)


@pytest.fixture
def domain(tmp_path: Path) -> Path:
    path = tmp_path / "master-domain"
    path.mkdir()
    return path


@pytest.fixture
def io() -> Iterator[OutOfProcessIO]:
    pools = ProcessPools()
    try:
        yield pools.get("master")
    finally:
        pools.close()


def start_child(
    domain: Path, files: Path, task_id: str, count: int, mode: str
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(CHILD), str(domain), str(files), task_id, str(count), mode],
        stdout=subprocess.PIPE,
        text=True,
    )


def kill(child: subprocess.Popen[str]) -> None:
    os.kill(child.pid, signal.SIGKILL)
    assert child.wait(WAIT) == -signal.SIGKILL
    if child.stdout is not None:
        child.stdout.close()


def new_manager(io: OutOfProcessIO, domain: Path, removed: list[str]) -> TaskManager:
    def remove_files(params: Mapping[str, str]) -> None:
        directory = params["directory"]
        removed.append(directory)
        if io.exists(directory):
            io.rmtree(directory, str(domain))

    return TaskManager({"remove_files": remove_files})


def test_a_killed_task_is_rolled_back_by_the_next_manager(domain: Path, io: OutOfProcessIO) -> None:
    files, task_id = domain / "images" / "img-1", str(uuid.uuid4())
    child = start_child(domain, files, task_id, 3, "block")
    try:
        eventually(lambda: (files / "volume-2").exists(), "the child created its files")
    finally:
        kill(child)
    task_dir = Path(tasks_dir_of(str(domain))) / task_id
    left_behind = TaskStore(io, tasks_dir_of(str(domain))).load(task_id)
    assert left_behind.state is TaskState.RUNNING
    assert left_behind.recoveries == (RecoveryStep("remove_files", {"directory": str(files)}),)

    removed: list[str] = []
    tasks = new_manager(io, domain, removed)
    try:
        assert tasks.load(TaskStore(io, tasks_dir_of(str(domain))), tag="pool") == [task_id]
        status = tasks.wait(task_id, WAIT)
        assert (status["taskState"], status["taskResult"]) == ("finished", "cleanSuccess")
        assert removed == [str(files)]
        assert not files.exists()
        assert tasks.info(task_id) == {"id": task_id, "verb": "Volume.create"}
        assert tasks.unfinished("pool") == []
        tasks.clear(task_id)
        assert not task_dir.exists()
        assert os.listdir(task_dir.parent) == []
    finally:
        tasks.shutdown(WAIT)


def test_a_task_that_finished_before_the_kill_stays_finished(
    domain: Path, io: OutOfProcessIO
) -> None:
    files, task_id = domain / "images" / "img-2", str(uuid.uuid4())
    child = start_child(domain, files, task_id, 2, "finish")
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "success"
    finally:
        kill(child)

    removed: list[str] = []
    tasks = new_manager(io, domain, removed)
    try:
        assert tasks.load(TaskStore(io, tasks_dir_of(str(domain)))) == [task_id]
        status = tasks.wait(task_id, WAIT)
        assert (status["taskResult"], status["code"]) == ("success", 0)
        assert tasks.details(task_id)["result"] == {"files": 2}
        assert removed == []
        assert sorted(os.listdir(files)) == ["volume-0", "volume-1"]
        tasks.clear(task_id)
        assert os.listdir(tasks_dir_of(str(domain))) == []
    finally:
        tasks.shutdown(WAIT)


@pytest.mark.parametrize("seen_files", [1, 10, 30])
def test_a_kill_at_any_moment_leaves_all_or_nothing(
    domain: Path, io: OutOfProcessIO, seen_files: int
) -> None:
    """Killed while creating 40 files: after the reload they are all there, or none is."""
    files, task_id = domain / "images" / "img-3", str(uuid.uuid4())
    child = start_child(domain, files, task_id, 40, "finish")
    try:
        eventually(
            lambda: files.is_dir() and len(os.listdir(files)) >= seen_files,
            f"the child created {seen_files} files",
        )
    finally:
        kill(child)

    removed: list[str] = []
    tasks = new_manager(io, domain, removed)
    try:
        assert tasks.load(TaskStore(io, tasks_dir_of(str(domain)))) == [task_id]
        status = tasks.wait(task_id, WAIT)
        if status["taskResult"] == "success":
            assert len(os.listdir(files)) == 40
        else:
            assert status["taskResult"] == "cleanSuccess"
            assert not files.exists()
    finally:
        tasks.shutdown(WAIT)
