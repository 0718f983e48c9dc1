"""The supervisor's wire format: one JSON object per line over a unix stream socket.

Request:  ``{"id": 7, "op": "hardware_info", "args": {}}``
Response: ``{"id": 7, "result": ...}`` or ``{"id": 7, "error": {"code": 57, "message": "..."}}``

Kept deliberately tiny: no pickling (VDSM's supervdsm unpickles whatever its socket receives),
a bounded line length, and only the operation names of the whitelist are understood.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

MAX_MESSAGE = 1024 * 1024


class ProtocolError(ValueError):
    """A message that is not valid supervisor protocol."""


@dataclass(frozen=True)
class Request:
    id: int
    op: str
    args: dict[str, Any] = field(default_factory=dict)

    def encode(self) -> bytes:
        return _encode({"id": self.id, "op": self.op, "args": self.args})


@dataclass(frozen=True)
class Response:
    id: int | None
    result: Any = None
    error_code: int | None = None
    error_message: str = ""

    @property
    def ok(self) -> bool:
        return self.error_code is None

    def encode(self) -> bytes:
        if self.error_code is None:
            return _encode({"id": self.id, "result": self.result})
        return _encode(
            {"id": self.id, "error": {"code": self.error_code, "message": self.error_message}}
        )


def _encode(message: dict[str, Any]) -> bytes:
    data = json.dumps(message, separators=(",", ":")).encode("utf-8") + b"\n"
    if len(data) > MAX_MESSAGE:
        raise ProtocolError("message too large")
    return data


def _load(line: bytes) -> dict[str, Any]:
    if len(line) > MAX_MESSAGE:
        raise ProtocolError("message too large")
    try:
        message = json.loads(line)
    except (ValueError, UnicodeDecodeError) as e:
        raise ProtocolError(f"not JSON: {e}") from None
    if not isinstance(message, dict):
        raise ProtocolError("a message must be a JSON object")
    return message


def decode_request(line: bytes) -> Request:
    message = _load(line)
    ident, op, args = message.get("id"), message.get("op"), message.get("args", {})
    if not isinstance(ident, int) or isinstance(ident, bool):
        raise ProtocolError("id must be an integer")
    if not isinstance(op, str):
        raise ProtocolError("op must be a string")
    if not isinstance(args, dict):
        raise ProtocolError("args must be an object")
    return Request(ident, op, args)


def decode_response(line: bytes) -> Response:
    message = _load(line)
    ident = message.get("id")
    if ident is not None and (not isinstance(ident, int) or isinstance(ident, bool)):
        raise ProtocolError("id must be an integer or null")
    error = message.get("error")
    if error is None:
        if "result" not in message:
            raise ProtocolError("a response has a result or an error")
        return Response(ident, message["result"])
    if not isinstance(error, dict) or not isinstance(error.get("code"), int):
        raise ProtocolError("bad error object")
    return Response(ident, None, error["code"], str(error.get("message", "")))
