"""The storage pool manager (SPM) role of one pool on this host.

Only one host of a pool may change shared metadata (create and delete volumes, attach domains,
...): the SPM. The engine elects it, but the storage arbitrates: the SPM is the host that
holds the sanlock resource ``SDM`` in the master domain's ``leases`` volume. Holding that
lease needs this host's id in the master domain's lockspace, and the lease is tied to the
daemon process (see :mod:`virthost.storage.clusterlock`), so a daemon that dies stops being
SPM at once and another host can take over without waiting for us.

The steps of :meth:`SpmRole.start` follow VDSM's: the engine passes the SPM id and lease version
it last saw (``prevID``/``prevLver`` from StoragePool.getSpmStatus); if the lease moved since,
the start fails (652) instead of fencing a newer SPM. The lease version sanlock reports after
acquiring becomes ``POOL_SPM_LVER`` and the host id ``POOL_SPM_ID`` in the master metadata, then
the tasks a previous SPM left in ``master/tasks`` are loaded: finished ones stay visible,
unfinished ones are rolled back. Only then does the role turn ``SPM``.

Stopping refuses while SPM tasks are unfinished (653), writes ``POOL_SPM_ID=-1`` (the lease
version stays, as VDSM leaves it) and releases the lease.
"""

from __future__ import annotations

import enum
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from virthost.storage import clusterlock
from virthost.storage import constants as sc
from virthost.storage import errors as se
from virthost.storage.filedomain import DomainHandle
from virthost.storage.hostids import HostIds, ids_path

log = logging.getLogger("virthost.storage.spm")

MASTER_DIR = "master"
TASKS_DIR = "tasks"
VMS_DIR = "vms"
DIR_MODE = 0o755


class SpmState(enum.StrEnum):
    FREE = "Free"
    CONTEND = "Contend"
    SPM = "SPM"


class SpmLease(Protocol):
    """The SDM lease in sanlock (clusterlock's functions; unit tests pass a fake)."""

    def acquire(self, sd_uuid: str, leases: str, offset: int, version: int | None) -> int: ...

    def release(self, sd_uuid: str, leases: str, offset: int) -> None: ...

    def owner(
        self, sd_uuid: str, leases: str, offset: int, alignment: int, block_size: int
    ) -> tuple[int, int] | None: ...

    def held(self, sd_uuid: str) -> bool: ...


class SanlockSpmLease:
    """:class:`SpmLease` on the real sanlock daemon."""

    def __init__(self, timeout: float = clusterlock.DEFAULT_TIMEOUT) -> None:
        self._timeout = timeout

    def acquire(self, sd_uuid: str, leases: str, offset: int, version: int | None) -> int:
        return clusterlock.acquire(
            sd_uuid, clusterlock.SDM_LEASE_NAME, leases, offset, version, timeout=self._timeout
        )

    def release(self, sd_uuid: str, leases: str, offset: int) -> None:
        clusterlock.release(
            sd_uuid, clusterlock.SDM_LEASE_NAME, leases, offset, timeout=self._timeout
        )

    def held(self, sd_uuid: str) -> bool:
        """Whether this process still holds the domain's SDM lease (sanlock's memory)."""
        return any(
            (lease.lockspace, lease.resource) == (sd_uuid, clusterlock.SDM_LEASE_NAME)
            for lease in clusterlock.inquire(timeout=self._timeout)
        )

    def owner(
        self, sd_uuid: str, leases: str, offset: int, alignment: int, block_size: int
    ) -> tuple[int, int] | None:
        """(lease version, owner host id) from storage, None when nobody holds it."""
        status = clusterlock.read_resource_owners(
            sd_uuid,
            clusterlock.SDM_LEASE_NAME,
            leases,
            offset,
            alignment=alignment,
            block_size=block_size,
            timeout=self._timeout,
        )
        if not status.owners:
            return None
        return status.version, status.owners[0].host_id


class TaskLoader(Protocol):
    """What the SPM needs from the task manager."""

    def unfinished(self, tag: str | None = None) -> list[str]: ...

    def load(self, store: Any, tag: str = "") -> list[str]: ...

    def forget(self, tag: str) -> None: ...


class MasterAccess(Protocol):
    """How the role reads and writes the master domain (the pool service provides it)."""

    def master(self) -> DomainHandle: ...

    def write_master(self, change: Callable[[Any], Any]) -> None: ...


@dataclass(frozen=True)
class SpmStatus:
    state: SpmState
    lver: int
    spm_id: int

    def to_wire(self) -> dict[str, Any]:
        return {"spmStatus": self.state.value, "spmLver": self.lver, "spmId": self.spm_id}


def leases_path(handle: DomainHandle) -> str:
    return os.path.join(handle.dom_md, "leases")


def tasks_dir(handle: DomainHandle) -> str:
    return os.path.join(handle.directory, MASTER_DIR, TASKS_DIR)


class SpmRole:
    """This host's SPM role in the connected pool ``sp_uuid``."""

    def __init__(
        self,
        sp_uuid: str,
        host_id: int,
        access: MasterAccess,
        host_ids: HostIds,
        lease: SpmLease,
        tasks: TaskLoader,
        task_store: Callable[[DomainHandle], Any],
    ) -> None:
        self.sp_uuid = sp_uuid
        self.host_id = host_id
        self._access = access
        self._host_ids = host_ids
        self._lease = lease
        self._tasks = tasks
        self._task_store = task_store
        self._lock = threading.Lock()
        self._state = SpmState.FREE
        self._lver = sc.LVER_INVALID
        self._held: tuple[str, str, int] | None = None  # (master sd, leases path, offset)

    @property
    def state(self) -> SpmState:
        with self._lock:
            return self._state

    @property
    def is_spm(self) -> bool:
        return self.state is SpmState.SPM

    def require(self) -> None:
        """Raise VDSM's "Not SPM" (654) unless this host is SPM of the pool."""
        if not self.is_spm:
            raise se.SpmStatusError(f"this host is not the SPM of pool {self.sp_uuid}")

    def status(self) -> SpmStatus:
        """What StoragePool.getSpmStatus says: our role, and the lease as storage has it."""
        with self._lock:
            state, lver = self._state, self._lver
        if state is SpmState.SPM:
            return SpmStatus(state, lver, self.host_id)
        version, owner = self._stored_owner()
        return SpmStatus(state, version, owner)

    def _stored_owner(self) -> tuple[int, int]:
        """(lver, spm id) of the current lease owner, (-1, -1) when the lease is free."""
        handle = self._access.master()
        md = handle.metadata
        try:
            found = self._lease.owner(
                handle.sd_uuid,
                leases_path(handle),
                clusterlock.sdm_lease_offset(md.effective_alignment),
                md.effective_alignment,
                md.effective_block_size,
            )
        except se.ClusterLockQueryError as e:
            log.warning("Cannot read the SPM lease of %s (%s); using the metadata", md.sd_uuid, e)
            spm_id = md.pool_spm_id if md.pool_spm_id is not None else sc.SPM_ID_FREE
            lver = md.pool_spm_lver if md.pool_spm_lver is not None else sc.LVER_INVALID
            return (lver, spm_id) if spm_id != sc.SPM_ID_FREE else (sc.LVER_INVALID, spm_id)
        if found is None:
            return sc.LVER_INVALID, sc.SPM_ID_FREE
        return found

    # --- start ---------------------------------------------------------------------------

    def begin_start(self) -> bool:
        """Claim the start (Free -> Contend); False when already SPM. Raises while contending."""
        with self._lock:
            if self._state is SpmState.SPM:
                return False
            if self._state is SpmState.CONTEND:
                raise se.SpmStartError(f"an SPM start of pool {self.sp_uuid} is in progress")
            self._state = SpmState.CONTEND
            return True

    def abort_start(self) -> None:
        """Undo :meth:`begin_start` when the start could not even be scheduled."""
        with self._lock:
            if self._state is SpmState.CONTEND:
                self._state = SpmState.FREE

    def start(self, prev_id: int, prev_lver: int, join_timeout: float) -> None:
        """Become SPM (the body of the spmStart task, after :meth:`begin_start`)."""
        try:
            self._start(prev_id, prev_lver, join_timeout)
        except BaseException:
            with self._lock:
                self._state = SpmState.FREE
            raise

    def _start(self, prev_id: int, prev_lver: int, join_timeout: float) -> None:
        handle = self._access.master()
        sd = handle.sd_uuid
        lver, spm_id = self._stored_owner()
        if (prev_id, prev_lver) != (spm_id, lver):
            raise se.SpmParamsMismatch(
                f"expected previous SPM id {prev_id} lver {prev_lver}, "
                f"the lease says id {spm_id} lver {lver}"
            )
        self._host_ids.wait_acquired(sd, self.host_id, ids_path(handle.directory), join_timeout)
        leases = leases_path(handle)
        offset = clusterlock.sdm_lease_offset(handle.metadata.effective_alignment)
        new_lver = self._lease.acquire(sd, leases, offset, prev_lver if prev_lver >= 0 else None)
        try:
            self._access.write_master(
                lambda md: replace(md, pool_spm_id=self.host_id, pool_spm_lver=new_lver)
            )
            for sub in (TASKS_DIR, VMS_DIR):
                handle.io.makedirs(os.path.join(handle.directory, MASTER_DIR, sub), DIR_MODE)
            with self._lock:
                self._held, self._lver = (sd, leases, offset), new_lver
            recovered = self._tasks.load(self._task_store(self._access.master()), self.sp_uuid)
        except BaseException:
            self._release(sd, leases, offset)
            with self._lock:
                self._held = None
            raise
        with self._lock:
            self._state = SpmState.SPM
        log.info(
            "Host id %d is SPM of pool %s (lver %d, %d persisted tasks loaded)",
            self.host_id,
            self.sp_uuid,
            new_lver,
            len(recovered),
        )

    # --- watchdog ------------------------------------------------------------------------

    def verify_lease(self) -> None:
        """Drop the role if sanlock no longer has our SPM lease (VDSM's SPM watchdog).

        sanlock takes a lease away when this host cannot renew its id in time; another host
        may be SPM already, so nothing more may be written as SPM: the role turns Free and
        the SPM tasks are told to stop (their rollback still runs)."""
        with self._lock:
            held = self._held if self._state is SpmState.SPM else None
        if held is None:
            return
        try:
            still_held = self._lease.held(held[0])
        except se.ClusterLockQueryError as e:
            log.warning("Cannot check the SPM lease of pool %s: %s", self.sp_uuid, e)
            return
        if still_held:
            return
        log.error("The SPM lease of pool %s was lost; giving up the SPM role", self.sp_uuid)
        with self._lock:
            self._state, self._held = SpmState.FREE, None
        self._tasks.forget(self.sp_uuid)

    # --- stop ----------------------------------------------------------------------------

    def stop(self) -> None:
        """Give up the role (653 while SPM tasks are unfinished); a no-op when not SPM."""
        with self._lock:
            if self._state is not SpmState.SPM:
                log.info("Not SPM of pool %s; nothing to stop", self.sp_uuid)
                return
        unfinished = self._tasks.unfinished(self.sp_uuid)
        if unfinished:
            raise se.SpmStopError(f"unfinished tasks: {', '.join(sorted(unfinished))}")
        with self._lock:
            held = self._held
        try:
            self._access.write_master(lambda md: replace(md, pool_spm_id=sc.SPM_ID_FREE))
        except Exception as e:
            log.warning("Cannot clear POOL_SPM_ID of pool %s: %s", self.sp_uuid, e)
        if held is not None:
            self._release(*held)
        self._tasks.forget(self.sp_uuid)
        with self._lock:
            self._state, self._held = SpmState.FREE, None
        log.info("Host id %d is no longer SPM of pool %s", self.host_id, self.sp_uuid)

    def _release(self, sd: str, leases: str, offset: int) -> None:
        try:
            self._lease.release(sd, leases, offset)
        except se.ReleaseLockFailure as e:
            log.error("Cannot release the SPM lease of %s: %s", sd, e)
