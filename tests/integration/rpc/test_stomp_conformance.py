"""STOMP 1.2 conformance of the real daemon over mutual TLS, byte by byte.

Every test talks to the same daemon; after each one a client connected at the start of the
module must still be served, so no bad input may disturb other clients.
"""

from __future__ import annotations

import json
import socket
import ssl
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures import daemon as daemon_fixtures
from fixtures.wire import RawStomp
from virthost.common.pki import PkiPaths, client_context, create_ca, issue
from virthost.rpc.stomp.frame import Frame, encode

pytestmark = pytest.mark.integration

MAX_FRAME = 256 * 1024


@pytest.fixture(scope="module")
def services(pki: PkiPaths) -> Iterator[daemon_fixtures.Services]:
    running = daemon_fixtures.start_services(pki, overrides={"rpc": {"max_frame_size": MAX_FRAME}})
    yield running
    daemon_fixtures.cleanup(running)


@pytest.fixture(scope="module")
def bystander(services: daemon_fixtures.Services) -> Iterator[RawStomp]:
    conn = services.raw()
    conn.connect()
    yield conn
    conn.close()


@pytest.fixture(autouse=True)
def others_still_served(bystander: RawStomp) -> Iterator[None]:
    yield
    assert bystander.call("Host.ping2")["result"] is True


@pytest.fixture
def conn(services: daemon_fixtures.Services) -> Iterator[RawStomp]:
    c = services.raw()
    yield c
    c.close()


def request(method: str, reply: str, params: object = None, request_id: str = "1") -> bytes:
    body = json.dumps(
        {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or {}}
    ).encode()
    return encode(
        Frame(
            "SEND",
            {
                "destination": "jms.topic.vdsm_requests",
                "reply-to": reply,
                "content-type": "application/json",
            },
            body,
        )
    )


def test_connect_answers_connected_with_version(conn: RawStomp) -> None:
    frame = conn.connect(heart_beat="0,0")
    assert frame.command == "CONNECTED"
    assert frame.headers["version"] == "1.2"
    assert frame.headers["heart-beat"] == "0,0"


def test_stomp_command_is_connect(conn: RawStomp) -> None:
    conn.send("STOMP", {"accept-version": "1.2"})
    assert conn.recv_frame().command == "CONNECTED"


def test_unsupported_version_is_refused(conn: RawStomp) -> None:
    conn.send("CONNECT", {"accept-version": "1.1"})
    frame = conn.recv_frame()
    assert frame.command == "ERROR" and frame.headers["message"] == "Version unsupported"
    assert conn.is_closed_by_peer()


def test_header_escaping_both_ways(conn: RawStomp) -> None:
    conn.connect()
    odd = "odd:dest\\with\nlines\r"
    conn.subscribe(odd, "sub:1")
    raw = b"SEND\ndestination:odd\\cdest\\\\with\\nlines\\r\ncontent-length:2\n\nhi\x00"
    conn.send_bytes(raw)
    frame = conn.recv_frame()
    assert frame.command == "MESSAGE"
    assert frame.headers["destination"] == odd
    assert frame.headers["subscription"] == "sub:1"
    assert frame.body == b"hi"


def test_server_escapes_what_it_sends(conn: RawStomp) -> None:
    conn.connect()
    conn.send("SUBSCRIBE", {"destination": "a:b", "id": "x", "receipt": "r\n1"})
    conn.sock.settimeout(5)
    data = b""
    while b"\x00" not in data:
        data += conn.sock.recv(4096)
    assert b"receipt-id:r\\n1\n" in data


def test_invalid_escape_is_an_error(conn: RawStomp) -> None:
    conn.connect()
    conn.send_bytes(b"SUBSCRIBE\ndestination:a\\tb\nid:1\n\n\x00")
    frame = conn.recv_frame()
    assert frame.command == "ERROR"
    assert conn.is_closed_by_peer()


def test_body_with_nul_bytes_under_content_length(conn: RawStomp) -> None:
    conn.connect()
    conn.subscribe("binary.dest")
    payload = b"a\x00b\x00\x00c"
    conn.send("SEND", {"destination": "binary.dest"}, payload)
    frame = conn.recv_frame()
    assert frame.body == payload
    assert frame.headers["content-length"] == str(len(payload))


def test_request_split_at_every_byte_boundary(conn: RawStomp) -> None:
    conn.connect()
    reply = conn.subscribe(f"reply-{uuid.uuid4()}")
    del reply
    dest = f"reply-{uuid.uuid4()}"
    conn.subscribe(dest)
    data = request("Host.ping2", dest)
    for cut in range(1, len(data)):
        conn.send_bytes(data[:cut])
        time.sleep(0.001)
        conn.send_bytes(data[cut:])
        frame = conn.recv_frame()
        assert json.loads(frame.body)["result"] is True, cut


def test_several_frames_in_one_write(conn: RawStomp) -> None:
    dest = f"reply-{uuid.uuid4()}"
    stream = (
        encode(Frame("CONNECT", {"accept-version": "1.2"}))
        + b"\n\n"
        + encode(Frame("SUBSCRIBE", {"destination": dest, "id": "s", "receipt": "ok"}))
        + request("Host.ping2", dest, request_id="a")
        + b"\r\n"
        + request("Host.echo", dest, {"message": "two"}, request_id="b")
    )
    conn.send_bytes(stream)
    assert conn.recv_frame().command == "CONNECTED"
    assert conn.recv_frame().headers["receipt-id"] == "ok"
    answers = {}
    for _ in range(2):
        body = json.loads(conn.recv_frame().body)
        answers[body["id"]] = body["result"]
    assert answers == {"a": True, "b": "two"}


def test_server_sends_heart_beats(conn: RawStomp) -> None:
    frame = conn.connect(heart_beat="0,1000")
    assert frame.headers["heart-beat"] == "1000,0"
    conn.sock.settimeout(5)
    assert conn.sock.recv(16) == b"\n"


def test_client_heart_beats_keep_the_connection(conn: RawStomp) -> None:
    frame = conn.connect(heart_beat="1000,0")
    assert frame.headers["heart-beat"] == "0,1000"
    for _ in range(6):
        time.sleep(0.5)
        conn.send_bytes(b"\n")
    assert conn.call("Host.ping2")["result"] is True


def test_silent_client_is_disconnected(conn: RawStomp) -> None:
    conn.connect(heart_beat="1000,0")
    assert conn.is_closed_by_peer(timeout=10)


@pytest.mark.parametrize(
    ("command", "headers"),
    [
        ("SUBSCRIBE", {"id": "1"}),
        ("SUBSCRIBE", {"destination": "x"}),
        ("SEND", {}),
        ("UNSUBSCRIBE", {}),
    ],
)
def test_missing_headers(conn: RawStomp, command: str, headers: dict[str, str]) -> None:
    conn.connect()
    conn.send(command, headers)
    frame = conn.recv_frame()
    assert frame.command == "ERROR" and "Missing header" in frame.headers["message"]
    assert conn.is_closed_by_peer()


def test_unknown_command(conn: RawStomp) -> None:
    conn.connect()
    conn.send_bytes(b"FROBNICATE\n\n\x00")
    frame = conn.recv_frame()
    assert frame.command == "ERROR" and "FROBNICATE" in frame.headers["message"]
    assert conn.is_closed_by_peer()


def test_send_before_connect(conn: RawStomp) -> None:
    conn.send_bytes(request("Host.ping2", "x"))
    assert conn.recv_frame().command == "ERROR"
    assert conn.is_closed_by_peer()


def test_oversize_frame_is_refused_and_closed(conn: RawStomp) -> None:
    conn.connect()
    conn.send_bytes(b"SEND\ndestination:jms.topic.vdsm_requests\n\n")
    with pytest.raises((ConnectionError, ssl.SSLError, OSError)):
        chunk = b"x" * 65536
        for _ in range(MAX_FRAME // len(chunk) + 64):
            conn.send_bytes(chunk)
        raise ConnectionError("the server kept reading")
    frames = conn.frames
    assert not frames or frames[0].command == "ERROR"


def test_oversize_frame_gets_error(conn: RawStomp) -> None:
    conn.connect()
    conn.send_bytes(b"SEND\ndestination:x\ncontent-length:%d\n\n" % (MAX_FRAME * 2))
    frame = conn.recv_frame()
    assert frame.command == "ERROR" and "large" in frame.headers["message"].lower()
    assert conn.is_closed_by_peer()


def test_disconnect_with_receipt(conn: RawStomp) -> None:
    conn.connect()
    conn.send("DISCONNECT", {"receipt": "bye-1"})
    frame = conn.recv_frame()
    assert (frame.command, frame.headers["receipt-id"]) == ("RECEIPT", "bye-1")
    assert conn.is_closed_by_peer()


def test_unsubscribe_stops_delivery(conn: RawStomp) -> None:
    conn.connect()
    conn.subscribe("topic.x", "t")
    conn.send("UNSUBSCRIBE", {"id": "t", "receipt": "u"})
    assert conn.recv_frame().command == "RECEIPT"
    conn.send("SEND", {"destination": "topic.x"}, b"nobody")
    frame = conn.recv_frame()
    assert frame.headers["message"] == "Subscription not available"


def test_invalid_json_is_a_parse_error(conn: RawStomp) -> None:
    conn.connect()
    dest = f"reply-{uuid.uuid4()}"
    conn.subscribe(dest)
    conn.send("SEND", {"destination": "jms.topic.vdsm_requests", "reply-to": dest}, b"{nope")
    answer = json.loads(conn.recv_frame().body)
    assert answer["error"]["code"] == -32700


def test_wrong_parameter_type_names_the_parameter(conn: RawStomp) -> None:
    conn.connect()
    answer = conn.call("Host.echo", {"message": 5})
    assert answer["error"]["code"] == -32602
    assert "message" in answer["error"]["message"]


def test_unknown_method(conn: RawStomp) -> None:
    conn.connect()
    assert conn.call("Host.noSuchVerb")["error"]["code"] == -32601


def test_requests_on_the_irs_queue(conn: RawStomp) -> None:
    conn.connect()
    dest = f"reply-{uuid.uuid4()}"
    conn.subscribe(dest)
    body = json.dumps({"jsonrpc": "2.0", "id": "s", "method": "Host.ping2"}).encode()
    conn.send("SEND", {"destination": "jms.topic.vdsm_irs_requests", "reply-to": dest}, body)
    assert json.loads(conn.recv_frame().body)["result"] is True


def test_notification_between_clients(services: daemon_fixtures.Services) -> None:
    listener, sender = services.raw(), services.raw()
    try:
        listener.connect()
        listener.subscribe("jms.queue.events")
        sender.connect()
        event = {"jsonrpc": "2.0", "method": "|test|hello|1", "params": {"notify_time": 1}}
        sender.send("SEND", {"destination": "jms.queue.events"}, json.dumps(event).encode())
        assert json.loads(listener.recv_frame().body) == event
    finally:
        listener.close()
        sender.close()


def _tls_refused(services: daemon_fixtures.Services, ctx: ssl.SSLContext) -> bool:
    try:
        conn = RawStomp.open(services.port, ctx)
    except (ssl.SSLError, ConnectionError, OSError):
        return True
    try:
        conn.connect()
    except (ssl.SSLError, ConnectionError, OSError, TimeoutError):
        return True
    finally:
        conn.close()
    return False


def test_client_without_certificate_is_refused(services: daemon_fixtures.Services) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(str(services.pki.ca_cert))
    ctx.check_hostname = False
    assert _tls_refused(services, ctx)


def test_certificate_from_another_ca_is_refused(
    services: daemon_fixtures.Services, tmp_path: Path
) -> None:
    other = PkiPaths(tmp_path / "other")
    create_ca(other, "intruder CA")
    issue(other, "client", "intruder", server=False)
    ctx = client_context(
        str(services.pki.ca_cert), str(other.cert("client")), str(other.key("client"))
    )
    assert _tls_refused(services, ctx)


def test_plain_tcp_to_the_tls_port_is_refused(services: daemon_fixtures.Services) -> None:
    with socket.create_connection(("127.0.0.1", services.port), timeout=10) as sock:
        sock.sendall(encode(Frame("CONNECT", {"accept-version": "1.2"})))
        sock.settimeout(10)
        try:
            data = sock.recv(1024)
        except ConnectionError:
            data = b""
        assert b"CONNECTED" not in data
