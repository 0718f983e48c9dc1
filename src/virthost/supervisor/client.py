"""The daemon's side of the supervisor: a proxy with per-call timeouts and reconnection.

Connections are pooled: a call takes an idle connection (or opens one), and gives it back
when the answer came. A connection that failed is thrown away; a call that failed on a
reused connection before any answer is retried once on a fresh one, which is how a restart
of the supervisor goes unnoticed by callers. A call that timed out is never retried: the
operation may still be running.
"""

from __future__ import annotations

import itertools
import logging
import socket
import threading
from typing import Any

from virthost.common import errors
from virthost.supervisor.protocol import (
    MAX_MESSAGE,
    ProtocolError,
    Request,
    decode_response,
)

log = logging.getLogger("virthost.supervisor.client")


class RemoteError(errors.SupervisorError):
    """The supervisor answered with an error; ``code`` is the one it sent."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.remote_code = code

    def to_wire(self) -> dict[str, Any]:
        return {"code": self.remote_code, "message": self.detail or self.message}


class _Connection:
    def __init__(self, path: str, timeout: float) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.reader = self.sock.makefile("rb")

    def close(self) -> None:
        try:
            self.reader.close()
        finally:
            self.sock.close()


class SupervisorProxy:
    def __init__(self, socket_path: str, timeout: float = 30.0, max_idle: int = 4) -> None:
        self._path = socket_path
        self._timeout = timeout
        self._max_idle = max_idle
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def call(self, op: str, timeout: float | None = None, **args: Any) -> Any:
        """Run ``op`` in the supervisor; raises SupervisorError (or RemoteError)."""
        limit = self._timeout if timeout is None else timeout
        request = Request(next(self._ids), op, args)
        for attempt in (1, 2):
            conn, reused = self._take(limit)
            try:
                conn.sock.settimeout(limit)
                try:
                    conn.sock.sendall(request.encode())
                except (BrokenPipeError, ConnectionResetError):
                    # A refused peer may be closed before it writes: read why, if it is there.
                    if reused and attempt == 1:
                        raise
                line = conn.reader.readline(MAX_MESSAGE + 1)
                if not line:
                    raise ConnectionResetError("supervisor closed the connection")
            except TimeoutError:
                conn.close()
                raise errors.SupervisorError(f"{op} timed out after {limit:g} s") from None
            except OSError as e:
                conn.close()
                if reused and attempt == 1:
                    log.info("supervisor connection broken (%s); reconnecting", e)
                    continue
                raise errors.SupervisorError(f"{op}: {e}") from None
            try:
                response = decode_response(line)
            except ProtocolError as e:
                conn.close()
                raise errors.SupervisorError(f"{op}: bad answer: {e}") from None
            if response.id != request.id:
                conn.close()
                message = response.error_message or "answer to another request"
                raise errors.SupervisorError(f"{op}: {message}")
            self._give_back(conn)
            if not response.ok:
                assert response.error_code is not None
                raise RemoteError(response.error_code, response.error_message)
            return response.result
        raise errors.SupervisorError(f"{op}: no connection")  # pragma: no cover

    def _take(self, timeout: float) -> tuple[_Connection, bool]:
        with self._lock:
            if self._idle:
                return self._idle.pop(), True
        try:
            return _Connection(self._path, timeout), False
        except OSError as e:
            raise errors.SupervisorError(
                f"cannot reach the supervisor at {self._path}: {e}"
            ) from None

    def _give_back(self, conn: _Connection) -> None:
        with self._lock:
            if len(self._idle) < self._max_idle:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
