"""The server-side STOMP state machine and the broker's routing, without sockets."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from virthost.rpc.events import Event
from virthost.rpc.jsonrpc import CallOrigin
from virthost.rpc.stomp.broker import LEGACY_RESPONSE_DESTINATION, StompBroker
from virthost.rpc.stomp.connection import StompConnection
from virthost.rpc.stomp.frame import Frame, FrameParser, encode


class FakeJsonRpc:
    def __init__(self) -> None:
        self.requests: list[tuple[bytes, CallOrigin]] = []

    def handle(self, data: bytes, origin: CallOrigin, respond: Callable[[bytes], None]) -> bool:
        self.requests.append((data, origin))
        request = json.loads(data)
        respond(json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": True}).encode())
        return True


class Timer:
    def __init__(self, delay: float, func: Callable[[], None]) -> None:
        self.delay, self.func, self.cancelled = delay, func, False

    def cancel(self) -> None:
        self.cancelled = True


class Peer:
    """One client connection with captured output."""

    def __init__(self, broker: StompBroker, max_frame_size: int = 4096) -> None:
        self.out = bytearray()
        self.closed = False
        self.timers: list[Timer] = []
        self.parser = FrameParser()
        self.conn = StompConnection(
            broker, "peer:1", self.out.extend, self._close, self._later, max_frame_size
        )

    def _close(self) -> None:
        self.closed = True

    def _later(self, delay: float, func: Callable[[], None]) -> Timer:
        timer = Timer(delay, func)
        self.timers.append(timer)
        return timer

    def send(self, command: str, headers: dict[str, str] | None = None, body: bytes = b"") -> None:
        self.conn.data_received(encode(Frame(command, headers or {}, body)))

    def frames(self) -> list[Frame]:
        data = bytes(self.out)
        self.out.clear()
        return self.parser.feed(data)


@pytest.fixture
def broker() -> tuple[StompBroker, FakeJsonRpc]:
    rpc = FakeJsonRpc()
    # call_soon_threadsafe: run at once (the tests are single-threaded)
    b = StompBroker(rpc, lambda f, *a: f(*a), ["jms.topic.vdsm_requests"], "jms.queue.events")  # type: ignore[arg-type]
    return b, rpc


def connected(broker: StompBroker, heart_beat: str = "0,0") -> Peer:
    peer = Peer(broker)
    peer.send("CONNECT", {"accept-version": "1.2", "heart-beat": heart_beat})
    [frame] = peer.frames()
    assert frame.command == "CONNECTED"
    return peer


def test_connect_negotiates_heart_beats(broker: tuple[StompBroker, Any]) -> None:
    peer = Peer(broker[0])
    peer.send("CONNECT", {"accept-version": "1.1,1.2", "heart-beat": "200,5000"})
    [frame] = peer.frames()
    assert frame.headers["version"] == "1.2"
    # the client can send every 200 ms (raised to 1000), wants ours every 5000 ms
    assert frame.headers["heart-beat"] == "5000,1000"
    assert sorted(t.delay for t in peer.timers) == [1.0, 5.0]


def test_version_1_0_only_is_refused(broker: tuple[StompBroker, Any]) -> None:
    peer = Peer(broker[0])
    peer.send("CONNECT", {"accept-version": "1.0"})
    [frame] = peer.frames()
    assert frame.command == "ERROR"
    assert frame.headers["message"] == "Version unsupported"
    assert peer.closed


def test_frames_before_connect_are_refused(broker: tuple[StompBroker, Any]) -> None:
    peer = Peer(broker[0])
    peer.send("SEND", {"destination": "x"})
    assert peer.frames()[0].command == "ERROR"
    assert peer.closed


def test_request_answered_to_reply_to_subscribers(broker: tuple[StompBroker, FakeJsonRpc]) -> None:
    b, rpc = broker
    peer = connected(b)
    peer.send("SUBSCRIBE", {"destination": "my-replies", "id": "s1"})
    body = json.dumps({"jsonrpc": "2.0", "id": "r1", "method": "Host.ping2"}).encode()
    peer.send(
        "SEND",
        {
            "destination": "jms.topic.vdsm_requests",
            "reply-to": "my-replies",
            "ovirtCorrelationId": "flow-7",
        },
        body,
    )
    [message] = peer.frames()
    assert message.command == "MESSAGE"
    assert message.headers["destination"] == "my-replies"
    assert message.headers["subscription"] == "s1"
    assert json.loads(message.body)["id"] == "r1"
    assert rpc.requests[0][1] == CallOrigin("peer:1", "flow-7")


def test_reply_without_reply_to_goes_to_the_legacy_queue(
    broker: tuple[StompBroker, FakeJsonRpc],
) -> None:
    peer = connected(broker[0])
    peer.send("SUBSCRIBE", {"destination": LEGACY_RESPONSE_DESTINATION, "id": "legacy"})
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "Host.ping2"}).encode()
    peer.send("SEND", {"destination": "jms.topic.vdsm_requests"}, body)
    assert peer.frames()[0].headers["subscription"] == "legacy"


def test_send_reaches_subscribers_of_parent_destinations(
    broker: tuple[StompBroker, Any],
) -> None:
    b = broker[0]
    listener = connected(b)
    listener.send("SUBSCRIBE", {"destination": "a.b", "id": "parent"})
    sender = connected(b)
    sender.send("SEND", {"destination": "a.b.c"}, b"hello")
    [message] = listener.frames()
    assert (message.headers["subscription"], message.body) == ("parent", b"hello")


def test_send_to_nowhere_is_an_error(broker: tuple[StompBroker, Any]) -> None:
    peer = connected(broker[0])
    peer.send("SEND", {"destination": "nobody.listens"}, b"x")
    frame = peer.frames()[0]
    assert frame.headers["message"] == "Subscription not available"


@pytest.mark.parametrize(
    ("command", "headers"),
    [
        ("SUBSCRIBE", {"id": "x"}),
        ("SUBSCRIBE", {"destination": "d"}),
        ("SEND", {}),
        ("UNSUBSCRIBE", {}),
    ],
)
def test_missing_headers(
    broker: tuple[StompBroker, Any], command: str, headers: dict[str, str]
) -> None:
    peer = connected(broker[0])
    peer.send(command, headers)
    frame = peer.frames()[0]
    assert frame.command == "ERROR"
    assert "Missing header" in frame.headers["message"]
    assert peer.closed


def test_unknown_command(broker: tuple[StompBroker, Any]) -> None:
    peer = connected(broker[0])
    peer.conn.data_received(b"FROB\n\n\x00")
    frame = peer.frames()[0]
    assert frame.command == "ERROR" and "FROB" in frame.headers["message"]


def test_receipts_and_disconnect(broker: tuple[StompBroker, Any]) -> None:
    b = broker[0]
    peer = connected(b)
    peer.send("SUBSCRIBE", {"destination": "d", "id": "s", "receipt": "r-sub"})
    assert peer.frames()[0].headers["receipt-id"] == "r-sub"
    assert b.subscription_count() == 1
    peer.send("DISCONNECT", {"receipt": "bye"})
    assert peer.frames()[0].headers["receipt-id"] == "bye"
    assert peer.closed
    assert b.subscription_count() == 0


def test_oversize_frame_is_refused(broker: tuple[StompBroker, Any]) -> None:
    peer = connected(broker[0])
    peer.send("SEND", {"destination": "jms.topic.vdsm_requests"}, b"x" * 10000)
    frame = peer.frames()[0]
    assert frame.command == "ERROR" and "Malformed" in frame.headers["message"]
    assert peer.closed


def test_events_reach_event_queue_subscribers(broker: tuple[StompBroker, Any]) -> None:
    b = broker[0]
    peer = connected(b)
    peer.send("SUBSCRIBE", {"destination": "jms.queue.events", "id": "ev"})
    b.publish_event(Event("|virt|VM_status|x", {"x": {"status": "Up"}, "notify_time": 5}))
    [message] = peer.frames()
    assert json.loads(message.body) == {
        "jsonrpc": "2.0",
        "method": "|virt|VM_status|x",
        "params": {"x": {"status": "Up"}, "notify_time": 5},
    }


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    import virthost.rpc.stomp.connection as connection

    now = [1000.0]
    monkeypatch.setattr(connection.time, "monotonic", lambda: now[0])
    return now


def test_heart_beats_are_sent_when_idle(
    broker: tuple[StompBroker, Any], clock: list[float]
) -> None:
    peer = connected(broker[0], heart_beat="0,1000")
    [beat] = peer.timers
    clock[0] += 1.0
    beat.func()
    assert bytes(peer.out) == b"\n"


def test_silent_client_is_dropped(broker: tuple[StompBroker, Any], clock: list[float]) -> None:
    peer = connected(broker[0], heart_beat="1000,0")
    [check] = peer.timers
    clock[0] += 1.5
    check.func()
    assert not peer.closed
    clock[0] += 1.0
    peer.timers[-1].func()
    assert peer.closed


def test_client_heart_beats_keep_it_alive(
    broker: tuple[StompBroker, Any], clock: list[float]
) -> None:
    peer = connected(broker[0], heart_beat="1000,0")
    for _ in range(5):
        clock[0] += 1.0
        peer.conn.data_received(b"\n")
        peer.timers[-1].func()
    assert not peer.closed
