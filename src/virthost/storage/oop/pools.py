"""``ProcessPools``: one :class:`OutOfProcessIO` per storage domain, plus a "Global" one.

Why one per domain: the whole point of out-of-process I/O is that a hung mount costs only the
calls that go to it. Sharing one helper between domains would let a single hung NFS server tie up
every helper thread and starve the healthy domains; with a pool each, it exhausts only its own.
The "Global" pool serves file access that belongs to no domain (mount points, the data-center
links).

Pools are created on first use and kept, so a reference a caller holds stays valid; what costs is
the helper process, and that is stopped once its pool has been idle for ``idle_time`` seconds
(the next call starts it again). A background thread checks every ``reap_interval`` seconds;
:meth:`ProcessPools.reap_idle` does the same check on demand. :meth:`ProcessPools.discard` closes
and forgets a domain's pool for good (the domain was disconnected).
"""

from __future__ import annotations

import logging
import threading

from virthost.storage.oop.client import (
    DEFAULT_MAX_QUEUED,
    DEFAULT_MAX_THREADS,
    DEFAULT_TIMEOUT,
    OutOfProcessIO,
)
from virthost.storage.oop.exceptions import PoolClosed

log = logging.getLogger("virthost.storage.oop")

GLOBAL = "Global"
DEFAULT_IDLE_TIME = 60.0


class ProcessPools:
    """The daemon's out-of-process I/O pools, by domain name."""

    def __init__(
        self,
        max_threads: int = DEFAULT_MAX_THREADS,
        max_queued: int = DEFAULT_MAX_QUEUED,
        timeout: float = DEFAULT_TIMEOUT,
        idle_time: float = DEFAULT_IDLE_TIME,
        reap_interval: float | None = None,
    ) -> None:
        """``reap_interval`` defaults to half of ``idle_time``; 0 disables the reaper thread."""
        if idle_time < 0:
            raise ValueError(f"idle_time must not be negative, got {idle_time}")
        self._max_threads = max_threads
        self._max_queued = max_queued
        self._timeout = timeout
        self._idle_time = idle_time
        self._reap_interval = idle_time / 2 if reap_interval is None else reap_interval
        self._lock = threading.Lock()
        self._pools: dict[str, OutOfProcessIO] = {}
        self._closed = False
        self._stop = threading.Event()
        self._reaper: threading.Thread | None = None

    @property
    def idle_time(self) -> float:
        return self._idle_time

    def get(self, name: str = GLOBAL) -> OutOfProcessIO:
        """The pool of domain ``name``, created on first use."""
        if not name:
            raise ValueError("a pool needs a name")
        with self._lock:
            if self._closed:
                raise PoolClosed("the process pools are closed")
            pool = self._pools.get(name)
            if pool is None:
                pool = OutOfProcessIO(name, self._max_threads, self._max_queued, self._timeout)
                self._pools[name] = pool
            self._start_reaper()
            return pool

    @property
    def global_pool(self) -> OutOfProcessIO:
        return self.get(GLOBAL)

    def names(self) -> list[str]:
        """The names of the pools created so far, sorted."""
        with self._lock:
            return sorted(self._pools)

    def running(self) -> list[str]:
        """The names of the pools whose helper process is running, sorted."""
        with self._lock:
            pools = list(self._pools.values())
        return sorted(pool.name for pool in pools if pool.helper_pid is not None)

    def reap_idle(self) -> list[str]:
        """Stop the helpers of pools idle for ``idle_time``; returns their names."""
        with self._lock:
            pools = list(self._pools.values())
        return [pool.name for pool in pools if pool.stop_if_idle(self._idle_time)]

    def discard(self, name: str) -> None:
        """Close and forget the pool of ``name`` (a no-op when it has none)."""
        with self._lock:
            pool = self._pools.pop(name, None)
        if pool is not None:
            pool.close()

    def close(self) -> None:
        """Close every pool and stop the reaper; further ``get`` calls raise PoolClosed."""
        with self._lock:
            self._closed = True
            pools, self._pools = list(self._pools.values()), {}
            reaper = self._reaper
        self._stop.set()
        for pool in pools:
            pool.close()
        if reaper is not None and reaper is not threading.current_thread():
            reaper.join()

    def _start_reaper(self) -> None:
        """Called with the lock held."""
        if self._reaper is not None or self._reap_interval <= 0:
            return
        self._reaper = threading.Thread(target=self._reap_loop, name="oop/reaper", daemon=True)
        self._reaper.start()

    def _reap_loop(self) -> None:
        while not self._stop.wait(self._reap_interval):
            try:
                stopped = self.reap_idle()
            except Exception:
                log.exception("Reaping idle I/O helpers failed")
                continue
            if stopped:
                log.debug("Stopped idle I/O helpers: %s", ", ".join(stopped))
