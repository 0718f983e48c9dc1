"""The supervisor's mechanism over a real unix socket: whitelist, credentials, reconnection."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from virthost.common import errors
from virthost.supervisor.client import RemoteError, SupervisorProxy
from virthost.supervisor.operations import Operation
from virthost.supervisor.protocol import (
    ProtocolError,
    Request,
    Response,
    decode_request,
    decode_response,
)
from virthost.supervisor.server import SupervisorServer, peer_credentials

release = threading.Event()


def _slow(seconds: float) -> str:
    release.wait(seconds)
    return "late"


def _fails() -> None:
    raise errors.CannotRetrieveHWInfo("no DMI")


def _crashes() -> None:
    raise RuntimeError("internal detail")


OPS = {
    op.name: op
    for op in (
        Operation("ping", lambda: "pong", "liveness"),
        Operation("add", lambda a, b: a + b, "sum", {"a": int, "b": int}),
        Operation("slow", _slow, "waits", {"seconds": float}),
        Operation("fails", _fails, "fails with a code"),
        Operation("crashes", _crashes, "fails unexpectedly"),
    )
}


@pytest.fixture
def socket_path(tmp_path: Path) -> Path:
    return tmp_path / "sv.sock"


@pytest.fixture
def server(socket_path: Path) -> Iterator[SupervisorServer]:
    srv = SupervisorServer(socket_path, OPS, {os.geteuid()})
    srv.start()
    yield srv
    release.set()
    srv.stop()
    release.clear()


def test_operations_and_typed_arguments(server: SupervisorServer, socket_path: Path) -> None:
    proxy = SupervisorProxy(str(socket_path), timeout=5)
    assert proxy.call("ping") == "pong"
    assert proxy.call("add", a=2, b=3) == 5
    with pytest.raises(RemoteError) as wrong_type:
        proxy.call("add", a="2", b=3)
    assert wrong_type.value.remote_code == errors.InvalidParameter.code
    with pytest.raises(RemoteError, match="unknown arguments"):
        proxy.call("add", a=1, b=2, c=3)
    with pytest.raises(RemoteError, match="missing argument"):
        proxy.call("add", a=1)
    proxy.close()


def test_unknown_operation_is_refused(server: SupervisorServer, socket_path: Path) -> None:
    proxy = SupervisorProxy(str(socket_path), timeout=5)
    with pytest.raises(RemoteError) as refused:
        proxy.call("rm_rf")
    assert refused.value.remote_code == errors.UnsupportedOperation.code


def test_errors_keep_their_code_and_hide_internals(
    server: SupervisorServer, socket_path: Path
) -> None:
    proxy = SupervisorProxy(str(socket_path), timeout=5)
    with pytest.raises(RemoteError) as coded:
        proxy.call("fails")
    assert coded.value.remote_code == 57
    with pytest.raises(RemoteError) as unexpected:
        proxy.call("crashes")
    assert unexpected.value.remote_code == 16
    assert "internal detail" not in str(unexpected.value)
    assert proxy.call("ping") == "pong"  # the connection is still usable


def test_timeout_is_reported_and_other_calls_go_on(
    server: SupervisorServer, socket_path: Path
) -> None:
    proxy = SupervisorProxy(str(socket_path), timeout=5)
    with pytest.raises(errors.SupervisorError, match="timed out"):
        proxy.call("slow", timeout=0.2, seconds=30.0)
    assert proxy.call("ping") == "pong"


def test_unauthorized_peer_is_refused(socket_path: Path) -> None:
    srv = SupervisorServer(socket_path, OPS, {os.geteuid() + 4242})
    srv.start()
    try:
        proxy = SupervisorProxy(str(socket_path), timeout=5)
        with pytest.raises(errors.SupervisorError, match="not allowed"):
            proxy.call("ping")
    finally:
        srv.stop()


def test_socket_permissions(server: SupervisorServer, socket_path: Path) -> None:
    assert socket_path.stat().st_mode & 0o777 == 0o660


def test_proxy_reconnects_after_a_supervisor_restart(socket_path: Path) -> None:
    first = SupervisorServer(socket_path, OPS, {os.geteuid()})
    first.start()
    proxy = SupervisorProxy(str(socket_path), timeout=5)
    assert proxy.call("ping") == "pong"
    first.stop()
    second = SupervisorServer(socket_path, OPS, {os.geteuid()})
    second.start()
    try:
        assert proxy.call("ping") == "pong"
    finally:
        second.stop()


def test_unreachable_supervisor(tmp_path: Path) -> None:
    proxy = SupervisorProxy(str(tmp_path / "nothing.sock"), timeout=1)
    with pytest.raises(errors.SupervisorError, match="cannot reach"):
        proxy.call("ping")


def test_garbage_gets_an_error_answer(server: SupervisorServer, socket_path: Path) -> None:
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(socket_path))
        s.sendall(b"not json\n")
        s.settimeout(5)
        answer = decode_response(s.makefile("rb").readline())
    assert answer.error_code == errors.InvalidParameter.code


def test_peer_credentials_are_the_kernels() -> None:
    a, b = socket.socketpair(socket.AF_UNIX)
    with a, b:
        pid, uid, _gid = peer_credentials(a)
    assert (pid, uid) == (os.getpid(), os.geteuid())


def test_protocol_round_trip_and_rejects() -> None:
    assert decode_request(Request(3, "ping", {"x": 1}).encode()) == Request(3, "ping", {"x": 1})
    assert decode_response(Response(3, [1]).encode()) == Response(3, [1])
    failed = decode_response(Response(4, None, 57, "no").encode())
    assert (failed.ok, failed.error_code) == (False, 57)
    for bad in (
        b"[]",
        b'{"id": true, "op": "x"}',
        b'{"id": 1}',
        b'{"id": 1, "op": "x", "args": 1}',
    ):
        with pytest.raises(ProtocolError):
            decode_request(bad)
