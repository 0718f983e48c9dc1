"""The Task namespace: translates Task.* verbs into the storage task manager.

The Host verbs that list tasks (``getAllTasksStatuses``, ``getAllTasksInfo``,
``getAllTasks``) are served by the plain methods at the end, which the Host namespace calls:
each answers a map from task id to what ``Task.getStatus`` / ``Task.getInfo`` answer for one
task (and, for ``getAllTasks``, every detail known: id, verb, state, tag, code, message,
result).
"""

from __future__ import annotations

from virthost.storage.tasks import TaskDetails, TaskInfo, TaskManager, TaskStatus


class TaskApi:
    def __init__(self, tasks: TaskManager) -> None:
        self._tasks = tasks

    def getStatus(self, taskID: str) -> TaskStatus:
        return self._tasks.status(taskID)

    def getInfo(self, taskID: str) -> TaskInfo:
        return self._tasks.info(taskID)

    def clear(self, taskID: str) -> None:
        self._tasks.clear(taskID)

    def stop(self, taskID: str) -> None:
        self._tasks.stop(taskID)

    def revert(self, taskID: str) -> None:
        self._tasks.revert(taskID)

    # --- for the Host namespace -----------------------------------------------------------

    def all_statuses(self) -> dict[str, TaskStatus]:
        """``Host.getAllTasksStatuses``: TaskStatusMap."""
        return self._tasks.all_statuses()

    def all_info(self) -> dict[str, TaskInfo]:
        """``Host.getAllTasksInfo``: TaskInfoMap."""
        return self._tasks.all_info()

    def all_details(self) -> dict[str, TaskDetails]:
        """``Host.getAllTasks``: TaskDetailsMap."""
        return self._tasks.all_details()
