"""Test doubles for the client tests: a tiny schema and a scriptable in-process STOMP responder.

The responder speaks just enough STOMP 1.2 (through our own frame codec) and JSON-RPC to
exercise the client: CONNECT, SUBSCRIBE/UNSUBSCRIBE, SEND to the request queue answered on the
``reply-to`` subscriptions, DISCONNECT with RECEIPT. Tests script it with handlers and options
and inspect every frame it received. It is not the real server (the lead's integration tests
cover that); it only lets the client be tested on its own.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from virthost.rpc.stomp.frame import Frame, FrameError, FrameParser, encode

MISSING: Any = object()
NO_REPLY: Any = object()


# --- a tiny schema of the shape virthost.api.schema provides ----------------------------------


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    doc: str = ""
    default: Any = MISSING

    @property
    def required(self) -> bool:
        return self.default is MISSING


@dataclass(frozen=True)
class Verb:
    namespace: str
    name: str
    doc: str = ""
    params: tuple[Param, ...] = ()

    @property
    def method(self) -> str:
        return f"{self.namespace}.{self.name}"


@dataclass(frozen=True)
class TypeSpec:
    kind: str
    values: tuple[Any, ...] = ()
    of: tuple[str, ...] = ()


@dataclass
class StubSchema:
    namespaces: dict[str, dict[str, Verb]] = field(default_factory=dict)
    types: dict[str, TypeSpec] = field(default_factory=dict)

    def template(self, verb: Any) -> dict[str, Any]:
        return {param.name: f"<{param.type}>" for param in verb.params}


def stub_schema() -> StubSchema:
    verbs = [
        Verb("Host", "ping2", "Check that the host answers."),
        Verb(
            "Host",
            "getVMList",
            "List the VMs of the host.\nMore words.",
            (
                Param("fullStatus", "boolean", "Return full status.", False),
                Param("vmList", "[UUID]", "Only these VMs.", []),
            ),
        ),
        Verb("VM", "getStats", "Statistics of one VM.", (Param("vmID", "UUID", "The VM."),)),
        Verb(
            "VM",
            "create",
            "Create and start a VM.",
            (
                Param("vmID", "UUID", "The new VM's id."),
                Param("vmParams", "VmParameters", "Everything about it."),
                Param("memSize", "uint", "Memory in MiB.", 1024),
                Param("ratio", "float", "A ratio.", 1.0),
                Param("offset", "int", "An offset.", 0),
                Param("extra", "object", "A free-form object.", {}),
                Param("anything", "any", "Whatever.", None),
                Param("name", "string", "A name.", ""),
            ),
        ),
    ]
    schema = StubSchema()
    schema.types.update(
        {
            "UUID": TypeSpec("string"),
            "VmParameters": TypeSpec("object"),
            "StorageType": TypeSpec("enum", values=(1, 2, "NFS")),
            "IntOrString": TypeSpec("union", of=("int", "string")),
            "UUIDListOrCsv": TypeSpec("union", of=("[UUID]", "string")),
            "BoolOrNumber": TypeSpec("union", of=("boolean", "float")),
        }
    )
    for verb in verbs:
        schema.namespaces.setdefault(verb.namespace, {})[verb.name] = verb
    return schema


# --- the STOMP responder ---------------------------------------------------------------------


class RpcFault(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


Handler = Callable[[Any], Any]


class FakeServer:
    """Serves one client connection at a time on 127.0.0.1 (optionally over TLS)."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self.ssl_context = ssl_context
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.handlers: dict[str, Handler] = {"Host.ping2": lambda params: True}
        self.connected_headers: dict[str, str] = {"version": "1.2", "heart-beat": "0,0"}
        self.connect_reply: Frame | None = None  # replaces CONNECTED when set
        self.hold_replies = 0  # answer only once this many requests are waiting, in reverse
        self.drop_after_reply = False  # close the connection right after answering a call
        self.on_subscribe: Callable[[str, str], None] | None = None  # (sub id, destination)
        self.received: list[Frame] = []
        self.heartbeats = 0
        self.subscriptions: dict[str, str] = {}  # id -> destination
        self.client_gone = False
        self.cond = threading.Condition()
        self._held: list[tuple[str, dict[str, Any]]] = []
        self._conn: socket.socket | None = None
        self._send_lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    # -- scripting and inspection ----------------------------------------------------------

    def wait_until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        with self.cond:
            return self.cond.wait_for(predicate, timeout)

    def frames(self, command: str) -> list[Frame]:
        with self.cond:
            return [frame for frame in self.received if frame.command == command]

    def send_frame(self, frame: Frame) -> None:
        with self._send_lock:
            assert self._conn is not None
            self._conn.sendall(encode(frame))

    def publish(self, destination: str, payload: Any) -> None:
        """MESSAGE ``payload`` (JSON) to every subscription of ``destination``."""
        with self.cond:
            subs = [sid for sid, dest in self.subscriptions.items() if dest == destination]
        body = json.dumps(payload).encode()
        for sub_id in subs:
            headers = {"destination": destination, "subscription": sub_id}
            headers["content-type"] = "application/json"
            self.send_frame(Frame("MESSAGE", headers, body))

    def drop_client(self) -> None:
        """Close the client's connection abruptly."""
        conn = self._conn
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.drop_client()
        self.listener.close()

    # -- serving ---------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            try:
                if self.ssl_context is not None:
                    conn = self.ssl_context.wrap_socket(conn, server_side=True)
            except (OSError, ssl.SSLError):
                conn.close()
                continue
            self._conn = conn
            self._serve(conn)

    def _serve(self, conn: socket.socket) -> None:
        parser = FrameParser()
        try:
            while data := conn.recv(65536):
                frames = parser.feed(data)
                with self.cond:
                    self.heartbeats = parser.heartbeats
                    self.received += frames
                    self.cond.notify_all()
                for frame in frames:
                    self._handle(frame)
        except (OSError, FrameError):
            pass
        finally:
            conn.close()
            with self.cond:
                self.client_gone = True
                self.cond.notify_all()

    def _handle(self, frame: Frame) -> None:
        if frame.command == "CONNECT":
            self.send_frame(self.connect_reply or Frame("CONNECTED", dict(self.connected_headers)))
        elif frame.command == "SUBSCRIBE":
            with self.cond:
                self.subscriptions[frame.headers["id"]] = frame.headers["destination"]
            if self.on_subscribe is not None:
                self.on_subscribe(frame.headers["id"], frame.headers["destination"])
        elif frame.command == "UNSUBSCRIBE":
            with self.cond:
                self.subscriptions.pop(frame.headers["id"], None)
        elif frame.command == "DISCONNECT" and "receipt" in frame.headers:
            self.send_frame(Frame("RECEIPT", {"receipt-id": frame.headers["receipt"]}))
        elif frame.command == "SEND" and frame.headers["destination"] == "jms.topic.vdsm_requests":
            self._handle_request(frame)

    def _handle_request(self, frame: Frame) -> None:
        message = json.loads(frame.body)
        reply_to = frame.headers["reply-to"]
        if isinstance(message, list):
            replies = [self._answer(request) for request in message]
            self.publish(reply_to, [reply for reply in replies if reply is not None])
            return
        reply = self._answer(message)
        if reply is None:
            return
        if self.hold_replies:
            self._held.append((reply_to, reply))
            if len(self._held) < self.hold_replies:
                return
            held, self._held = self._held, []
            for destination, payload in reversed(held):
                self.publish(destination, payload)
            return
        self.publish(reply_to, reply)
        if self.drop_after_reply:
            self.drop_client()

    def _answer(self, request: dict[str, Any]) -> dict[str, Any] | None:
        handler = self.handlers.get(request["method"])
        base = {"jsonrpc": "2.0", "id": request["id"]}
        if handler is None:
            return {**base, "error": {"code": -32601, "message": "Method not found"}}
        try:
            result = handler(request["params"])
        except RpcFault as fault:
            return {**base, "error": {"code": fault.code, "message": fault.message}}
        if result is NO_REPLY:
            return None
        return {**base, "result": result}
