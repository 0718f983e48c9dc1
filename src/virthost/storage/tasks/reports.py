"""What the engine is told about tasks: the shapes of Task.getStatus, getInfo and getAllTasks.

``Host.getAllTasksStatuses``, ``Host.getAllTasksInfo`` and ``Host.getAllTasks`` answer maps
from task id to these.
"""

from __future__ import annotations

from typing import Any, TypedDict


class TaskStatus(TypedDict):
    """``Task.getStatus``, VDSM's deprecated state/result pair included."""

    taskID: str
    taskState: str
    taskResult: str
    code: int
    message: str


class TaskInfo(TypedDict):
    """``Task.getInfo``."""

    id: str
    verb: str


class TaskDetails(TypedDict):
    """One task of ``Host.getAllTasks``: everything known about it."""

    id: str
    verb: str
    state: str
    tag: str
    code: int
    message: str
    result: Any
