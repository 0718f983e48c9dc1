"""Storage domain monitoring: is each domain's storage answering, and how fast?

The engine decides whether a domain is healthy on this host from what we report here
(Host.getStorageRepoStats, and ``storageDomains`` in Host.getStats). For every monitored
domain a periodic job reads the first 4 KiB of the domain metadata with O_DIRECT, so the
answer comes from the storage and not from the page cache, and records how long it took.

Why one periodic job per domain, run through the domain's own out-of-process pool: a hung
mount must only make *its* domain invalid. The pool time-boxes the read (a hang becomes
:class:`~virthost.storage.oop.StorageTimeout`, code 3) and the periodic executor discards a
worker that overstays, so neither the other domains' checks nor the daemon wait for it.
Each job is exclusive: a slow check postpones its domain's next check instead of piling
up reads on storage that is already struggling.

The report follows VDSM: ``code`` (0 or the error of the last check), ``lastCheck`` and
``delay`` as strings of seconds, ``valid``, ``version`` (-1 until known), ``acquired`` (this
host holds its id in the domain lockspace) and ``actual`` (a check has completed since
monitoring started, so the rest describes the storage rather than the initial state).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from virthost.common import errors, validate
from virthost.common.executor import Executor
from virthost.common.periodic import PeriodicOperation
from virthost.common.scheduler import Scheduler
from virthost.storage import constants as sc
from virthost.storage import errors as se
from virthost.storage import sdmetadata

log = logging.getLogger("virthost.storage.monitor")

DEFAULT_CHECK_INTERVAL = 10.0
CHECK_SIZE = 4096
MAX_HOST_ID = 2000
UNKNOWN_VERSION = -1


class DirectReader(Protocol):
    def directio_read(self, path: str, size: int = ...) -> bytes: ...


class Pools(Protocol):
    def get(self, name: str = ...) -> Any: ...


class DomainLocator(Protocol):
    def domain_dir(self, sd_uuid: Any) -> str: ...


class HostIdManager(Protocol):
    """Joins and leaves lockspaces (:class:`virthost.storage.hostids.HostIds`)."""

    def acquire(self, sd_uuid: str, host_id: int, ids: str) -> bool: ...

    def release(self, sd_uuid: str, host_id: int, ids: str) -> None: ...


@dataclass
class _Status:
    started: float
    host_id: int
    code: int = 0
    check_time: float | None = None
    delay: float = 0.0
    version: int = UNKNOWN_VERSION
    acquired: bool = False
    actual: bool = False


def host_id_arg(value: Any) -> int:
    """hostID as sent on the wire (an int or a string of one), within sanlock's range."""
    if isinstance(value, bool):
        raise errors.InvalidParameter(f"hostID={value!r}")
    try:
        host_id = int(value)
    except (TypeError, ValueError):
        raise errors.InvalidParameter(f"hostID={value!r}") from None
    if not 1 <= host_id <= MAX_HOST_ID:
        raise errors.InvalidParameter(f"hostID={value!r} is not in 1..{MAX_HOST_ID}")
    return host_id


def error_code(exc: BaseException) -> int:
    """The VDSM code a failed check reports: the error's own, else "domain inaccessible"."""
    code = getattr(exc, "code", None)
    if isinstance(exc, errors.VirtHostError) and isinstance(code, int) and code != 0:
        return code
    return se.StorageDomainAccessError.code


def parse_version(data: bytes) -> int | None:
    """VERSION from the start of a metadata file, None when it is not there."""
    for line in data.decode("utf-8", "replace").splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() == "VERSION":
            try:
                return int(value.strip())
            except ValueError:
                return None
    return None


class DomainMonitor:
    """Checks the monitored domains periodically and reports their health."""

    def __init__(
        self,
        domains: DomainLocator,
        pools: Pools,
        scheduler: Scheduler,
        executor: Executor,
        check_interval: float = DEFAULT_CHECK_INTERVAL,
        host_ids: HostIdManager | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if check_interval <= 0:
            raise ValueError(f"check_interval must be positive, got {check_interval}")
        self._domains = domains
        self._pools = pools
        self._scheduler = scheduler
        self._executor = executor
        self._interval = check_interval
        self._host_ids = host_ids
        self._clock = clock
        self._lock = threading.Lock()
        self._status: dict[str, _Status] = {}
        self._ops: dict[str, PeriodicOperation] = {}
        self._dirs: dict[str, str] = {}
        self._stopped = False

    @property
    def check_interval(self) -> float:
        return self._interval

    # --- verbs ----------------------------------------------------------------------------

    def start_monitoring(self, sd_uuid: Any, host_id: Any) -> None:
        sd = validate.uuid(sd_uuid, "sdUUID")
        hid = host_id_arg(host_id)
        with self._lock:
            if self._stopped:
                raise errors.VirtHostError("the domain monitor is stopped")
            if sd in self._ops:
                log.info("Domain %s is already monitored", sd)
                return
            op = PeriodicOperation(
                f"monitor/{sd[:7]}",
                lambda: self.check(sd),
                self._interval,
                self._scheduler,
                self._executor,
                exclusive=True,
            )
            self._status[sd] = _Status(started=self._clock(), host_id=hid)
            self._ops[sd] = op
            op.start()
        log.info("Started monitoring domain %s (host id %d)", sd, hid)

    def stop_monitoring(self, sd_uuid: Any) -> None:
        sd = validate.uuid(sd_uuid, "sdUUID")
        with self._lock:
            op = self._ops.pop(sd, None)
            st = self._status.pop(sd, None)
            directory = self._dirs.pop(sd, None)
        if op is None or st is None:
            log.info("Domain %s is not monitored", sd)
            return
        op.stop()
        if directory is None:
            try:
                directory = self._domains.domain_dir(sd)
            except Exception as e:
                log.warning("Cannot find domain %s to leave its lockspace: %s", sd, e)
        self._release_host_id(sd, st.host_id, directory)
        log.info("Stopped monitoring domain %s", sd)

    def monitored(self) -> list[str]:
        with self._lock:
            return sorted(self._ops)

    def report(self, domains: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        """The health of the monitored domains (of those in ``domains`` when given)."""
        wanted = set(domains) if domains else None
        now = self._clock()
        with self._lock:
            items = [
                (sd, _Status(**vars(st)))
                for sd, st in self._status.items()
                if wanted is None or sd in wanted
            ]
        return {sd: self._entry(st, now) for sd, st in items}

    @staticmethod
    def _entry(st: _Status, now: float) -> dict[str, Any]:
        since = st.check_time if st.check_time is not None else st.started
        return {
            "code": st.code,
            "lastCheck": f"{max(0.0, now - since):.1f}",
            "delay": f"{st.delay:.6f}",
            "valid": st.code == 0,
            "version": st.version,
            "acquired": st.acquired,
            "actual": st.actual,
        }

    def host_id(self, sd_uuid: str) -> int | None:
        """The host id domain ``sd_uuid`` is monitored with, None when it is not monitored."""
        with self._lock:
            st = self._status.get(sd_uuid)
            return st.host_id if st is not None else None

    def stop(self) -> None:
        """Stop every check (daemon shutdown); no domain can be monitored afterwards.

        Lockspaces are left joined: sanlock keeps renewing the ids, so a restarted daemon
        finds them acquired at once, and it is SPM leases, not ids, that die with us."""
        with self._lock:
            self._stopped = True
            ops = list(self._ops.values())
        for op in ops:
            op.stop()

    # --- the check ------------------------------------------------------------------------

    def _domain_dir(self, sd: str) -> str:
        with self._lock:
            known = self._dirs.get(sd)
        if known is not None:
            return known
        found = self._domains.domain_dir(sd)
        with self._lock:
            if sd in self._status:
                self._dirs[sd] = found
        return found

    def check(self, sd: str) -> None:
        """One check of domain ``sd`` (run by its periodic job)."""
        with self._lock:
            st = self._status.get(sd)
            host_id = st.host_id if st is not None else 0
        if st is None:
            return  # stopped meanwhile
        code, delay, version, directory = 0, None, None, None
        try:
            directory = self._domain_dir(sd)
            io: DirectReader = self._pools.get(sd)
            begin = time.monotonic()
            data = io.directio_read(sdmetadata.metadata_path(directory), CHECK_SIZE)
            delay = time.monotonic() - begin
            version = parse_version(data)
        except Exception as e:
            code = error_code(e)
            log.warning("Checking domain %s failed (code %d): %s", sd, code, e)
            with self._lock:
                self._dirs.pop(sd, None)  # look for it again next time
        acquired = self._acquired(sd, host_id, directory)
        with self._lock:
            current = self._status.get(sd)
            if current is not st:
                return  # stopped (or restarted) while checking
            st.code = code
            st.check_time = self._clock()
            if delay is not None:
                st.delay = delay
            if version is not None:
                st.version = version
            st.acquired = acquired
            st.actual = True

    def _acquired(self, sd: str, host_id: int, directory: str | None) -> bool:
        """Whether the host id is held; starts joining the lockspace while it is not."""
        if self._host_ids is None or directory is None:
            return False
        ids = os.path.join(directory, sc.DOMAIN_META_DATA, "ids")
        try:
            return self._host_ids.acquire(sd, host_id, ids)
        except Exception as e:
            log.warning("Cannot join the lockspace of %s with host id %d: %s", sd, host_id, e)
        return False

    def _release_host_id(self, sd: str, host_id: int, directory: str | None) -> None:
        """Leave the lockspace (a request to the sanlock daemon, time-boxed, no storage I/O)."""
        if self._host_ids is None or directory is None:
            return
        ids = os.path.join(directory, sc.DOMAIN_META_DATA, "ids")
        try:
            self._host_ids.release(sd, host_id, ids)
        except Exception as e:
            log.warning("Cannot leave the lockspace of %s: %s", sd, e)
