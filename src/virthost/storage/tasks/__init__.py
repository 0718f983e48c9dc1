"""Storage tasks: VDSM's asynchronous, persisted, rolled-back-on-failure SPM operations.

An SPM verb schedules its work with :meth:`TaskManager.schedule` and answers the task id; the
work registers rollback steps through its :class:`TaskContext`; the engine polls the task's
status and clears it. Persistent tasks live in a :class:`TaskStore` on the master domain and
are finished or rolled back by :meth:`TaskManager.load` after a crash.

Modules: :mod:`.states` (state machine, wire pairs), :mod:`.records` (the on-disk text form),
:mod:`.store` (atomic directory swaps), :mod:`.task` (one task's lifecycle), :mod:`.reports`
(what the engine is told), :mod:`.manager` (the registry and the pool).
"""

from __future__ import annotations

from virthost.storage.tasks.manager import TaskManager
from virthost.storage.tasks.records import RecoveryStep, TaskRecord
from virthost.storage.tasks.reports import TaskDetails, TaskInfo, TaskStatus
from virthost.storage.tasks.states import TaskState, wire_pair
from virthost.storage.tasks.store import TaskFileIO, TaskStore, tasks_dir_of
from virthost.storage.tasks.task import SUCCESS_MESSAGE, RecoveryFn, TaskContext, Work

__all__ = [
    "SUCCESS_MESSAGE",
    "RecoveryFn",
    "RecoveryStep",
    "TaskContext",
    "TaskDetails",
    "TaskFileIO",
    "TaskInfo",
    "TaskManager",
    "TaskRecord",
    "TaskState",
    "TaskStatus",
    "TaskStore",
    "Work",
    "tasks_dir_of",
    "wire_pair",
]
