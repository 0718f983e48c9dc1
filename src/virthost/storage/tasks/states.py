"""The states of a storage task, the moves allowed between them, and how the engine sees them.

VDSM's task state machine has fourteen states, several of which exist for resource locking
(``blocked``, ``acquiring``, ``racquiring``, ``raborting``) or a separate preparation phase
that this implementation does not have. The ones used here keep VDSM's names, so the ``state``
of ``Host.getAllTasks`` reads the same::

    init -> queued -> running -> finished                  (success)
                         |          |
                         v          v  Task.revert
                      aborting -> recovering -> recovered  (rollback went through)
                                             \\-> failed    (a rollback step failed)

``aborting`` is entered when the work failed or was stopped, ``recovering`` while the rollback
steps run. A task loaded from disk after a crash resumes from the state it was saved in, which
is why ``init`` and ``queued`` may also move straight to ``aborting``.

The engine does not see these states: ``Task.getStatus`` reports VDSM's deprecated
``taskState``/``taskResult`` pairs, computed by :func:`wire_pair`.
"""

from __future__ import annotations

import enum

from virthost.storage import errors as se


class TaskState(enum.Enum):
    INIT = "init"
    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"
    ABORTING = "aborting"
    RECOVERING = "recovering"
    RECOVERED = "recovered"
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value

    @property
    def done(self) -> bool:
        """The task will not change any more by itself (it can still be reverted or cleared)."""
        return self in DONE_STATES


DONE_STATES = frozenset({TaskState.FINISHED, TaskState.RECOVERED, TaskState.FAILED})

ACTIVE_STATES = frozenset({TaskState.INIT, TaskState.QUEUED, TaskState.RUNNING})
"""States in which the work has not ended yet: a stop request still means something."""

_MOVES: dict[TaskState, frozenset[TaskState]] = {
    TaskState.INIT: frozenset({TaskState.QUEUED, TaskState.ABORTING}),
    TaskState.QUEUED: frozenset({TaskState.RUNNING, TaskState.ABORTING}),
    TaskState.RUNNING: frozenset({TaskState.FINISHED, TaskState.ABORTING}),
    TaskState.FINISHED: frozenset({TaskState.RECOVERING}),
    TaskState.ABORTING: frozenset({TaskState.RECOVERING}),
    TaskState.RECOVERING: frozenset({TaskState.RECOVERED, TaskState.FAILED}),
    TaskState.RECOVERED: frozenset(),
    TaskState.FAILED: frozenset(),
}

# What the engine is told: (taskState, taskResult). Results exist only for ended tasks.
_WIRE: dict[TaskState, tuple[str, str]] = {
    TaskState.INIT: ("running", ""),
    TaskState.QUEUED: ("running", ""),
    TaskState.RUNNING: ("running", ""),
    TaskState.FINISHED: ("finished", "success"),
    TaskState.ABORTING: ("aborting", ""),
    TaskState.RECOVERING: ("cleaning", ""),
    TaskState.RECOVERED: ("finished", "cleanSuccess"),
    TaskState.FAILED: ("finished", "cleanFailure"),
}


def can_move(source: TaskState, target: TaskState) -> bool:
    return target in _MOVES[source]


def check_move(task_id: str, source: TaskState, target: TaskState) -> None:
    """Raise TaskStateError (410) unless ``source`` may move to ``target``."""
    if not can_move(source, target):
        raise se.TaskStateError(f"task {task_id} cannot move from {source} to {target}")


def wire_pair(state: TaskState) -> tuple[str, str]:
    """VDSM's deprecated ``(taskState, taskResult)`` for ``state``."""
    return _WIRE[state]
