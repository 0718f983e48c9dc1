"""Property-based fuzzing of the live daemon: no input crashes it or leaks a connection."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import time
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fixtures import daemon as daemon_fixtures
from virthost.common.pki import PkiPaths
from virthost.rpc.stomp.frame import Frame, FrameError, encode

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def services(pki: PkiPaths) -> Iterator[daemon_fixtures.Services]:
    # plain TCP keeps each example fast; TLS is covered by the conformance tests
    running = daemon_fixtures.start_services(
        pki, tls=False, overrides={"rpc": {"max_frame_size": 65536}}
    )
    yield running
    daemon_fixtures.cleanup(running)


def _connections(services: daemon_fixtures.Services) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", services.port, timeout=10)
    try:
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    figures = dict(line.split() for line in text.splitlines())
    return int(float(figures["virthost_connections"]))


def _blast(services: daemon_fixtures.Services, chunks: list[bytes]) -> None:
    with socket.create_connection(("127.0.0.1", services.port), timeout=5) as sock:
        try:
            for chunk in chunks:
                sock.sendall(chunk)
            sock.shutdown(socket.SHUT_WR)
            sock.settimeout(0.3)
            while sock.recv(65536):
                pass
        except (OSError, ssl.SSLError):
            pass


def _assert_healthy(services: daemon_fixtures.Services) -> None:
    assert services.daemon is not None and services.daemon.poll() is None
    deadline = time.monotonic() + 10
    while _connections(services) > 1:  # our metrics request itself
        assert time.monotonic() < deadline, "connections leaked"
        time.sleep(0.05)
    conn = services.raw()
    try:
        conn.connect()
        assert conn.call("Host.ping2")["result"] is True
    finally:
        conn.close()


def _encoded_or_empty(frame: Frame) -> bytes:
    try:
        return encode(frame)
    except FrameError:  # CONNECT values with a line break cannot be encoded at all
        return b""


stomp_pieces = st.one_of(
    st.binary(max_size=64),
    st.sampled_from(
        [
            b"CONNECT\naccept-version:1.2\n\n\x00",
            b"\n",
            b"\x00",
            b"SEND\n",
            b"destination:",
            b"jms.topic.vdsm_requests",
            b"content-length:",
            b"99999",
            b"\\",
            b"\\c",
            b":",
            b"\r\n",
        ]
    ),
    st.builds(
        lambda cmd, hdrs, body: _encoded_or_empty(Frame(cmd, hdrs, body)),
        st.sampled_from(["CONNECT", "SEND", "SUBSCRIBE", "UNSUBSCRIBE", "ACK", "DISCONNECT", "X"]),
        st.dictionaries(
            st.sampled_from(
                ["destination", "id", "reply-to", "receipt", "accept-version", "heart-beat"]
            ),
            st.text(max_size=20),
            max_size=4,
        ),
        st.binary(max_size=128),
    ),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(chunks=st.lists(stomp_pieces, min_size=1, max_size=12))
def test_random_stomp_streams(services: daemon_fixtures.Services, chunks: list[bytes]) -> None:
    _blast(services, [b"CONNECT\naccept-version:1.2\n\n\x00", *chunks])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    method=st.sampled_from(["Host.echo", "Host.ping2", "VM.getStats", "Host.setLogLevel", "X.y"])
    | st.text(max_size=20),
    params=json_values,
    ident=json_values,
)
def test_random_jsonrpc_requests(
    services: daemon_fixtures.Services, method: str, params: object, ident: object
) -> None:
    request = {"jsonrpc": "2.0", "method": method, "params": params, "id": ident}
    body = json.dumps(request).encode()
    frames = [
        encode(Frame("CONNECT", {"accept-version": "1.2"})),
        encode(Frame("SUBSCRIBE", {"destination": "fuzz-replies", "id": "f"})),
        encode(
            Frame(
                "SEND", {"destination": "jms.topic.vdsm_requests", "reply-to": "fuzz-replies"}, body
            )
        ),
    ]
    _blast(services, frames)


def test_daemon_survived_the_fuzzing(services: daemon_fixtures.Services) -> None:
    _assert_healthy(services)
    log = services.log_text()
    for sign_of_a_bug in (
        "failed unexpectedly",
        "cannot prepare request",
        "reactor error",
        "error handling",
    ):
        assert sign_of_a_bug not in log
