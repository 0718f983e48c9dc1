"""JSON-RPC over STOMP: request frames, response matching, errors, timeouts, batches, events."""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from unit.client.client_fakes import NO_REPLY, FakeServer, RpcFault
from virthost.client import errors
from virthost.client.jsonrpc_client import EVENT_QUEUE, Event, JsonRpcClient
from virthost.client.stomp_client import open_connection
from virthost.rpc.stomp.frame import Frame


@pytest.fixture
def rpc(server: FakeServer) -> Iterator[JsonRpcClient]:
    client = JsonRpcClient(open_connection("127.0.0.1", server.port, timeout=10))
    yield client
    client.connection.close()


def test_call_returns_the_result(server: FakeServer, rpc: JsonRpcClient) -> None:
    server.handlers["Host.echo"] = lambda params: {"got": params}
    assert rpc.call("Host.echo", {"a": [1, 2]}, timeout=10) == {"got": {"a": [1, 2]}}


def test_request_frame(server: FakeServer, rpc: JsonRpcClient) -> None:
    rpc.call("Host.ping2", timeout=10)
    subscribe = server.frames("SUBSCRIBE")[0]
    (send,) = server.frames("SEND")
    assert server.received.index(subscribe) < server.received.index(send)
    assert subscribe.headers["destination"] == rpc.reply_to
    assert send.headers["destination"] == "jms.topic.vdsm_requests"
    assert send.headers["reply-to"] == rpc.reply_to
    assert send.headers["content-type"] == "application/json"
    assert "ovirtCorrelationId" not in send.headers
    request = json.loads(send.body)
    assert request["jsonrpc"] == "2.0"
    assert request["method"] == "Host.ping2"
    assert request["params"] == {}
    assert isinstance(request["id"], str)


def test_flow_id_header(server: FakeServer, rpc: JsonRpcClient) -> None:
    rpc.call("Host.ping2", timeout=10, flow_id="flow-7")
    assert server.frames("SEND")[0].headers["ovirtCorrelationId"] == "flow-7"


def test_positional_params(server: FakeServer, rpc: JsonRpcClient) -> None:
    server.handlers["Host.echo"] = lambda params: params
    assert rpc.call("Host.echo", [1, "x"], timeout=10) == [1, "x"]


def test_bad_params_are_a_client_error(rpc: JsonRpcClient) -> None:
    with pytest.raises(errors.ClientError):
        rpc.call("Host.echo", "text", timeout=10)  # type: ignore[arg-type]
    with pytest.raises(errors.ClientError):
        rpc.call("Host.echo", {"x": object()}, timeout=10)


def test_server_error(server: FakeServer, rpc: JsonRpcClient) -> None:
    def fail(params: Any) -> Any:
        raise RpcFault(44, "Method not implemented")

    server.handlers["Host.nope"] = fail
    with pytest.raises(errors.ServerError) as info:
        rpc.call("Host.nope", timeout=10)
    assert (info.value.code, info.value.message) == (44, "Method not implemented")
    assert str(info.value) == "error 44: Method not implemented"


def test_timeout(server: FakeServer, rpc: JsonRpcClient) -> None:
    server.handlers["Host.silent"] = lambda params: NO_REPLY
    with pytest.raises(errors.TimeoutError, match=r"Host\.silent"):
        rpc.call("Host.silent", timeout=0.2)
    assert rpc.call("Host.ping2", timeout=10) is True  # the connection is still usable


def test_responses_are_matched_by_id(server: FakeServer, rpc: JsonRpcClient) -> None:
    server.hold_replies = 3  # answers the three calls together, in reverse order
    server.handlers["Host.echo"] = lambda params: params["n"]
    results: dict[int, Any] = {}

    def call(n: int) -> None:
        results[n] = rpc.call("Host.echo", {"n": n}, timeout=10)

    threads = [threading.Thread(target=call, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {0: 0, 1: 1, 2: 2}


def test_batch(server: FakeServer, rpc: JsonRpcClient) -> None:
    server.handlers["Host.echo"] = lambda params: params
    results = rpc.batch([("Host.echo", {"a": 1}), ("Host.missing", None), ("Host.ping2", {})])
    assert results[0] == {"a": 1}
    assert isinstance(results[1], errors.ServerError)
    assert results[1].code == -32601
    assert results[2] is True
    assert isinstance(json.loads(server.frames("SEND")[0].body), list)
    assert rpc.batch([]) == []


def test_connection_loss_fails_pending_calls(server: FakeServer, rpc: JsonRpcClient) -> None:
    def die(params: Any) -> Any:
        server.drop_client()
        return NO_REPLY

    server.handlers["Host.die"] = die
    with pytest.raises(errors.ConnectionError):
        rpc.call("Host.die", timeout=30)
    with pytest.raises(errors.ConnectionError):
        rpc.call("Host.ping2", timeout=30)
    assert rpc.closed


def test_error_frame_reaches_pending_caller(server: FakeServer, rpc: JsonRpcClient) -> None:
    def refuse(params: Any) -> Any:
        server.send_frame(Frame("ERROR", {"message": "Subscription not available"}))
        return NO_REPLY

    server.handlers["Host.refused"] = refuse
    with pytest.raises(errors.StompError, match="Subscription not available"):
        rpc.call("Host.refused", timeout=30)


def test_events_to_a_queue(server: FakeServer, rpc: JsonRpcClient) -> None:
    events: queue.Queue[Event] = queue.Queue()
    sub_id = rpc.subscribe(events)
    assert server.wait_until(lambda: server.subscriptions.get(sub_id) == EVENT_QUEUE)
    params = {"vm-1": {"status": "Up"}, "notify_time": 42}
    server.publish(
        EVENT_QUEUE, {"jsonrpc": "2.0", "method": "|virt|VM_status|vm-1", "params": params}
    )
    server.publish(EVENT_QUEUE, [{"jsonrpc": "2.0", "method": "|net|host_conn|no_id"}])
    assert events.get(timeout=10) == Event("|virt|VM_status|vm-1", params)
    assert events.get(timeout=10) == Event("|net|host_conn|no_id", None)
    rpc.unsubscribe(sub_id)
    assert server.wait_until(lambda: sub_id not in server.subscriptions)


def test_event_callback_may_call_the_client(server: FakeServer, rpc: JsonRpcClient) -> None:
    answers: queue.Queue[tuple[str, Any, str]] = queue.Queue()

    def on_event(event: Event) -> None:
        result = rpc.call("Host.ping2", timeout=10)
        answers.put((event.method, result, threading.current_thread().name))

    rpc.subscribe(on_event, destination="custom.events")
    assert server.wait_until(lambda: "custom.events" in server.subscriptions.values())
    server.publish("custom.events", {"jsonrpc": "2.0", "method": "|jobs|status|1", "params": {}})
    method, result, thread_name = answers.get(timeout=10)
    assert (method, result) == ("|jobs|status|1", True)
    assert not thread_name.startswith("stomp-io")


def test_malformed_messages_are_dropped(server: FakeServer, rpc: JsonRpcClient) -> None:
    events: queue.Queue[Event] = queue.Queue()
    rpc.subscribe(events)
    assert server.wait_until(lambda: EVENT_QUEUE in server.subscriptions.values())
    server.publish(EVENT_QUEUE, ["junk", {"no": "method"}])
    server.publish(rpc.reply_to, {"jsonrpc": "2.0", "id": "unknown", "result": 1})
    server.publish(EVENT_QUEUE, {"jsonrpc": "2.0", "method": "ok"})
    assert events.get(timeout=10).method == "ok"
    assert rpc.call("Host.ping2", timeout=10) is True
