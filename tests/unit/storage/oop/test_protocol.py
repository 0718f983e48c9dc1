from __future__ import annotations

import errno
import json

import pytest

from virthost.storage.oop import protocol
from virthost.storage.oop.protocol import ErrorKind, ProtocolError, Request, Response


def test_request_round_trip() -> None:
    request = Request(7, "stat", {"path": "/rhev/sd/metadata"}, 60.0)
    line = request.encode()
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert protocol.decode_request(line) == request


def test_request_without_timeout_round_trip() -> None:
    request = Request(1, "ping", {})
    assert "timeout" not in json.loads(request.encode())
    assert protocol.decode_request(request.encode()) == request


def test_non_utf8_file_names_survive() -> None:
    name = b"/sd/images/\xff\xfe.img".decode("utf-8", "surrogateescape")
    request = Request(3, "stat", {"path": name})
    decoded = protocol.decode_request(request.encode())
    assert decoded.args["path"] == name
    assert decoded.args["path"].encode("utf-8", "surrogateescape") == b"/sd/images/\xff\xfe.img"


def test_result_round_trip() -> None:
    response = Response(9, {"st_size": 12, "names": ["a", "b"]})
    decoded = protocol.decode_response(response.encode())
    assert decoded == response
    assert decoded.ok


def test_os_error_keeps_errno_and_file_names() -> None:
    exc = FileNotFoundError(errno.ENOENT, "No such file or directory", "/a", None, "/b")
    decoded = protocol.decode_response(Response.from_exception(4, exc).encode())
    assert not decoded.ok
    assert decoded.error == protocol.ErrorInfo(
        ErrorKind.OS, "No such file or directory", errno.ENOENT, "/a", "/b"
    )


def test_os_error_without_errno_becomes_eio() -> None:
    response = Response.from_exception(1, OSError("odd"))
    assert response.error is not None
    assert response.error.kind is ErrorKind.OS
    assert response.error.errno == errno.EIO


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (ValueError("'size' must be a non-negative integer"), ErrorKind.INVALID),
        (KeyError("path"), ErrorKind.INVALID),
        (RuntimeError("bug"), ErrorKind.INTERNAL),
    ],
)
def test_other_exceptions(exc: Exception, kind: ErrorKind) -> None:
    decoded = protocol.decode_response(Response.from_exception(2, exc).encode())
    assert decoded.error is not None
    assert decoded.error.kind is kind
    assert decoded.error.errno is None


def test_failure_without_id() -> None:
    decoded = protocol.decode_response(Response.failure(None, ErrorKind.INVALID, "x").encode())
    assert decoded.id is None
    assert decoded.error is not None and decoded.error.message == "x"


@pytest.mark.parametrize(
    "line",
    [
        b"not json\n",
        b"[1, 2]\n",
        b'{"op": "ping"}\n',
        b'{"id": true, "op": "ping"}\n',
        b'{"id": "1", "op": "ping"}\n',
        b'{"id": 1}\n',
        b'{"id": 1, "op": 5}\n',
        b'{"id": 1, "op": "ping", "args": []}\n',
        b'{"id": 1, "op": "ping", "timeout": 0}\n',
        b'{"id": 1, "op": "ping", "timeout": "60"}\n',
        b'{"id": 1, "op": "ping", "timeout": true}\n',
        b"\xff\xfe\n",
    ],
)
def test_bad_requests(line: bytes) -> None:
    with pytest.raises(ProtocolError):
        protocol.decode_request(line)


@pytest.mark.parametrize(
    "line",
    [
        b'{"id": 1}\n',
        b'{"id": 1, "error": "boom"}\n',
        b'{"id": 1, "error": {"kind": "weird", "message": "x"}}\n',
        b'{"id": 1, "error": {"kind": "os", "message": "x", "errno": "2"}}\n',
        b'{"id": 1, "error": {"kind": "os", "message": "x", "filename": 5}}\n',
        b'{"id": 1.5, "result": null}\n',
    ],
)
def test_bad_responses(line: bytes) -> None:
    with pytest.raises(ProtocolError):
        protocol.decode_response(line)


def test_oversized_lines_are_refused_both_ways() -> None:
    with pytest.raises(ProtocolError):
        protocol.decode_request(b" " * (protocol.MAX_LINE + 1))
    with pytest.raises(ProtocolError):
        Response(1, "x" * protocol.MAX_LINE).encode()


def test_a_full_payload_fits_in_a_line() -> None:
    data = protocol.encode_bytes(bytes(protocol.MAX_PAYLOAD))
    request = Request(2**40, "write_file", {"path": "/x" * 100, "data": data}, 60.0)
    assert protocol.decode_request(request.encode()).args["data"] == data
    assert len(protocol.decode_bytes(data)) == protocol.MAX_PAYLOAD


@pytest.mark.parametrize("data", [b"", b"\x00", bytes(range(256)) * 3])
def test_bytes_round_trip(data: bytes) -> None:
    assert protocol.decode_bytes(protocol.encode_bytes(data)) == data


@pytest.mark.parametrize("text", [None, 12, "not base64!", "YWJj\n"])
def test_bad_bytes(text: object) -> None:
    with pytest.raises(ProtocolError):
        protocol.decode_bytes(text)


def test_peek_id_finds_the_id_of_a_bad_request() -> None:
    assert protocol.peek_id(b'{"id": 5, "op": 3}\n') == 5
    assert protocol.peek_id(b"garbage\n") is None
    assert protocol.peek_id(b'{"id": "x"}\n') is None
