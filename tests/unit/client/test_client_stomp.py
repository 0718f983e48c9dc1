"""The STOMP client connection: login, subscriptions, sends, receipts, heart-beats, failures."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Generic, TypeVar

import pytest

from unit.client.client_fakes import FakeServer
from virthost.client import errors
from virthost.client.stomp_client import StompConnection, open_connection
from virthost.rpc.stomp.frame import Frame

T = TypeVar("T")


def connect(
    server: FakeServer, outgoing_heartbeat: int = 0, incoming_heartbeat: int = 30000
) -> StompConnection:
    return open_connection(
        "127.0.0.1",
        server.port,
        timeout=10,
        outgoing_heartbeat=outgoing_heartbeat,
        incoming_heartbeat=incoming_heartbeat,
    )


class Collector(Generic[T]):
    """A callback that keeps what it is given and signals its arrival."""

    def __init__(self) -> None:
        self.items: list[T] = []
        self.arrived = threading.Event()

    def __call__(self, item: T) -> None:
        self.items.append(item)
        self.arrived.set()


@pytest.fixture
def conn(server: FakeServer) -> Iterator[StompConnection]:
    connection = connect(server)
    yield connection
    connection.close()


def test_connect_frame(server: FakeServer, conn: StompConnection) -> None:
    (frame,) = server.frames("CONNECT")
    assert frame.headers == {
        "accept-version": "1.2",
        "host": "127.0.0.1",
        "heart-beat": "0,30000",
    }
    assert not conn.closed
    assert conn.heartbeat == (0, 0)  # the server offered none


def test_connect_refused() -> None:
    with socket_closed_port() as port, pytest.raises(errors.ConnectionError, match="cannot"):
        open_connection("127.0.0.1", port, timeout=5)


def test_error_instead_of_connected(server: FakeServer) -> None:
    server.connect_reply = Frame("ERROR", {"message": "Version unsupported"})
    with pytest.raises(errors.StompError, match="Version unsupported"):
        connect(server)


def test_other_stomp_version_is_refused(server: FakeServer) -> None:
    server.connected_headers["version"] = "1.1"
    with pytest.raises(errors.ConnectionError, match=r"1\.1"):
        connect(server)


@pytest.mark.parametrize(
    ("offer", "server_says", "expected"),
    [
        ((0, 30000), "30000,0", (0, 30000)),
        ((100, 200), "300,50", (100, 300)),
        ((100, 200), "0,0", (0, 0)),
        ((0, 0), "1000,1000", (0, 0)),
    ],
)
def test_heartbeat_negotiation(
    server: FakeServer, offer: tuple[int, int], server_says: str, expected: tuple[int, int]
) -> None:
    server.connected_headers["heart-beat"] = server_says
    connection = connect(server, outgoing_heartbeat=offer[0], incoming_heartbeat=offer[1])
    try:
        assert server.frames("CONNECT")[0].headers["heart-beat"] == f"{offer[0]},{offer[1]}"
        assert connection.heartbeat == expected
    finally:
        connection.close()


def test_outgoing_heartbeats_are_sent(server: FakeServer) -> None:
    server.connected_headers["heart-beat"] = "0,20"
    connection = connect(server, outgoing_heartbeat=20, incoming_heartbeat=0)
    try:
        assert server.wait_until(lambda: server.heartbeats >= 3)
        assert not connection.closed
    finally:
        connection.close()


def test_server_silence_kills_the_connection(server: FakeServer) -> None:
    server.connected_headers["heart-beat"] = "20,0"  # promises heart-beats it never sends
    connection = connect(server, incoming_heartbeat=20)
    ended: Collector[errors.ConnectionError] = Collector()
    connection.add_close_listener(ended)
    assert ended.arrived.wait(10)
    assert "heart-beat" in str(ended.items[0])
    assert connection.closed
    with pytest.raises(errors.ConnectionError):
        connection.send("q", b"x")


def test_subscribe_and_receive(server: FakeServer, conn: StompConnection) -> None:
    got: Collector[Frame] = Collector()
    sub_id = conn.subscribe("dest.a", got)
    assert server.wait_until(lambda: sub_id in server.subscriptions)
    (frame,) = server.frames("SUBSCRIBE")
    assert frame.headers == {"destination": "dest.a", "id": sub_id, "ack": "auto"}
    server.publish("dest.a", {"hello": 1})
    assert got.arrived.wait(10)
    assert got.items[0].body == b'{"hello": 1}'
    conn.unsubscribe(sub_id)
    assert server.wait_until(lambda: not server.subscriptions)
    assert server.frames("UNSUBSCRIBE")[0].headers == {"id": sub_id}


def test_message_without_subscription_header_is_routed_by_destination(
    server: FakeServer, conn: StompConnection
) -> None:
    got: Collector[Frame] = Collector()
    conn.subscribe("dest.b", got, sub_id="s1")
    assert server.wait_until(lambda: "s1" in server.subscriptions)
    server.send_frame(Frame("MESSAGE", {"destination": "dest.b"}, b"{}"))
    assert got.arrived.wait(10)


def test_duplicate_subscription_id(conn: StompConnection) -> None:
    conn.subscribe("a", lambda frame: None, sub_id="same")
    with pytest.raises(errors.ClientError):
        conn.subscribe("b", lambda frame: None, sub_id="same")
    with pytest.raises(errors.ClientError):
        conn.unsubscribe("unknown")


def test_send_headers_and_body(server: FakeServer, conn: StompConnection) -> None:
    conn.send("some.dest", b"\0binary\0", {"reply-to": "r", "x": "a:b"})
    assert server.wait_until(lambda: bool(server.frames("SEND")))
    (frame,) = server.frames("SEND")
    assert frame.headers == {
        "destination": "some.dest",
        "reply-to": "r",
        "x": "a:b",
        "content-length": "8",
    }
    assert frame.body == b"\0binary\0"


def test_disconnect_waits_for_receipt(server: FakeServer) -> None:
    connection = connect(server)
    connection.disconnect(timeout=10)
    (frame,) = server.frames("DISCONNECT")
    assert frame.headers["receipt"]
    assert connection.closed
    assert server.wait_until(lambda: server.client_gone)


def test_server_error_frame_fails_the_connection(server: FakeServer, conn: StompConnection) -> None:
    ended: Collector[errors.ConnectionError] = Collector()
    conn.add_close_listener(ended)
    server.send_frame(Frame("ERROR", {"message": "Subscription not available"}, b"details"))
    assert ended.arrived.wait(10)
    assert isinstance(ended.items[0], errors.StompError)
    assert ended.items[0].message == "Subscription not available"
    assert conn.failure is ended.items[0]


def test_eof_fails_the_connection(server: FakeServer, conn: StompConnection) -> None:
    ended: Collector[errors.ConnectionError] = Collector()
    conn.add_close_listener(ended)
    server.drop_client()
    assert ended.arrived.wait(10)
    assert conn.closed


def test_close_listener_added_after_close_is_called(conn: StompConnection) -> None:
    conn.close()
    called: list[errors.ConnectionError] = []
    conn.add_close_listener(called.append)
    assert len(called) == 1


def test_garbage_from_server_fails_the_connection(
    server: FakeServer, conn: StompConnection
) -> None:
    ended: Collector[errors.ConnectionError] = Collector()
    conn.add_close_listener(ended)
    assert server._conn is not None
    server._conn.sendall(b"not stomp\n\n\0")
    assert ended.arrived.wait(10)
    assert "bad STOMP" in str(ended.items[0])


class socket_closed_port:
    """A localhost port with nothing listening."""

    def __enter__(self) -> int:
        import socket

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = int(sock.getsockname()[1])
        sock.close()
        return self.port

    def __exit__(self, *exc_info: object) -> None:
        return None
