"""JSON-RPC over HTTP POST on the API port, for curl and scripts, plus ``GET /metrics``.

A deliberately small HTTP/1.1 server: one request at a time per connection (reading pauses
until the answer is written, so pipelined requests are answered in order), bodies only with
Content-Length, keep-alive unless the client asks to close.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from virthost.rpc.jsonrpc import CallOrigin, JsonRpcServer

log = logging.getLogger("virthost.http")

MAX_HEADER_BYTES = 16 * 1024
RPC_PATHS = ("/", "/jsonrpc")

_REASONS = {
    200: "OK",
    204: "No Content",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    411: "Length Required",
    413: "Payload Too Large",
}


def response(status: int, body: bytes, content_type: str, keep_alive: bool) -> bytes:
    head = [
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
        "Connection: " + ("keep-alive" if keep_alive else "close"),
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode("ascii") + body


class HttpConnection:
    """Serves one HTTP client. Methods run on the reactor thread."""

    def __init__(
        self,
        jsonrpc: JsonRpcServer,
        peer: str,
        write: Callable[[bytes], None],
        close: Callable[[], None],
        call_soon_threadsafe: Callable[..., object],
        max_body: int,
        metrics: Callable[[], str],
        local_address: str = "",
    ) -> None:
        self.local_address = local_address
        self._jsonrpc = jsonrpc
        self.peer = peer
        self._write = write
        self._close = close
        self._call_soon = call_soon_threadsafe
        self._max_body = max_body
        self._metrics = metrics
        self._buffer = bytearray()
        self._busy = False
        self._closed = False

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        self._process()

    def connection_lost(self) -> None:
        self._closed = True

    def _process(self) -> None:
        while not self._busy and not self._closed:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > MAX_HEADER_BYTES:
                    self._reply(413, b"headers too large\n", "text/plain", False)
                return
            try:
                method, path, headers = self._parse_head(bytes(self._buffer[:end]))
            except ValueError as e:
                self._reply(400, f"{e}\n".encode(), "text/plain", False)
                return
            keep_alive = headers.get("connection", "").lower() != "close"
            length_text = headers.get("content-length")
            if method == "POST" and length_text is None:
                self._reply(411, b"Content-Length required\n", "text/plain", False)
                return
            try:
                length = int(length_text or "0")
            except ValueError:
                self._reply(400, b"bad Content-Length\n", "text/plain", False)
                return
            if length < 0 or length > self._max_body:
                self._reply(413, b"body too large\n", "text/plain", False)
                return
            if len(self._buffer) < end + 4 + length:
                return
            body = bytes(self._buffer[end + 4 : end + 4 + length])
            del self._buffer[: end + 4 + length]
            self._serve(method, path, body, keep_alive)

    @staticmethod
    def _parse_head(head: bytes) -> tuple[str, str, dict[str, str]]:
        try:
            lines = head.decode("latin-1").split("\r\n")
            method, path, version = lines[0].split(" ")
        except ValueError:
            raise ValueError("bad request line") from None
        if not version.startswith("HTTP/1."):
            raise ValueError("unsupported HTTP version")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                raise ValueError("bad header line")
            headers[name.strip().lower()] = value.strip()
        return method, path, headers

    def _serve(self, method: str, path: str, body: bytes, keep_alive: bool) -> None:
        if path == "/metrics":
            if method != "GET":
                self._reply(405, b"use GET\n", "text/plain", keep_alive)
                return
            self._reply(200, self._metrics().encode(), "text/plain; version=0.0.4", keep_alive)
            return
        if path not in RPC_PATHS:
            self._reply(404, b"not found\n", "text/plain", keep_alive)
            return
        if method != "POST":
            self._reply(405, b"use POST with a JSON-RPC request\n", "text/plain", keep_alive)
            return
        self._busy = True

        def respond(answer: bytes) -> None:
            self._call_soon(self._finish, 200, answer, keep_alive)

        expects_answer = self._jsonrpc.handle(
            body, CallOrigin(self.peer, None, self.local_address), respond
        )
        if not expects_answer:
            self._finish(204, b"", keep_alive)

    def _finish(self, status: int, body: bytes, keep_alive: bool) -> None:
        self._busy = False
        self._reply(status, body, "application/json", keep_alive)
        self._process()

    def _reply(self, status: int, body: bytes, content_type: str, keep_alive: bool) -> None:
        if self._closed:
            return
        self._write(response(status, body, content_type, keep_alive))
        if not keep_alive:
            self._closed = True
            self._close()
