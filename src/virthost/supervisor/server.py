"""The supervisor's socket server: checks who is calling, then runs whitelisted operations.

The socket file is root-owned, group of the daemon's user, mode 0660; on top of that every
connection's peer credentials (SO_PEERCRED: the kernel's word, not the client's) are checked
against the allowed uids before a single byte is read. Each connection is served by its own
thread, requests on it one after the other.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import struct
import threading
from collections.abc import Mapping
from pathlib import Path

from virthost.common import errors
from virthost.supervisor.operations import Operation
from virthost.supervisor.protocol import (
    MAX_MESSAGE,
    ProtocolError,
    Response,
    decode_request,
)

log = logging.getLogger("virthost.supervisor")


def peer_credentials(conn: socket.socket) -> tuple[int, int, int]:
    """(pid, uid, gid) of the process at the other end of a unix socket."""
    data = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", data)
    return pid, uid, gid


class SupervisorServer:
    def __init__(
        self,
        socket_path: Path,
        operations: Mapping[str, Operation],
        allowed_uids: set[int],
        socket_gid: int | None = None,
    ) -> None:
        self._path = socket_path
        self._operations = operations
        self._allowed = set(allowed_uids)
        self._gid = socket_gid
        self._sock: socket.socket | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        if self._path.exists() or self._path.is_symlink():
            self._path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)
        try:
            sock.bind(str(self._path))
        finally:
            os.umask(old_umask)
        if self._gid is not None:
            os.chown(self._path, 0 if os.geteuid() == 0 else -1, self._gid)
        os.chmod(self._path, 0o660)
        sock.listen(64)
        self._sock = sock
        self._thread = threading.Thread(target=self._accept_loop, name="supervisor/accept")
        self._thread.daemon = True
        self._thread.start()
        log.info("serving %d operations on %s", len(self._operations), self._path)

    def stop(self) -> None:
        self._stopping.set()
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            self._sock.close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with contextlib.suppress(FileNotFoundError):
            self._path.unlink()

    def _accept_loop(self) -> None:
        assert self._sock is not None
        count = 0
        while not self._stopping.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                if self._stopping.is_set():
                    return
                log.exception("accept failed")
                continue
            count += 1
            threading.Thread(
                target=self._serve, args=(conn,), name=f"supervisor/{count}", daemon=True
            ).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            pid, uid, _gid = peer_credentials(conn)
            if uid not in self._allowed:
                log.warning("refusing pid %d uid %d: not an allowed user", pid, uid)
                refusal = Response(None, None, errors.SupervisorError.code, "peer not allowed")
                with contextlib.suppress(OSError):
                    conn.sendall(refusal.encode())
                return
            reader = conn.makefile("rb")
            while True:
                line = reader.readline(MAX_MESSAGE + 1)
                if not line:
                    return
                response = self._handle(line, pid)
                try:
                    conn.sendall(response.encode())
                except OSError:
                    return
                if len(line) > MAX_MESSAGE:
                    return

    def _handle(self, line: bytes, pid: int) -> Response:
        try:
            request = decode_request(line)
        except ProtocolError as e:
            return Response(None, None, errors.InvalidParameter.code, f"bad request: {e}")
        op = self._operations.get(request.op)
        if op is None:
            log.warning("pid %d asked for unknown operation %r", pid, request.op)
            return Response(
                request.id, None, errors.UnsupportedOperation.code, f"no operation {request.op!r}"
            )
        try:
            op.check_args(request.args)
            log.info("pid %d: %s", pid, op.name)
            return Response(request.id, op.func(**request.args))
        except errors.VirtHostError as e:
            log.warning("%s failed: %s", op.name, e.wire_message)
            return Response(request.id, None, e.code, e.wire_message)
        except Exception:
            log.exception("%s failed unexpectedly", op.name)
            return Response(request.id, None, errors.UnexpectedError.code, "unexpected error")
