"""``OutOfProcessIO``: file operations on one storage domain, run by a helper process.

Why: a hung NFS or Gluster mount blocks any thread that touches it, uninterruptibly and maybe
forever. Following VDSM's ioprocess, the daemon therefore never touches domain files itself: it
asks the domain's helper (:mod:`virthost.storage.oop.helper`) and waits at most ``timeout``
seconds. A call that overruns raises :class:`StorageTimeout` (VDSM code 3) in the calling thread,
which is free again; the helper keeps running with one thread stuck, its other threads keep
serving, and the stuck thread's late answer is dropped. A mount that stays hung ends up tying all
``max_threads`` threads and ``max_queued`` queue slots, and then calls fail at once with
:class:`TooManyRequests`, still without blocking anybody.

The API mirrors ``os``/``glob``/fileutils so storage code reads as it would with local calls:
OSErrors come back as the same subclass with errno and file names. The helper is started on
the first call, restarted on the first call after it died (calls pending when it died fail at
once with :class:`HelperDied`), stopped by :meth:`OutOfProcessIO.stop_if_idle` (the next call
starts it again) and for good by :meth:`OutOfProcessIO.close`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from types import TracebackType
from typing import Any

from virthost.storage.oop import protocol
from virthost.storage.oop.connection import HelperProcess, Pending
from virthost.storage.oop.exceptions import (
    BadRequest,
    HelperFailed,
    OopError,
    PoolClosed,
    StorageTimeout,
    TooManyRequests,
)
from virthost.storage.oop.ops import BLOCK_SIZE, READLINES_MAX, STAT_FIELDS, STATVFS_FIELDS

log = logging.getLogger("virthost.storage.oop")

StrPath = str | os.PathLike[str]

DEFAULT_MAX_THREADS = 10
DEFAULT_MAX_QUEUED = 10
DEFAULT_TIMEOUT = 60.0


def _raise_error(info: protocol.ErrorInfo, what: str) -> None:
    if info.kind is protocol.ErrorKind.OS:
        raise OSError(info.errno, info.message, info.filename, None, info.filename2)
    if info.kind is protocol.ErrorKind.BUSY:
        raise TooManyRequests(f"{what}: {info.message}")
    if info.kind is protocol.ErrorKind.EXPIRED:
        raise StorageTimeout(f"{what}: {info.message}")
    if info.kind is protocol.ErrorKind.INVALID:
        raise BadRequest(f"{what}: {info.message}")
    raise HelperFailed(f"{what}: {info.message}")


class OutOfProcessIO:
    """File operations for the storage domain ``name``, each time-boxed to ``timeout`` s."""

    def __init__(
        self,
        name: str,
        max_threads: int = DEFAULT_MAX_THREADS,
        max_queued: int = DEFAULT_MAX_QUEUED,
        timeout: float = DEFAULT_TIMEOUT,
        stop_grace: float = 2.0,
    ) -> None:
        if max_threads < 1 or max_queued < 1:
            raise ValueError("max_threads and max_queued must be at least 1")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        self._name = name
        self._max_threads = max_threads
        self._max_queued = max_queued
        self._timeout = timeout
        self._stop_grace = stop_grace
        self._lock = threading.Lock()
        self._helper: HelperProcess | None = None
        self._closed = False
        self._in_flight = 0
        self._last_used = time.monotonic()

    def __repr__(self) -> str:
        return f"<OutOfProcessIO {self._name!r} pid={self.helper_pid}>"

    @property
    def name(self) -> str:
        return self._name

    @property
    def timeout(self) -> float:
        return self._timeout

    @property
    def helper_pid(self) -> int | None:
        """The pid of the running helper; None before the first call or once stopped."""
        with self._lock:
            helper = self._helper
        return helper.pid if helper is not None and helper.alive else None

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> OutOfProcessIO:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the helper for good; pending calls fail with PoolClosed, later calls too."""
        with self._lock:
            self._closed = True
            helper, self._helper = self._helper, None
        if helper is not None:
            helper.stop(PoolClosed(f"pool {self._name} closed"), self._stop_grace)

    def stop_if_idle(self, idle_time: float) -> bool:
        """Stop the helper when no call ran for ``idle_time`` s; the next call restarts it."""
        with self._lock:
            idle = time.monotonic() - self._last_used >= idle_time
            if self._helper is None or self._in_flight or not idle:
                return False
            helper, self._helper = self._helper, None
        log.debug("Stopping idle I/O helper %s (pid %d)", self._name, helper.pid)
        helper.stop(PoolClosed(f"pool {self._name} went idle"), self._stop_grace)
        return True

    def _acquire(self) -> HelperProcess:
        """The running helper, started if needed; counts the caller as in flight."""
        with self._lock:
            if self._closed:
                raise PoolClosed(f"pool {self._name} is closed")
            if self._helper is None or not self._helper.alive:
                if self._helper is not None:
                    log.warning("Restarting I/O helper %s", self._name)
                try:
                    self._helper = HelperProcess(self._name, self._max_threads, self._max_queued)
                except OSError as e:
                    raise OopError(f"cannot start I/O helper {self._name}: {e}") from e
            self._in_flight += 1
            self._last_used = time.monotonic()
            return self._helper

    def _release(self) -> None:
        with self._lock:
            self._in_flight -= 1
            self._last_used = time.monotonic()

    def _call(self, op: str, **args: Any) -> Any:
        what = f"{op}({args.get('path') or args.get('pattern') or args.get('src') or ''!s})"
        what += f" on {self._name}"
        helper = self._acquire()
        try:
            ident, pending = helper.submit(op, args, self._timeout)
            response = self._wait(helper, ident, pending, what)
        finally:
            self._release()
        if response.error is not None:
            _raise_error(response.error, what)
        return response.result

    def _wait(
        self, helper: HelperProcess, ident: int, pending: Pending, what: str
    ) -> protocol.Response:
        if not pending.done.wait(self._timeout) and helper.forget(ident):
            raise StorageTimeout(f"{what} did not complete within {self._timeout:g} s")
        pending.done.wait()  # the outcome was being delivered as the time box closed
        if pending.error is not None:
            raise type(pending.error)(f"{what}: {pending.error.detail}")
        assert pending.response is not None
        return pending.response

    # --- queries --------------------------------------------------------------------------

    def ping(self) -> None:
        """A round trip through the helper, touching no file."""
        self._call("ping")

    def stat(self, path: StrPath, follow_symlinks: bool = True) -> os.stat_result:
        fields = self._call("stat", path=os.fspath(path), follow_symlinks=follow_symlinks)
        head = tuple(fields[name] for name in STAT_FIELDS[:7])
        times = tuple(int(fields[name]) for name in STAT_FIELDS[7:10])
        extra = {name: fields[name] for name in STAT_FIELDS[7:]}
        return os.stat_result(head + times, extra)

    def statvfs(self, path: StrPath) -> os.statvfs_result:
        fields = self._call("statvfs", path=os.fspath(path))
        head = tuple(fields[name] for name in STATVFS_FIELDS[:-1])
        return os.statvfs_result(head, {"f_fsid": fields["f_fsid"]})

    def exists(self, path: StrPath) -> bool:
        return bool(self._call("exists", path=os.fspath(path)))

    def access(self, path: StrPath, mode: int) -> bool:
        """``os.access``: whether the daemon's user may access ``path`` in ``mode``."""
        return bool(self._call("access", path=os.fspath(path), mode=mode))

    def listdir(self, path: StrPath) -> list[str]:
        """The names in a directory, sorted."""
        return list(self._call("listdir", path=os.fspath(path)))

    def glob(self, pattern: str) -> list[str]:
        """``glob.glob(pattern)``, sorted."""
        return list(self._call("glob", pattern=pattern))

    # --- reading --------------------------------------------------------------------------

    def read_file(
        self, path: StrPath, direct: bool = False, offset: int = 0, size: int | None = None
    ) -> bytes:
        """``size`` bytes from ``offset`` (default: to the end), with O_DIRECT if ``direct``.

        A direct read needs ``offset`` to be a multiple of the block size.
        """
        data = self._call(
            "read_file", path=os.fspath(path), direct=direct, offset=offset, size=size
        )
        return protocol.decode_bytes(data)

    def directio_read(self, path: StrPath, size: int = BLOCK_SIZE) -> bytes:
        """The first ``size`` bytes read with O_DIRECT: proof that the storage answers now."""
        return protocol.decode_bytes(self._call("directio_read", path=os.fspath(path), size=size))

    def readlines(self, path: StrPath, max_size: int = READLINES_MAX) -> list[str]:
        """The lines of a small text file, without line ends (EFBIG beyond ``max_size``)."""
        return list(self._call("readlines", path=os.fspath(path), max_size=max_size))

    # --- writing --------------------------------------------------------------------------

    def write_file(
        self, path: StrPath, data: bytes, direct: bool = False, mode: int = 0o644
    ) -> None:
        """Replace ``path`` with ``data`` atomically (temporary file, fsync, rename)."""
        if len(data) > protocol.MAX_PAYLOAD:
            raise BadRequest(f"{len(data)} bytes exceed the limit of {protocol.MAX_PAYLOAD}")
        encoded = protocol.encode_bytes(data)
        self._call("write_file", path=os.fspath(path), data=encoded, direct=direct, mode=mode)

    def truncate(
        self, path: StrPath, size: int, mode: int | None = None, exclusive: bool = False
    ) -> None:
        """Set the size of ``path``, creating it (sparse) if missing; ``exclusive``: it must be."""
        self._call("truncate", path=os.fspath(path), size=size, mode=mode, exclusive=exclusive)

    def touch(self, path: StrPath, mode: int = 0o644) -> None:
        self._call("touch", path=os.fspath(path), mode=mode)

    def fsync(self, path: StrPath) -> None:
        self._call("fsync", path=os.fspath(path))

    def unlink(self, path: StrPath) -> None:
        self._call("unlink", path=os.fspath(path))

    def rename(self, src: StrPath, dst: StrPath) -> None:
        self._call("rename", src=os.fspath(src), dst=os.fspath(dst))

    def probe_block_size(self, directory: StrPath) -> int:
        """The storage's block size under ``directory`` (512 or 4096), by a direct write."""
        return int(self._call("probe_block_size", path=os.fspath(directory)))

    def chgrp(self, path: StrPath, gid: int) -> None:
        """Give ``path`` to group ``gid`` (the owner stays)."""
        self._call("chgrp", path=os.fspath(path), gid=gid)

    def chmod(self, path: StrPath, mode: int) -> None:
        self._call("chmod", path=os.fspath(path), mode=mode)

    def link(self, src: StrPath, dst: StrPath) -> None:
        """Make ``dst`` a hard link to ``src`` (EEXIST when ``dst`` exists)."""
        self._call("link", src=os.fspath(src), dst=os.fspath(dst))

    def mkdir(self, path: StrPath, mode: int = 0o755) -> None:
        self._call("mkdir", path=os.fspath(path), mode=mode)

    def makedirs(self, path: StrPath, mode: int = 0o755, exist_ok: bool = True) -> None:
        self._call("makedirs", path=os.fspath(path), mode=mode, exist_ok=exist_ok)

    def rmdir(self, path: StrPath) -> None:
        self._call("rmdir", path=os.fspath(path))

    def rmtree(self, path: StrPath, root: StrPath) -> None:
        """Remove the tree at ``path``, which must resolve strictly under ``root``."""
        self._call("rmtree", path=os.fspath(path), root=os.fspath(root))
