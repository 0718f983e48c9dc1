"""Protocol detection on the shared port."""

from __future__ import annotations

import pytest

from virthost.rpc.server import detect


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"CONNECT\naccept-version:1.2\n\n\x00", "stomp"),
        (b"\r\n\nSTOMP\r\n", "stomp"),
        (b"SEND\n", "stomp"),
        (b"POST / HTTP/1.1\r\n", "http"),
        (b"GET /metrics HTTP/1.1\r\n", "http"),
        (b"CONN", None),
        (b"PO", None),
        (b"", None),
        (b"\n\n", None),
        (b"SSH-2.0-OpenSSH_9.2\r\n", "unknown"),
        (b"\x16\x03\x01\x02\x00\x01", "unknown"),
        (b"CONNECTX\n", "unknown"),
    ],
)
def test_detect(data: bytes, kind: str | None) -> None:
    assert detect(data) == kind
