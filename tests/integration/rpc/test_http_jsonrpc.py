"""JSON-RPC over HTTP POST on the API port (still mutual TLS), and GET /metrics."""

from __future__ import annotations

import http.client
import json
import socket
from typing import Any

import pytest

from fixtures.daemon import Services

pytestmark = pytest.mark.integration


def post(services: Services, body: bytes | Any, path: str = "/") -> tuple[int, bytes]:
    conn = http.client.HTTPSConnection(
        "127.0.0.1", services.port, context=services.client_ssl(), timeout=30
    )
    try:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        conn.request("POST", path, data, {"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_single_call(services: Services) -> None:
    status, body = post(services, {"jsonrpc": "2.0", "id": 1, "method": "Host.ping2"})
    assert status == 200
    assert json.loads(body) == {"jsonrpc": "2.0", "id": 1, "result": True}


def test_batch_and_notification(services: Services) -> None:
    batch = [
        {"jsonrpc": "2.0", "id": "a", "method": "Host.echo", "params": {"message": "x"}},
        {"jsonrpc": "2.0", "method": "Host.ping2"},
        {"jsonrpc": "2.0", "id": "b", "method": "Host.nothing"},
    ]
    status, body = post(services, batch, "/jsonrpc")
    answers = {a["id"]: a for a in json.loads(body)}
    assert status == 200 and set(answers) == {"a", "b"}
    assert answers["a"]["result"] == "x"
    assert answers["b"]["error"]["code"] == -32601
    status, body = post(services, {"jsonrpc": "2.0", "method": "Host.ping2"})
    assert (status, body) == (204, b"")


def test_parse_error(services: Services) -> None:
    status, body = post(services, b"[1,")
    assert status == 200 and json.loads(body)["error"]["code"] == -32700


def test_keep_alive_serves_several_requests(services: Services) -> None:
    conn = http.client.HTTPSConnection(
        "127.0.0.1", services.port, context=services.client_ssl(), timeout=30
    )
    try:
        for i in range(5):
            request = {
                "jsonrpc": "2.0",
                "id": i,
                "method": "Host.echo",
                "params": {"message": str(i)},
            }
            conn.request("POST", "/", json.dumps(request))
            assert json.loads(conn.getresponse().read())["result"] == str(i)
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/", 405), ("POST", "/nowhere", 404), ("POST", "/metrics", 405)],
)
def test_wrong_method_or_path(services: Services, method: str, path: str, status: int) -> None:
    conn = http.client.HTTPSConnection(
        "127.0.0.1", services.port, context=services.client_ssl(), timeout=30
    )
    try:
        conn.request(method, path, b"{}" if method == "POST" else None)
        assert conn.getresponse().status == status
    finally:
        conn.close()


def test_body_over_the_limit_is_refused(services: Services) -> None:
    ctx = services.client_ssl()
    assert ctx is not None
    with ctx.wrap_socket(socket.create_connection(("127.0.0.1", services.port), timeout=30)) as s:
        s.sendall(b"POST / HTTP/1.1\r\nContent-Length: 999999999999\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 413")


def test_garbage_request_line(services: Services) -> None:
    ctx = services.client_ssl()
    assert ctx is not None
    with ctx.wrap_socket(socket.create_connection(("127.0.0.1", services.port), timeout=30)) as s:
        s.sendall(b"GET  HTTP/9\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 400")
