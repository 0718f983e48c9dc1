"""Shared/exclusive locks on named resources, so conflicting operations serialise finely.

Operations on a storage domain, an image or a VM must not run over each other, yet unrelated
operations must not wait for each other either; one big lock would do the former and ruin the
latter. Like VDSM's resource manager, every lockable thing is named by a namespace (the kind of
thing, e.g. ``"01_img_<sd>"``) and a name (which one), and may be held SHARED by any number of
holders or EXCLUSIVE by one.

Fairness: requests queue FIFO per resource. A request is granted at once only when nobody waits
before it and it is compatible with the holders; when a lock is released the queue is granted
from the head, all consecutive SHARED requests together. So once an EXCLUSIVE request waits, new
SHARED requests queue behind it and a steady stream of readers cannot starve a writer, while
writers in turn cannot starve the readers queued before them.

Every acquisition has a timeout (a stuck holder must turn into an error the engine sees, code
851, rather than a hung thread). A request that times out leaves the queue, which may let the
requests behind it through.

Deadlocks between multi-resource operations are avoided by ordering: :meth:`acquire_all` takes
its locks in sorted (namespace, name) order under one overall deadline, and on failure gives back
what it already holds. Locks are not re-entrant: a holder asking again for the same resource in
EXCLUSIVE mode waits for itself until its timeout.

Resource entries are created on first use and deleted once nobody holds or waits for them, so
the table only ever contains resources in use (images and volumes come and go by the thousand).
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections import deque
from collections.abc import Iterable
from types import TracebackType
from typing import Any

from virthost.common import errors

log = logging.getLogger("virthost.resources")


class LockMode(enum.Enum):
    SHARED = "shared"
    EXCLUSIVE = "exclusive"


class _Request:
    """A queued request; ``granted`` is set under the manager's lock before ``event`` fires."""

    __slots__ = ("event", "granted", "mode")

    def __init__(self, mode: LockMode) -> None:
        self.mode = mode
        self.granted = False
        self.event = threading.Event()


class _Resource:
    """Holders and waiters of one resource; guarded by the manager's lock."""

    __slots__ = ("holders", "mode", "waiters")

    def __init__(self) -> None:
        self.mode: LockMode | None = None  # the mode it is held in, None when free
        self.holders = 0
        self.waiters: deque[_Request] = deque()

    def admits(self, mode: LockMode) -> bool:
        return self.holders == 0 or (mode is LockMode.SHARED and self.mode is LockMode.SHARED)

    def take(self, mode: LockMode) -> None:
        self.mode = mode
        self.holders += 1

    @property
    def unused(self) -> bool:
        return self.holders == 0 and not self.waiters


class ResourceLock:
    """One held lock; release it explicitly or by leaving the ``with`` block."""

    def __init__(self, manager: ResourceManager, namespace: str, name: str, mode: LockMode) -> None:
        self._manager = manager
        self.namespace = namespace
        self.name = name
        self.mode = mode
        self._released = False
        self._release_lock = threading.Lock()

    @property
    def released(self) -> bool:
        return self._released

    def release(self) -> None:
        """Give the lock back; calling it again does nothing."""
        with self._release_lock:
            if self._released:
                return
            self._released = True
        self._manager._release(self.namespace, self.name)

    def __enter__(self) -> ResourceLock:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def __repr__(self) -> str:
        state = "released" if self._released else "held"
        return f"<ResourceLock {self.namespace}/{self.name} {self.mode.value} {state}>"


class LockSet:
    """Locks taken together by :meth:`ResourceManager.acquire_all`, released in reverse order."""

    def __init__(self, locks: Iterable[ResourceLock]) -> None:
        self.locks = tuple(locks)

    def release(self) -> None:
        """Release every lock; calling it again does nothing."""
        for lock in reversed(self.locks):
            lock.release()

    def __enter__(self) -> LockSet:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


class ResourceManager:
    """The table of lockable resources of one process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._resources: dict[tuple[str, str], _Resource] = {}

    def acquire(self, namespace: str, name: str, mode: LockMode, timeout: float) -> ResourceLock:
        """Lock one resource, waiting at most ``timeout`` seconds (0 means do not wait).

        Raises :class:`errors.ResourceTimeout` naming the resource when the wait runs out.
        """
        return self._acquire(namespace, name, mode, timeout, timeout)

    def acquire_all(self, requests: Iterable[tuple[str, str, LockMode]], timeout: float) -> LockSet:
        """Lock several resources in sorted order within one overall ``timeout``.

        Several requests for one resource become one lock, EXCLUSIVE if any asked for it. If any
        lock cannot be had in time, the ones already taken are released and the error raised.
        """
        merged: dict[tuple[str, str], LockMode] = {}
        for namespace, name, mode in requests:
            _check_mode(mode)
            if merged.get((namespace, name)) is not LockMode.EXCLUSIVE:
                merged[(namespace, name)] = mode
        deadline = time.monotonic() + _check_timeout(timeout)
        held: list[ResourceLock] = []
        try:
            for namespace, name in sorted(merged):
                remaining = max(0.0, deadline - time.monotonic())
                mode = merged[(namespace, name)]
                held.append(self._acquire(namespace, name, mode, remaining, timeout))
        except BaseException:
            for lock in reversed(held):
                lock.release()
            raise
        return LockSet(held)

    def snapshot(self) -> dict[str, dict[str, dict[str, Any]]]:
        """What is held and awaited, for debugging: ``{namespace: {name: {...}}}``.

        Each entry has ``mode`` ("shared", "exclusive" or None while only waited for),
        ``holders`` (a count) and ``waiters`` (the queued modes, first in line first).
        """
        result: dict[str, dict[str, dict[str, Any]]] = {}
        with self._lock:
            for (namespace, name), resource in sorted(self._resources.items()):
                result.setdefault(namespace, {})[name] = {
                    "mode": resource.mode.value if resource.mode is not None else None,
                    "holders": resource.holders,
                    "waiters": [request.mode.value for request in resource.waiters],
                }
        return result

    def _acquire(
        self, namespace: str, name: str, mode: LockMode, wait: float, timeout: float
    ) -> ResourceLock:
        """Wait at most ``wait`` seconds; ``timeout`` is the caller's, for the error message."""
        _check_mode(mode)
        wait = _check_timeout(wait)
        key = (namespace, name)
        with self._lock:
            resource = self._resources.setdefault(key, _Resource())
            if not resource.waiters and resource.admits(mode):
                resource.take(mode)
                return ResourceLock(self, namespace, name, mode)
            request = _Request(mode)
            resource.waiters.append(request)

        if not request.event.wait(wait):
            with self._lock:
                if not request.granted:  # not granted at the last moment either
                    resource.waiters.remove(request)
                    self._grant_waiters(resource)
                    self._forget_if_unused(key, resource)
                    log.debug("Timed out waiting for %s lock on %s/%s", mode.value, *key)
                    raise errors.ResourceTimeout(
                        f"{mode.value} lock on {namespace}/{name} not acquired within "
                        f"{timeout:g} s",
                        namespace=namespace,
                        name=name,
                    )
        return ResourceLock(self, namespace, name, mode)

    def _release(self, namespace: str, name: str) -> None:
        key = (namespace, name)
        with self._lock:
            resource = self._resources[key]
            resource.holders -= 1
            if resource.holders == 0:
                resource.mode = None
                self._grant_waiters(resource)
            self._forget_if_unused(key, resource)

    @staticmethod
    def _grant_waiters(resource: _Resource) -> None:
        """Grant the head of the queue while it fits (consecutive SHARED ones together)."""
        while resource.waiters and resource.admits(resource.waiters[0].mode):
            request = resource.waiters.popleft()
            resource.take(request.mode)
            request.granted = True
            request.event.set()

    def _forget_if_unused(self, key: tuple[str, str], resource: _Resource) -> None:
        if resource.unused:
            del self._resources[key]


def _check_mode(mode: object) -> None:
    if not isinstance(mode, LockMode):
        raise TypeError(f"lock mode must be a LockMode, got {mode!r}")


def _check_timeout(timeout: float) -> float:
    if timeout < 0:
        raise ValueError(f"timeout must not be negative, got {timeout}")
    return timeout
