"""The API listener: one port, mutual TLS, protocol detection, one reactor thread.

All sockets are served by a single asyncio event loop on the thread ``rpc/reactor``. After
the TLS handshake (time-boxed) the first bytes a client sends decide the protocol: a STOMP
command line makes it a STOMP connection (JSON-RPC over STOMP, what the engine and VDSM's
clients speak); ``POST``/``GET`` makes it HTTP (JSON-RPC over POST for curl, and metrics).
Anything else is closed. API calls themselves never run on this thread unless the schema
marks them fast (pure memory reads); answers from workers come back through
``call_soon_threadsafe``.

A client that does not read its answers is cut off once ``max_write_buffer`` bytes are queued
for it, so one stuck client cannot make the daemon's memory grow without bound.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import threading
from collections.abc import Callable
from typing import Any, Protocol

from virthost.rpc.events import Event
from virthost.rpc.http import HttpConnection
from virthost.rpc.jsonrpc import JsonRpcServer
from virthost.rpc.stomp.broker import StompBroker
from virthost.rpc.stomp.connection import StompConnection

log = logging.getLogger("virthost.rpc")

STOMP_COMMANDS = (
    b"CONNECT",
    b"STOMP",
    b"SEND",
    b"SUBSCRIBE",
    b"UNSUBSCRIBE",
    b"DISCONNECT",
    b"ACK",
    b"NACK",
    b"BEGIN",
    b"COMMIT",
    b"ABORT",
)
HTTP_METHODS = (b"POST ", b"GET ", b"PUT ", b"HEAD ", b"DELETE ", b"OPTIONS ")


class Handler(Protocol):
    def data_received(self, data: bytes) -> None: ...

    def connection_lost(self) -> None: ...


def unmap_ipv4(address: str) -> str:
    """``::ffff:10.0.0.1`` (an IPv4 client on a dual-stack socket) -> ``10.0.0.1``."""
    return address[7:] if address.startswith("::ffff:") and "." in address else address


def detect(data: bytes) -> str | None:
    """'stomp', 'http', 'unknown', or None when more bytes are needed."""
    stripped = data.lstrip(b"\r\n")
    if not stripped:
        return None
    need_more = False
    for command in STOMP_COMMANDS:
        for line in (command + b"\n", command + b"\r\n"):
            if stripped.startswith(line):
                return "stomp"
            need_more = need_more or line.startswith(stripped)
    for method in HTTP_METHODS:
        if stripped.startswith(method):
            return "http"
        need_more = need_more or method.startswith(stripped)
    return None if need_more else "unknown"


class _ClientProtocol(asyncio.Protocol):
    def __init__(self, server: RpcServer) -> None:
        self._server = server
        self._transport: asyncio.Transport | None = None
        self._handler: Handler | None = None
        self._pending = b""
        self.peer = "?"
        self.local_address = ""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        peername = transport.get_extra_info("peername")
        if isinstance(peername, tuple):
            self.peer = f"{peername[0]}:{peername[1]}"
        sockname = transport.get_extra_info("sockname")
        if isinstance(sockname, tuple):
            self.local_address = unmap_ipv4(str(sockname[0]))
        self._server.connections.add(self)
        self._server.accepted_total += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self._server.connections.discard(self)
        if self._handler is not None:
            self._handler.connection_lost()

    def data_received(self, data: bytes) -> None:
        if self._handler is not None:
            self._handler.data_received(data)
            return
        self._pending += data
        kind = detect(self._pending)
        if kind is None:
            return
        if kind == "stomp":
            self._handler = self._server.new_stomp(self)
        elif kind == "http" and self._server.http_enable:
            self._handler = self._server.new_http(self)
        else:
            log.info("closing connection from %s: unknown protocol", self.peer)
            self.close()
            return
        pending, self._pending = self._pending, b""
        self._handler.data_received(pending)

    def write(self, data: bytes) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        transport.write(data)
        if transport.get_write_buffer_size() > self._server.max_write_buffer:
            log.warning("%s does not read its answers; closing the connection", self.peer)
            transport.abort()

    def close(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()


class RpcServer:
    def __init__(
        self,
        jsonrpc: JsonRpcServer,
        *,
        address: str,
        port: int,
        ssl_context: ssl.SSLContext | None,
        handshake_timeout: float = 10.0,
        request_queues: tuple[str, ...] = (
            "jms.topic.vdsm_requests",
            "jms.topic.vdsm_irs_requests",
        ),
        event_queue: str = "jms.queue.events",
        max_frame_size: int = 16 * 1024 * 1024,
        max_write_buffer: int = 64 * 1024 * 1024,
        http_enable: bool = True,
        metrics: Callable[[], dict[str, float]] | None = None,
    ) -> None:
        self._jsonrpc = jsonrpc
        self._address = address
        self._requested_port = port
        self._ssl = ssl_context
        self._handshake_timeout = handshake_timeout
        self._request_queues = request_queues
        self._event_queue = event_queue
        self.max_frame_size = max_frame_size
        self.max_write_buffer = max_write_buffer
        self.http_enable = http_enable
        self._extra_metrics = metrics
        self.connections: set[_ClientProtocol] = set()
        self.accepted_total = 0
        self.port = port
        self._loop = asyncio.new_event_loop()
        self._loop.set_exception_handler(self._on_loop_error)
        self._thread = threading.Thread(target=self._run, name="rpc/reactor", daemon=True)
        self._server: asyncio.base_events.Server | None = None
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self.broker = StompBroker(
            jsonrpc, self._loop.call_soon_threadsafe, request_queues, event_queue
        )

    # --- life cycle --------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()
        self._ready.wait()
        if self._start_error is not None:
            raise self._start_error

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self.broker.bind_reactor_thread()
        try:
            self._server = self._loop.run_until_complete(self._listen())
        except BaseException as e:
            self._start_error = e
            self._ready.set()
            return
        self._ready.set()
        log.info(
            "listening on [%s]:%d (%s)",
            self._address,
            self.port,
            "mutual TLS" if self._ssl else "plain TCP, development only",
        )
        try:
            self._loop.run_forever()
        finally:
            self._loop.close()

    async def _listen(self) -> asyncio.base_events.Server:
        family = socket.AF_INET6 if ":" in self._address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((self._address, self._requested_port))
        sock.listen(128)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        return await self._loop.create_server(
            lambda: _ClientProtocol(self),
            sock=sock,
            ssl=self._ssl,
            ssl_handshake_timeout=self._handshake_timeout if self._ssl else None,
        )

    def stop(self) -> None:
        if not self._thread.is_alive():
            return

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for conn in list(self.connections):
                conn.close()
            await asyncio.sleep(0.05)
            self._loop.stop()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop)
        self._thread.join(timeout=5)

    # --- handlers ----------------------------------------------------------------------

    def new_stomp(self, client: _ClientProtocol) -> StompConnection:
        return StompConnection(
            self.broker,
            client.peer,
            client.write,
            client.close,
            self._loop.call_later,
            self.max_frame_size,
            client.local_address,
        )

    def new_http(self, client: _ClientProtocol) -> HttpConnection:
        return HttpConnection(
            self._jsonrpc,
            client.peer,
            client.write,
            client.close,
            self._loop.call_soon_threadsafe,
            self.max_frame_size,
            self.render_metrics,
            client.local_address,
        )

    def publish_event(self, event: Event) -> None:
        self.broker.publish_event(event)

    # --- introspection -----------------------------------------------------------------

    def call_in_loop(self, func: Callable[[], Any], timeout: float = 5.0) -> Any:
        """Run ``func`` on the reactor and return its result (for metrics and tests)."""

        async def run() -> Any:
            return func()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout)

    def metrics(self) -> dict[str, float]:
        figures: dict[str, float] = {
            "virthost_connections": len(self.connections),
            "virthost_connections_accepted_total": self.accepted_total,
            "virthost_stomp_subscriptions": self.broker.subscription_count(),
            "virthost_rpc_calls_total": self._jsonrpc.calls_served,
        }
        if self._extra_metrics is not None:
            figures.update(self._extra_metrics())
        return figures

    def render_metrics(self) -> str:
        return "".join(f"{name} {value:g}\n" for name, value in sorted(self.metrics().items()))

    def _on_loop_error(self, loop: asyncio.AbstractEventLoop, ctx: dict[str, Any]) -> None:
        exc = ctx.get("exception")
        message = ctx.get("message", "")
        if isinstance(exc, ssl.SSLError | ConnectionError | TimeoutError) or "handshake" in message:
            log.info("connection refused at TLS: %s %s", message, exc or "")
            return
        log.error("reactor error: %s", message, exc_info=exc)
