"""The libvirt connection: opened lazily, every call time-boxed, reopened when it breaks.

A hung libvirtd must never hang an API call: calls run in a discardable executor and the
caller waits at most ``timeout``. When libvirt reports that the connection is gone (libvirtd
restarted), the connection is dropped and the call retried once on a new one.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import libvirt

from virthost.common import errors
from virthost.common.timebox import WorkQueue, run_with_timeout
from virthost.virt import eventloop

log = logging.getLogger("virthost.libvirt")

T = TypeVar("T")

_BROKEN_CODES = {
    libvirt.VIR_ERR_SYSTEM_ERROR,
    libvirt.VIR_ERR_NO_CONNECT,
    libvirt.VIR_ERR_INVALID_CONN,
    libvirt.VIR_ERR_INTERNAL_ERROR,
    libvirt.VIR_ERR_RPC,
}


class LibvirtError(errors.VirtHostError):
    code = 100
    message = "Hypervisor error"


def _is_broken(conn: Any, error: libvirt.libvirtError) -> bool:
    """The connection itself failed (not just this call): only then is a retry safe.

    Ordinary failures come with the same error codes (a missing file is a SYSTEM_ERROR), so
    the connection is asked whether it is still alive before anything is run a second time.
    """
    if error.get_error_code() not in _BROKEN_CODES:
        return False
    try:
        return not conn.isAlive()
    except libvirt.libvirtError:
        return True


ConnectListener = Callable[[Any], None]


class LibvirtConnection:
    """One shared connection to libvirtd.

    ``on_connect`` listeners run after every (re)connection with the new connection (to
    register event callbacks); ``on_disconnect`` listeners run when libvirt reports that the
    connection closed. With the event loop running, keep-alives detect a dead libvirtd.
    """

    def __init__(self, uri: str, executor: WorkQueue, timeout: float = 30.0) -> None:
        self.uri = uri
        self._executor = executor
        self._timeout = timeout
        self._lock = threading.Lock()
        self._conn: Any = None
        self._on_connect: list[ConnectListener] = []
        self._on_disconnect: list[Callable[[], None]] = []

    def add_listeners(
        self,
        on_connect: ConnectListener | None = None,
        on_disconnect: Callable[[], None] | None = None,
    ) -> None:
        if on_connect is not None:
            self._on_connect.append(on_connect)
        if on_disconnect is not None:
            self._on_disconnect.append(on_disconnect)

    @property
    def connected(self) -> bool:
        return self._conn is not None

    def _connection(self) -> Any:
        with self._lock:
            if self._conn is not None:
                return self._conn
            log.info("connecting to %s", self.uri)
            conn = libvirt.open(self.uri)
            if eventloop.running():
                try:
                    conn.setKeepAlive(5, 3)
                    conn.registerCloseCallback(self._closed, None)
                except libvirt.libvirtError as e:
                    log.warning("no keep-alive on %s: %s", self.uri, e)
            self._conn = conn
        for listener in self._on_connect:
            try:
                listener(conn)
            except Exception:
                log.exception("libvirt connect listener %r failed", listener)
        return conn

    def _closed(self, conn: Any, reason: int, _opaque: object) -> None:
        log.warning("libvirt connection to %s closed (reason %d)", self.uri, reason)
        with self._lock:
            if self._conn is conn:
                self._conn = None
        for listener in self._on_disconnect:
            try:
                listener()
            except Exception:
                log.exception("libvirt disconnect listener %r failed", listener)

    def ensure_connected(self, timeout: float | None = None) -> bool:
        """Open the connection if it is not open; False when libvirtd cannot be reached."""
        try:
            self.call(lambda conn: conn.getLibVersion(), "connect", timeout)
        except errors.VirtHostError as e:
            log.debug("libvirt not reachable: %s", e)
            return False
        return True

    def _drop(self, conn: Any) -> None:
        with self._lock:
            if self._conn is conn:
                self._conn = None
        with contextlib.suppress(libvirt.libvirtError):
            conn.close()

    def call(self, func: Callable[[Any], T], what: str, timeout: float | None = None) -> T:
        """Run ``func(virConnect)`` time-boxed; libvirt errors become LibvirtError."""

        def attempt() -> T:
            for retry in (False, True):
                try:
                    conn = self._connection()
                except libvirt.libvirtError as e:
                    message = e.get_error_message()
                    raise LibvirtError(f"cannot connect to {self.uri}: {message}") from None
                try:
                    return func(conn)
                except libvirt.libvirtError as e:
                    if not retry and _is_broken(conn, e):
                        log.warning("libvirt connection broken (%s); reconnecting", e)
                        self._drop(conn)
                        continue
                    raise LibvirtError(f"{what}: {e.get_error_message()}") from None
            raise AssertionError("unreachable")

        return run_with_timeout(self._executor, attempt, timeout or self._timeout, what)

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(libvirt.libvirtError):
                conn.close()
