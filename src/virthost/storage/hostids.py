"""This host's ids in the domains' sanlock lockspaces: joining, waiting, leaving.

A host is a member of a domain's lockspace when sanlock renews its *host id* (a delta lease in
``dom_md/ids``) there. Without it the host cannot take any lease in that domain (the SPM lease
first of all), and the engine reads ``acquired`` in Host.getStorageRepoStats to know whether
the host may become SPM. Joining takes a few sanlock renewal periods (seconds with
``io_timeout`` 1, about 20 s with VDSM's 10), so it is started without waiting, as VDSM does,
and its progress is read back with an inquiry; only the SPM start waits for it.

Leaving happens when monitoring of the domain stops. It never kills us: while leases are still
held in the lockspace (this host is SPM on that domain) sanlock refuses, which is logged, and
the id stays until the lease is released.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Protocol

from virthost.storage import clusterlock
from virthost.storage import constants as sc
from virthost.storage import errors as se

log = logging.getLogger("virthost.storage.hostids")

DEFAULT_IO_TIMEOUT = 10
INQUIRE_TIMEOUT = 5.0
POLL_INTERVAL = 0.5


def ids_path(domain_dir: str) -> str:
    """The lockspace file of a file domain."""
    return os.path.join(domain_dir, sc.DOMAIN_META_DATA, "ids")


class LockspaceOps(Protocol):
    """The sanlock calls this module needs (clusterlock's functions; tests pass a fake)."""

    def add(self, sd_uuid: str, host_id: int, ids: str, io_timeout: int) -> None: ...

    def remove(self, sd_uuid: str, host_id: int, ids: str) -> None: ...

    def inquire(self, sd_uuid: str, host_id: int, ids: str) -> bool | None: ...


class SanlockLockspaces:
    """:class:`LockspaceOps` on the real sanlock daemon; joining and leaving do not wait."""

    def add(self, sd_uuid: str, host_id: int, ids: str, io_timeout: int) -> None:
        clusterlock.add_lockspace(
            sd_uuid, host_id, ids, io_timeout, wait=False, timeout=INQUIRE_TIMEOUT
        )

    def remove(self, sd_uuid: str, host_id: int, ids: str) -> None:
        clusterlock.rem_lockspace(sd_uuid, host_id, ids, wait=False, timeout=INQUIRE_TIMEOUT)

    def inquire(self, sd_uuid: str, host_id: int, ids: str) -> bool | None:
        return clusterlock.inquire_lockspace(sd_uuid, host_id, ids, timeout=INQUIRE_TIMEOUT)


class HostIds:
    """Which lockspaces this host should be in, with which id; joins on demand."""

    def __init__(
        self, ops: LockspaceOps | None = None, io_timeout: int = DEFAULT_IO_TIMEOUT
    ) -> None:
        self._ops = ops if ops is not None else SanlockLockspaces()
        self._io_timeout = io_timeout
        self._lock = threading.Lock()
        self._wanted: dict[str, tuple[int, str]] = {}

    @property
    def io_timeout(self) -> int:
        return self._io_timeout

    def acquire(self, sd_uuid: str, host_id: int, ids: str) -> bool:
        """Start joining unless joined or joining with that id already; True when the id is
        held now (one inquiry, so the domain monitor can call this on every check)."""
        with self._lock:
            self._wanted[sd_uuid] = (host_id, ids)
        state = self._inquire(sd_uuid, host_id, ids)
        if state is None or state:
            return bool(state)
        log.info("Joining lockspace %s with host id %d", sd_uuid, host_id)
        self._ops.add(sd_uuid, host_id, ids, self._io_timeout)
        return False

    def release(self, sd_uuid: str, host_id: int, ids: str) -> None:
        """Start leaving the lockspace (refused by sanlock while we hold leases in it).

        Joined or not by this run: a lockspace joined before a restart is left as well."""
        with self._lock:
            self._wanted.pop(sd_uuid, None)
        try:
            self._ops.remove(sd_uuid, host_id, ids)
            log.info("Leaving lockspace %s (host id %d)", sd_uuid, host_id)
        except (se.ReleaseHostIdFailure, se.ClusterLockQueryError) as e:
            log.warning("Cannot leave lockspace %s: %s", sd_uuid, e)

    def acquired(self, sd_uuid: str, host_id: int, ids: str) -> bool:
        """Whether the host id is held now (joining in progress counts as not yet)."""
        return bool(self._inquire(sd_uuid, host_id, ids))

    def wait_acquired(self, sd_uuid: str, host_id: int, ids: str, timeout: float) -> None:
        """Join if needed and wait until the id is held (661 when that does not happen)."""
        self.acquire(sd_uuid, host_id, ids)
        deadline = time.monotonic() + timeout
        while not self.acquired(sd_uuid, host_id, ids):
            if time.monotonic() >= deadline:
                raise se.AcquireHostIdFailure(
                    f"host id {host_id} in lockspace {sd_uuid} not acquired within {timeout:.0f} s"
                )
            time.sleep(POLL_INTERVAL)
            with self._lock:
                still_wanted = sd_uuid in self._wanted
            if not still_wanted:
                raise se.AcquireHostIdFailure(f"lockspace {sd_uuid} was released meanwhile")
            if self._inquire(sd_uuid, host_id, ids) is False:
                self._ops.add(sd_uuid, host_id, ids, self._io_timeout)  # a join that failed

    def join_timeout(self) -> float:
        """How long a join may take: an id left by a crashed run must expire first."""
        return clusterlock.lockspace_timeout(self._io_timeout)

    def _inquire(self, sd_uuid: str, host_id: int, ids: str) -> bool | None:
        try:
            return self._ops.inquire(sd_uuid, host_id, ids)
        except se.ClusterLockQueryError as e:
            log.debug("Cannot inquire lockspace %s: %s", sd_uuid, e)
            return False
