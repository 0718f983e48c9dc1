"""The wire format between the daemon and its out-of-process I/O helpers: one JSON object a line.

Request::

    {"id": 7, "op": "stat", "args": {"path": "/rhev/x/metadata"}, "timeout": 60.0}

Response (exactly one per request, in any order, matched by ``id``)::

    {"id": 7, "result": {...}}
    {"id": 7, "error": {"kind": "os", "message": "No such file or directory",
                        "errno": 2, "filename": "/rhev/x/metadata", "filename2": null}}

Why JSON lines: the helper is ours and tiny, so a text protocol costs nothing measurable next to
the file I/O it does, is trivial to debug with a terminal, and needs no pickling (unpickling data
from a pipe is code execution). Paths travel as JSON strings: a name that is not valid UTF-8
is decoded by Python with ``surrogateescape`` and the lone surrogates survive JSON's ``\\u``
escapes both ways, so every file name round-trips. Binary payloads (file contents) travel as
base64 strings, which bounds a line at about 4/3 of the payload; payloads are capped at
:data:`MAX_PAYLOAD` so that one request can never make either side buffer without limit.

``timeout`` tells the helper how long the caller will wait: a request still queued after that
is answered with an ``expired`` error instead of being run, so that a pool whose threads were
stuck on a hung mount does not, once the mount recovers, replay work nobody waits for.

Error kinds: ``os`` (an OSError; the client raises the same OSError subclass), ``busy`` (all
threads busy and the queue full), ``expired`` (dropped, see above), ``invalid`` (bad request:
unknown op, wrong argument, path outside the allowed root) and ``internal`` (a bug).
"""

from __future__ import annotations

import base64
import binascii
import enum
import errno as errno_module
import json
from dataclasses import dataclass
from typing import Any

MAX_PAYLOAD = 16 * 1024 * 1024
"""The largest file content one request may carry or return."""

MAX_LINE = MAX_PAYLOAD * 4 // 3 + 64 * 1024
"""The longest line either side accepts: a full base64 payload plus room for the envelope."""


class ProtocolError(ValueError):
    """A line that is not a valid helper protocol message."""


class ErrorKind(enum.StrEnum):
    OS = "os"
    BUSY = "busy"
    EXPIRED = "expired"
    INVALID = "invalid"
    INTERNAL = "internal"


@dataclass(frozen=True)
class Request:
    id: int
    op: str
    args: dict[str, Any]
    timeout: float | None = None

    def encode(self) -> bytes:
        message: dict[str, Any] = {"id": self.id, "op": self.op, "args": self.args}
        if self.timeout is not None:
            message["timeout"] = self.timeout
        return _encode(message)


@dataclass(frozen=True)
class ErrorInfo:
    kind: ErrorKind
    message: str
    errno: int | None = None
    filename: str | None = None
    filename2: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "message": self.message,
            "errno": self.errno,
            "filename": self.filename,
            "filename2": self.filename2,
        }


@dataclass(frozen=True)
class Response:
    id: int | None
    result: Any = None
    error: ErrorInfo | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def encode(self) -> bytes:
        if self.error is None:
            return _encode({"id": self.id, "result": self.result})
        return _encode({"id": self.id, "error": self.error.to_json()})

    @classmethod
    def failure(cls, ident: int | None, kind: ErrorKind, message: str) -> Response:
        return cls(ident, error=ErrorInfo(kind, message))

    @classmethod
    def from_exception(cls, ident: int | None, exc: BaseException) -> Response:
        """The response reporting ``exc``: OSErrors keep errno and file names."""
        if isinstance(exc, OSError):
            code = exc.errno if isinstance(exc.errno, int) else errno_module.EIO
            info = ErrorInfo(
                ErrorKind.OS,
                exc.strerror or str(exc),
                code,
                _filename(exc.filename),
                _filename(exc.filename2),
            )
            return cls(ident, error=info)
        if isinstance(exc, (ValueError, TypeError, KeyError)):
            return cls.failure(ident, ErrorKind.INVALID, str(exc))
        return cls.failure(ident, ErrorKind.INTERNAL, f"{type(exc).__name__}: {exc}")


def _filename(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return str(value)


def encode_bytes(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def decode_bytes(text: object) -> bytes:
    if not isinstance(text, str):
        raise ProtocolError("binary data must be a base64 string")
    if len(text) > MAX_PAYLOAD * 4 // 3 + 4:
        raise ProtocolError("binary data too large")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as e:
        raise ProtocolError(f"bad base64 data: {e}") from None


def _encode(message: dict[str, Any]) -> bytes:
    data = json.dumps(message, separators=(",", ":")).encode("ascii") + b"\n"
    if len(data) > MAX_LINE:
        raise ProtocolError(f"message of {len(data)} bytes exceeds {MAX_LINE}")
    return data


def _load(line: bytes) -> dict[str, Any]:
    if len(line) > MAX_LINE:
        raise ProtocolError(f"message of {len(line)} bytes exceeds {MAX_LINE}")
    try:
        message = json.loads(line)
    except (ValueError, UnicodeDecodeError) as e:
        raise ProtocolError(f"not JSON: {e}") from None
    if not isinstance(message, dict):
        raise ProtocolError("a message must be a JSON object")
    return message


def _id(message: dict[str, Any], nullable: bool) -> int | None:
    ident = message.get("id")
    if ident is None and nullable:
        return None
    if not isinstance(ident, int) or isinstance(ident, bool):
        raise ProtocolError("id must be an integer")
    return ident


def peek_id(line: bytes) -> int | None:
    """The request id of a line that failed to decode, when it can be found, to answer it."""
    try:
        return _id(_load(line), nullable=True)
    except ProtocolError:
        return None


def decode_request(line: bytes) -> Request:
    message = _load(line)
    ident = _id(message, nullable=False)
    assert ident is not None
    op, args, timeout = message.get("op"), message.get("args", {}), message.get("timeout")
    if not isinstance(op, str):
        raise ProtocolError("op must be a string")
    if not isinstance(args, dict):
        raise ProtocolError("args must be an object")
    if timeout is not None and (
        not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout <= 0
    ):
        raise ProtocolError("timeout must be a positive number")
    return Request(ident, op, args, None if timeout is None else float(timeout))


def decode_response(line: bytes) -> Response:
    message = _load(line)
    ident = _id(message, nullable=True)
    error = message.get("error")
    if error is None:
        if "result" not in message:
            raise ProtocolError("a response has a result or an error")
        return Response(ident, message["result"])
    if not isinstance(error, dict):
        raise ProtocolError("error must be an object")
    try:
        kind = ErrorKind(str(error.get("kind")))
    except ValueError:
        raise ProtocolError(f"unknown error kind {error.get('kind')!r}") from None
    code = error.get("errno")
    if code is not None and (not isinstance(code, int) or isinstance(code, bool)):
        raise ProtocolError("errno must be an integer or null")
    names = [error.get("filename"), error.get("filename2")]
    if any(name is not None and not isinstance(name, str) for name in names):
        raise ProtocolError("file names must be strings or null")
    info = ErrorInfo(kind, str(error.get("message", "")), code, names[0], names[1])
    return Response(ident, error=info)
