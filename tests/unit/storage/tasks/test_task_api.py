"""The Task namespace through the schema-driven bridge: verb and parameter names, results."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from virthost.api.dispatch import Bridge
from virthost.api.schema import Schema
from virthost.api.task import TaskApi
from virthost.storage import errors as se
from virthost.storage.tasks import TaskContext, TaskManager

WAIT = 30.0


@pytest.fixture
def manager() -> Iterator[TaskManager]:
    tasks = TaskManager({"undo": lambda params: None})
    yield tasks
    tasks.shutdown(WAIT)


@pytest.fixture
def call(manager: TaskManager) -> Any:
    bridge = Bridge(Schema.default(), {"Task": TaskApi(manager)})
    bridge.set_ready()

    def call(method: str, **params: Any) -> Any:
        return bridge.prepare(method, params)()

    return call


def test_every_task_verb_is_implemented(manager: TaskManager) -> None:
    bridge = Bridge(Schema.default(), {"Task": TaskApi(manager)})
    task_verbs = [m for m in bridge.implemented() if m.startswith("Task.")]
    assert task_verbs == [
        "Task.clear",
        "Task.getInfo",
        "Task.getStatus",
        "Task.revert",
        "Task.stop",
    ]


def test_status_info_revert_clear(manager: TaskManager, call: Any) -> None:
    def work(ctx: TaskContext) -> None:
        ctx.add_recovery("undo", {})

    task_id = manager.schedule("Volume.create", work)
    manager.wait(task_id, WAIT)
    assert call("Task.getStatus", taskID=task_id) == {
        "taskID": task_id,
        "taskState": "finished",
        "taskResult": "success",
        "code": 0,
        "message": "1 jobs completed successfully",
    }
    assert call("Task.getInfo", taskID=task_id) == {"id": task_id, "verb": "Volume.create"}
    call("Task.revert", taskID=task_id)
    assert manager.wait(task_id, WAIT)["taskResult"] == "cleanSuccess"
    call("Task.clear", taskID=task_id)
    with pytest.raises(se.UnknownTask):
        call("Task.getStatus", taskID=task_id)


def test_stop(manager: TaskManager, call: Any) -> None:
    started, release = threading.Event(), threading.Event()

    def work(ctx: TaskContext) -> None:
        started.set()
        release.wait(WAIT)
        ctx.check_aborted()

    task_id = manager.schedule("Image.delete", work)
    assert started.wait(WAIT)
    call("Task.stop", taskID=task_id)
    assert call("Task.getStatus", taskID=task_id)["taskState"] == "aborting"
    release.set()
    assert manager.wait(task_id, WAIT)["code"] == 411


def test_host_maps(manager: TaskManager) -> None:
    api = TaskApi(manager)
    task_id = manager.schedule("Volume.delete", lambda ctx: None, tag="pool")
    status = manager.wait(task_id, WAIT)
    assert api.all_statuses() == {task_id: status}
    assert api.all_info() == {task_id: {"id": task_id, "verb": "Volume.delete"}}
    assert api.all_details() == {
        task_id: {
            "id": task_id,
            "verb": "Volume.delete",
            "state": "finished",
            "tag": "pool",
            "code": 0,
            "message": "1 jobs completed successfully",
            "result": None,
        }
    }
