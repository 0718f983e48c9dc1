"""An independent STOMP 1.2 client (stomp.py from PyPI) drives the daemon over mutual TLS.

Our own client and server share one frame codec, so a shared misreading of the
specification would go unnoticed by the other tests; this peer was written by others.
"""

from __future__ import annotations

import json
import queue
import uuid
from typing import Any

import pytest
import stomp

from fixtures.daemon import Services

pytestmark = pytest.mark.integration


class Collector(stomp.ConnectionListener):  # type: ignore[misc]
    def __init__(self) -> None:
        self.messages: queue.Queue[Any] = queue.Queue()
        self.errors: queue.Queue[Any] = queue.Queue()

    def on_message(self, frame: Any) -> None:
        self.messages.put(frame)

    def on_error(self, frame: Any) -> None:
        self.errors.put(frame)


def _connect(services: Services, heartbeats: tuple[int, int] = (0, 0)) -> tuple[Any, Collector]:
    pki = services.pki
    conn = stomp.Connection12([("127.0.0.1", services.port)], heartbeats=heartbeats)
    conn.set_ssl(
        for_hosts=[("127.0.0.1", services.port)],
        key_file=str(pki.key("client")),
        cert_file=str(pki.cert("client")),
        ca_certs=str(pki.ca_cert),
    )
    listener = Collector()
    conn.set_listener("collector", listener)
    conn.connect(wait=True)
    return conn, listener


def test_request_and_answer(services: Services) -> None:
    conn, listener = _connect(services)
    try:
        reply = f"reply-{uuid.uuid4()}"
        conn.subscribe(destination=reply, id="1", ack="auto")
        request = {
            "jsonrpc": "2.0",
            "id": "x1",
            "method": "Host.echo",
            "params": {"message": "über: \\ colon"},
        }
        conn.send(
            destination="jms.topic.vdsm_requests",
            body=json.dumps(request),
            content_type="application/json",
            headers={"reply-to": reply},
        )
        frame = listener.messages.get(timeout=10)
        assert json.loads(frame.body) == {"jsonrpc": "2.0", "id": "x1", "result": "über: \\ colon"}
        assert frame.headers["destination"] == reply
        assert frame.headers["subscription"] == "1"
    finally:
        conn.disconnect()


def test_heart_beats_are_negotiated(services: Services) -> None:
    conn, listener = _connect(services, heartbeats=(1000, 1000))
    try:
        reply = f"reply-{uuid.uuid4()}"
        conn.subscribe(destination=reply, id="hb")
        import time

        time.sleep(3.5)  # several heart-beat periods in both directions
        assert conn.is_connected()
        body = json.dumps({"jsonrpc": "2.0", "id": 2, "method": "Host.ping2"})
        conn.send(destination="jms.topic.vdsm_requests", body=body, headers={"reply-to": reply})
        assert json.loads(listener.messages.get(timeout=10).body)["result"] is True
        assert listener.errors.empty()
    finally:
        conn.disconnect()


def test_events_between_independent_clients(services: Services) -> None:
    receiver, listener = _connect(services)
    sender, _ = _connect(services)
    try:
        receiver.subscribe(destination="jms.queue.events", id="ev", headers={"receipt": "r"})
        import time

        time.sleep(0.3)
        event = {"jsonrpc": "2.0", "method": "|test|third|party", "params": {"notify_time": 3}}
        sender.send(destination="jms.queue.events", body=json.dumps(event))
        assert json.loads(listener.messages.get(timeout=10).body) == event
    finally:
        sender.disconnect()
        receiver.disconnect()
