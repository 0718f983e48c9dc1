"""The JSON-RPC engine: requests, batches, notifications and errors, without a transport."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from virthost.common import errors
from virthost.rpc.jsonrpc import CallOrigin, JsonRpcServer


@dataclass
class FakeCall:
    method: str
    fast: bool
    func: Callable[[], Any]

    def __call__(self) -> Any:
        return self.func()


@dataclass
class FakeDispatcher:
    verbs: dict[str, Callable[..., Any]] = field(default_factory=dict)
    fast: set[str] = field(default_factory=set)

    def prepare(self, method: str, params: Any) -> FakeCall:
        if method not in self.verbs:
            raise errors.MethodNotFound(method)
        if not isinstance(params, dict):
            params = {}
        func = self.verbs[method]
        return FakeCall(method, method in self.fast, lambda: func(**params))


class InlineExecutor:
    def __init__(self, refuse: bool = False) -> None:
        self.dispatched = 0
        self.refuse = refuse

    def dispatch(
        self, func: Callable[[], object], timeout: float | None = None, discard: bool = True
    ) -> None:
        if self.refuse:
            raise errors.ResourceExhausted("queue full")
        self.dispatched += 1
        func()


def _echo(message: str) -> str:
    return message


def _boom() -> None:
    raise RuntimeError("secret internal detail")


@pytest.fixture
def server() -> tuple[JsonRpcServer, InlineExecutor]:
    dispatcher = FakeDispatcher(
        verbs={
            "Host.echo": _echo,
            "Host.ping2": lambda: None,
            "Host.boom": _boom,
            "VM.getStats": lambda vmID: (_ for _ in ()).throw(errors.NoSuchVM(vmID)),
            "Host.bad": lambda: object(),
        },
        fast={"Host.ping2"},
    )
    executor = InlineExecutor()
    return JsonRpcServer(dispatcher, executor), executor


def call(server: JsonRpcServer, payload: Any) -> tuple[bool, list[Any]]:
    answers: list[Any] = []
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    expects = server.handle(raw, CallOrigin("test"), lambda data: answers.append(json.loads(data)))
    return expects, answers


def test_result_and_id_are_returned(server: tuple[JsonRpcServer, InlineExecutor]) -> None:
    rpc, executor = server
    _, answers = call(
        rpc, {"jsonrpc": "2.0", "id": "a", "method": "Host.echo", "params": {"message": "hi"}}
    )
    assert answers == [{"jsonrpc": "2.0", "id": "a", "result": "hi"}]
    assert executor.dispatched == 1


def test_none_result_becomes_true_and_fast_verbs_skip_the_executor(
    server: tuple[JsonRpcServer, InlineExecutor],
) -> None:
    rpc, executor = server
    _, answers = call(rpc, {"jsonrpc": "2.0", "id": 1, "method": "Host.ping2"})
    assert answers[0]["result"] is True
    assert executor.dispatched == 0


def test_parse_error(server: tuple[JsonRpcServer, InlineExecutor]) -> None:
    _, answers = call(server[0], b"{not json")
    assert answers[0]["error"]["code"] == -32700
    assert answers[0]["id"] is None


@pytest.mark.parametrize(
    "payload",
    [
        [],
        {"jsonrpc": "1.0", "id": 1, "method": "Host.ping2"},
        {"jsonrpc": "2.0", "id": 1, "method": 7},
        {"jsonrpc": "2.0", "id": 1, "method": "Host.ping2", "params": "x"},
        {"jsonrpc": "2.0", "id": [1], "method": "Host.ping2"},
        "just a string",
    ],
)
def test_invalid_requests(server: tuple[JsonRpcServer, InlineExecutor], payload: Any) -> None:
    _, answers = call(server[0], payload)
    assert answers[0]["error"]["code"] == -32600


def test_unknown_method(server: tuple[JsonRpcServer, InlineExecutor]) -> None:
    _, answers = call(server[0], {"jsonrpc": "2.0", "id": 3, "method": "Nope.nothing"})
    assert answers == [
        {
            "jsonrpc": "2.0",
            "id": 3,
            "error": {
                "code": -32601,
                "message": "The method does not exist or is not available: Nope.nothing",
            },
        }
    ]


def test_service_error_keeps_its_vdsm_code(server: tuple[JsonRpcServer, InlineExecutor]) -> None:
    _, answers = call(
        server[0], {"jsonrpc": "2.0", "id": 4, "method": "VM.getStats", "params": {"vmID": "x"}}
    )
    assert answers[0]["error"]["code"] == 1


def test_unexpected_error_hides_the_traceback(server: tuple[JsonRpcServer, InlineExecutor]) -> None:
    _, answers = call(server[0], {"jsonrpc": "2.0", "id": 5, "method": "Host.boom"})
    error = answers[0]["error"]
    assert error["code"] == 16
    assert "secret" not in error["message"]
    assert "Traceback" not in json.dumps(answers)


def test_unencodable_result_is_an_error(server: tuple[JsonRpcServer, InlineExecutor]) -> None:
    _, answers = call(server[0], {"jsonrpc": "2.0", "id": 6, "method": "Host.bad"})
    assert answers[0]["error"]["code"] == 16


def test_notification_is_run_but_not_answered(server: tuple[JsonRpcServer, InlineExecutor]) -> None:
    rpc, executor = server
    expects, answers = call(
        rpc, {"jsonrpc": "2.0", "method": "Host.echo", "params": {"message": "x"}}
    )
    assert not expects
    assert answers == []
    assert executor.dispatched == 1


def test_failing_notification_is_not_answered(server: tuple[JsonRpcServer, InlineExecutor]) -> None:
    expects, answers = call(server[0], {"jsonrpc": "2.0", "method": "Nope.nothing"})
    assert (expects, answers) == (False, [])


def test_batch_answers_once_without_notifications(
    server: tuple[JsonRpcServer, InlineExecutor],
) -> None:
    expects, answers = call(
        server[0],
        [
            {"jsonrpc": "2.0", "id": 1, "method": "Host.echo", "params": {"message": "one"}},
            {"jsonrpc": "2.0", "method": "Host.echo", "params": {"message": "silent"}},
            {"jsonrpc": "2.0", "id": 2, "method": "Nope.x"},
            5,
        ],
    )
    assert expects
    assert len(answers) == 1
    batch = answers[0]
    assert {"jsonrpc": "2.0", "id": 1, "result": "one"} in batch
    assert any(a.get("id") == 2 and a["error"]["code"] == -32601 for a in batch)
    assert any(a.get("id") is None and a["error"]["code"] == -32600 for a in batch)
    assert len(batch) == 3


def test_batch_of_notifications_gets_no_answer(
    server: tuple[JsonRpcServer, InlineExecutor],
) -> None:
    expects, answers = call(server[0], [{"jsonrpc": "2.0", "method": "Host.ping2"}] * 3)
    assert (expects, answers) == (False, [])


def test_full_queue_is_refused_with_1100() -> None:
    rpc = JsonRpcServer(FakeDispatcher(verbs={"Host.echo": _echo}), InlineExecutor(refuse=True))
    _, answers = call(
        rpc, {"jsonrpc": "2.0", "id": 9, "method": "Host.echo", "params": {"message": "m"}}
    )
    assert answers[0]["error"]["code"] == 1100
