"""The thin layer between :mod:`virthost.storage.clusterlock` and python-sanlock.

Why a separate layer: python-sanlock is an untyped C extension whose calls block in the
kernel (storage I/O, or waiting on the daemon's socket) with no timeout of their own, takes
names as bytes but paths as str, and reports failures as ``SanlockException`` with an errno
that is sometimes a POSIX errno and sometimes one of sanlock's own negative codes. This module
turns that into something the rest of virthost can rely on:

* :func:`call` runs one sanlock call in a daemon thread and waits at most ``timeout``
  seconds (the binding releases the GIL while it blocks, so the waiting thread is free). A
  call still running at the deadline cannot be interrupted; it is abandoned, and if it
  succeeds later an ``on_late`` callback undoes it (a late acquire is released again).
* a ``SanlockException`` becomes a :class:`~virthost.common.errors.VirtHostError` with
  VDSM's code for the operation, a readable reason and ``context["sanlock_errno"]``;
* lockspace and lease names are checked and encoded (ASCII, at most 48 bytes), and what the
  daemon returns is parsed into typed records.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

import sanlock

from virthost.common import errors

log = logging.getLogger("virthost.storage.clusterlock")

T = TypeVar("T")

NAME_MAX: Final = 48  # SANLK_NAME_LEN

# sanlock's own negative error numbers (sanlock_rv.h) that matter to callers.
SANLK_LEADER_MAGIC: Final = -223  # no lease initialised at that offset
SANLK_ACQUIRE_LVER: Final = -240  # the lease is not at the requested version
SANLK_ACQUIRE_IDLIVE: Final = -243  # "Lease is held by another host" (its host id is live)
SANLK_ACQUIRE_OWNED: Final = -244  # owned by another host
SANLK_ACQUIRE_OTHER: Final = -245  # another host is acquiring it right now

_OWN_CODES: Final[Mapping[int, str]] = {
    SANLK_LEADER_MAGIC: "no lease is initialised there",
    SANLK_ACQUIRE_LVER: "the lease is not at the requested version",
}
_HOST_STATES: Final[Mapping[int, str]] = {
    sanlock.HOST_UNKNOWN: "unknown",
    sanlock.HOST_FREE: "free",
    sanlock.HOST_LIVE: "live",
    sanlock.HOST_FAIL: "fail",
    sanlock.HOST_DEAD: "dead",
}
_HOST_STATE_MASK: Final = 0x0F


@dataclass(frozen=True)
class HostStatus:
    """One host id in a lockspace as this host's sanlock daemon sees it."""

    host_id: int
    generation: int
    timestamp: int
    io_timeout: int
    state: str  # unknown | free | live | fail | dead


@dataclass(frozen=True)
class LeaseOwner:
    host_id: int
    generation: int
    timestamp: int


@dataclass(frozen=True)
class LeaseStatus:
    """A lease as read from storage: its last version and who holds it (none when free).

    The owners are not filtered: a host that died holding the lease stays listed until its
    lease expires; ``clusterlock.host_status`` tells whether it is still alive.
    """

    lockspace: str
    resource: str
    version: int
    owners: tuple[LeaseOwner, ...]


@dataclass(frozen=True)
class HeldLease:
    """A lease this process holds, with the version it acquired."""

    lockspace: str
    resource: str
    version: int
    disks: tuple[tuple[str, int], ...]


class _Outcome(Generic[T]):
    """What the worker thread produced, and whether the caller stopped waiting for it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.finished = False
        self.abandoned = False
        self.value: T | None = None
        self.error: BaseException | None = None


def call(
    what: str,
    fn: Callable[[], T],
    *,
    timeout: float,
    error: type[errors.VirtHostError],
    special: Mapping[int, type[errors.VirtHostError]] | None = None,
    explain: Mapping[int, str] | None = None,
    on_late: Callable[[T], None] | None = None,
) -> T:
    """Run ``fn`` (one sanlock call) for at most ``timeout`` seconds.

    Failures raise ``error`` (or ``special[errno]``), described by ``explain[errno]`` when
    given; a timeout raises ``error`` with ``context["timeout"]``.
    """
    outcome: _Outcome[T] = _Outcome()

    def run() -> None:
        value: T | None = None
        failure: BaseException | None = None
        try:
            value = fn()
        except BaseException as e:  # handed over to the waiting thread
            failure = e
        with outcome.lock:
            outcome.value, outcome.error, outcome.finished = value, failure, True
            late = outcome.abandoned
        outcome.done.set()
        if late and failure is None and on_late is not None:
            try:
                on_late(value)  # type: ignore[arg-type]  # fn succeeded: value is a T
            except Exception:
                log.exception("Undoing the late %s failed", what)

    threading.Thread(target=run, name=f"sanlock {what[:40]}", daemon=True).start()
    outcome.done.wait(timeout)
    with outcome.lock:
        if not outcome.finished:
            outcome.abandoned = True
            log.error("sanlock did not finish %s within %g s", what, timeout)
            raise error(f"{what}: sanlock did not answer within {timeout:g} s", timeout=timeout)
    if outcome.error is None:
        return outcome.value  # type: ignore[return-value]  # fn returned normally
    exc = outcome.error
    if not isinstance(exc, sanlock.SanlockException):
        raise exc
    code = int(exc.errno) if exc.errno is not None else 0
    reason = (explain or {}).get(code) or _OWN_CODES.get(code) or _strerror(exc)
    cls = (special or {}).get(code, error)
    raise cls(f"{what}: {reason} (sanlock error {code})", sanlock_errno=code) from exc


def encode_name(value: str) -> bytes:
    """A lockspace or lease name as sanlock takes it."""
    raw = value.encode("ascii") if value.isascii() else b""
    if not raw or len(raw) > NAME_MAX:
        raise errors.InvalidParameter(f"not a sanlock lockspace or lease name: {value!r}")
    return raw


def decode_name(value: bytes | str) -> str:
    return value.decode("ascii", errors="replace") if isinstance(value, bytes) else value


def parse_host(raw: Mapping[str, Any]) -> HostStatus:
    flags = int(raw.get("flags", 0))
    return HostStatus(
        host_id=int(raw["host_id"]),
        generation=int(raw["generation"]),
        timestamp=int(raw["timestamp"]),
        io_timeout=int(raw["io_timeout"]),
        state=_HOST_STATES.get(flags & _HOST_STATE_MASK, "unknown"),
    )


def parse_owner(raw: Mapping[str, Any]) -> LeaseOwner:
    return LeaseOwner(int(raw["host_id"]), int(raw["generation"]), int(raw["timestamp"]))


def parse_held(raw: Mapping[str, Any]) -> HeldLease:
    return HeldLease(
        decode_name(raw["lockspace"]),
        decode_name(raw["resource"]),
        int(raw["version"]),
        tuple((str(path), int(offset)) for path, offset in raw["disks"]),
    )


def _strerror(exc: BaseException) -> str:
    # SanlockException args: (errno, what sanlock tried, strerror-like text)
    if len(exc.args) > 2 and exc.args[2]:
        return str(exc.args[2])
    return str(exc)
