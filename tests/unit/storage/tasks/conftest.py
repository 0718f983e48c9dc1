"""Fixtures for the task manager tests: a manager with recording recoveries, a local store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from virthost.storage.tasks import TaskManager, TaskStore

from .localio import LocalIO
from .support import WAIT, Recoveries


@pytest.fixture
def recoveries() -> Recoveries:
    return Recoveries()


@pytest.fixture
def manager(recoveries: Recoveries) -> Iterator[TaskManager]:
    tasks = TaskManager(recoveries.table(), max_workers=2, max_tasks=10)
    yield tasks
    tasks.shutdown(WAIT)


@pytest.fixture
def store(tmp_path: Path) -> TaskStore:
    return TaskStore(LocalIO(), str(tmp_path / "master" / "tasks"))
