"""Exceptions raised by the virthost client library.

The names follow vdsm.client so scripts written for it read naturally::

    Error
     +-- ConnectionError        could not connect, or the connection broke (EOF, socket error,
     |    |                     no heart-beat from the server in time)
     |    +-- StompError        the server sent a STOMP ERROR frame; the connection is closed
     +-- TimeoutError           the request was sent but no answer came in time
     +-- ClientError            the request could not be made (bad arguments, send failed)
     +-- ServerError            the server answered with a JSON-RPC error (``code``, ``message``)
     +-- MissingSchemaError     no such namespace or verb in the API schema (also AttributeError)

``ConnectionError`` and ``TimeoutError`` deliberately shadow the builtins inside this module;
import the module (``from virthost.client import errors``) to keep both within reach.
"""

from __future__ import annotations

from typing import Any


class Error(Exception):
    """Base class of every client error."""


class ConnectionError(Error):
    """Connecting failed, or the established connection is gone."""


class StompError(ConnectionError):
    """The server rejected a frame with ERROR (after which STOMP closes the connection)."""

    def __init__(self, message: str, body: bytes = b"") -> None:
        detail = body.decode("utf-8", "replace").strip()
        text = f"server sent ERROR: {message}"
        if detail and detail != message:
            text += f" ({detail})"
        super().__init__(text)
        self.message = message
        self.body = body


class TimeoutError(Error):
    """The request went out but no response arrived within the timeout."""


class ClientError(Error):
    """The request could not be built or sent."""


class ServerError(Error):
    """The server answered with a JSON-RPC error object."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"error {code}: {message}")
        self.code = code
        self.message = message
        self.data = data

    @property
    def resp_msg(self) -> str:
        """vdsm.client's name for :attr:`message`."""
        return self.message


class MissingSchemaError(Error, AttributeError):
    """The schema has no such namespace or verb."""
