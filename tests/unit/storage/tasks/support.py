"""Helpers for the task manager tests: recording recovery functions and ready-made work."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from virthost.storage import errors as se
from virthost.storage.tasks import TaskContext, TaskManager

WAIT = 30.0  # generous: only reached when something is broken
TASK_ID = "8d3c4a1e-2f5b-4c6d-9e7f-0a1b2c3d4e5f"


class Recoveries:
    """Recovery functions that record their calls; the one named "broken" fails."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, str]]] = []
        self.hooks: dict[str, Callable[[], None]] = {}

    def table(self) -> dict[str, Callable[[Mapping[str, str]], None]]:
        return {name: self._make(name) for name in ("a", "b", "c", "broken")}

    def _make(self, name: str) -> Callable[[Mapping[str, str]], None]:
        def recover(params: Mapping[str, str]) -> None:
            self.calls.append((name, dict(params)))
            if name in self.hooks:
                self.hooks[name]()
            if name == "broken":
                raise OSError(f"recovery {name} failed")

        return recover

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


def finished(manager: TaskManager, task_id: str) -> dict[str, Any]:
    status = manager.wait(task_id, WAIT)
    assert status["taskState"] == "finished", status
    return dict(status)


def steps(*names: str) -> Callable[[TaskContext], None]:
    def work(ctx: TaskContext) -> None:
        for name in names:
            ctx.add_recovery(name, {"step": name})

    return work


def failing_after(*names: str, error: Exception | None = None) -> Callable[[TaskContext], None]:
    def work(ctx: TaskContext) -> None:
        steps(*names)(ctx)
        raise error or se.VolumeCreationError("disk full")

    return work


def looping_work(
    started: threading.Event, release: threading.Event
) -> Callable[[TaskContext], None]:
    """Registers a step, waits for the test, then checks for a stop until it comes."""

    def work(ctx: TaskContext) -> None:
        ctx.add_recovery("a", {})
        started.set()
        release.wait(WAIT)
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            ctx.check_aborted()
            time.sleep(0.001)
        raise AssertionError("the stop was never seen")

    return work
