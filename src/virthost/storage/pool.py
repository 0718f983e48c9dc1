"""Storage pools: the data center's domains as one host sees them, and its master domain.

A pool has no storage of its own: it is the set of domains whose metadata says
``POOL_UUID=<pool>``, and its own keys (name, the domains and their status, the SPM id and lease
version, the master version) live in the metadata of its *master* domain. A host joins one
pool at a time (StoragePool.connect, with its pool-wide host id): it then monitors the pool's
active domains, which joins their lockspaces, may become SPM, and finds the domains through
links ``<repository>/<pool>/<domain>`` (and ``mastersd``) the way VDSM's clients expect.

Nothing about the connection is persisted here: after a restart the engine connects the pool
again (as it does with VDSM), and becoming SPM again is what rolls back the tasks the previous
daemon left unfinished.

Every change of pool metadata is a read-modify-write of the master's sealed metadata under the
pool's lock; domain-level changes (attach, activate...) live in :mod:`virthost.storage.pooldomains`
and require the SPM role (VDSM's "Not SPM", 654, otherwise).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from virthost.common import errors, validate
from virthost.storage import constants as sc
from virthost.storage import errors as se
from virthost.storage import sdmetadata
from virthost.storage.filedomain import DomainHandle, FileDomains
from virthost.storage.hostids import HostIds
from virthost.storage.monitor import DomainMonitor, host_id_arg
from virthost.storage.spm import SpmLease, SpmRole, TaskLoader

log = logging.getLogger("virthost.storage.pool")

MASTER_LINK = "mastersd"


@dataclass
class ConnectedPool:
    """The pool this host is connected to."""

    sp_uuid: str
    host_id: int
    master_sd: str
    master_version: int
    domains: dict[str, sc.DomainStatus]
    spm: SpmRole
    lock: threading.RLock = field(default_factory=threading.RLock)

    def active(self) -> list[str]:
        return sorted(sd for sd, st in self.domains.items() if st is sc.DomainStatus.ACTIVE)


def int_arg(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise errors.InvalidParameter(f"{name}={value!r}")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise errors.InvalidParameter(f"{name}={value!r}") from None


def uuid_list(value: Any, name: str) -> list[str]:
    """A list of UUIDs, or the legacy comma-separated string of them."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list):
        raise errors.InvalidParameter(f"{name}={value!r}")
    return [validate.uuid(item.strip() if isinstance(item, str) else item, name) for item in items]


def domain_dict(value: Any) -> dict[str, sc.DomainStatus]:
    """domainDict from the wire: {sdUUID: "active"|"attached"} in any case."""
    if not isinstance(value, Mapping):
        raise errors.InvalidParameter(f"domainDict={value!r}")
    return {
        validate.uuid(sd, "domainDict"): sc.DomainStatus.from_value(status)
        for sd, status in value.items()
    }


def pool_description(value: Any) -> str:
    if not isinstance(value, str):
        raise errors.InvalidParameter(f"name={value!r}")
    if len(value) > sc.MAX_POOL_DESCRIPTION_SIZE or "\n" in value:
        raise se.StoragePoolDescriptionTooLongError(
            f"{len(value)} characters, at most {sc.MAX_POOL_DESCRIPTION_SIZE}"
        )
    return value


class StoragePools:
    """Pool verbs of this host: create, connect, disconnect, destroy, info, refresh, SPM."""

    def __init__(
        self,
        domains: FileDomains,
        monitor: DomainMonitor,
        host_ids: HostIds,
        lease: SpmLease,
        tasks: TaskLoader,
        task_store: Callable[[DomainHandle], Any],
        repository: Path,
    ) -> None:
        self.domains = domains
        self._monitor = monitor
        self._host_ids = host_ids
        self._lease = lease
        self._tasks = tasks
        self._task_store = task_store
        self._repository = repository
        self._lock = threading.Lock()
        self._pool: ConnectedPool | None = None

    # --- the connected pool ------------------------------------------------------------

    def connected(self) -> list[str]:
        with self._lock:
            return [self._pool.sp_uuid] if self._pool is not None else []

    def get(self, sp_uuid: Any) -> ConnectedPool:
        """The connected pool ``sp_uuid`` (309 when this host is not connected to it)."""
        sp = validate.uuid(sp_uuid, "storagepoolID")
        with self._lock:
            pool = self._pool
        if pool is None or pool.sp_uuid != sp:
            raise se.StoragePoolUnknown(sp)
        return pool

    def member(self, sp_uuid: Any, *sd_uuids: Any) -> ConnectedPool:
        """The connected pool (309), checked to contain every domain given (353)."""
        pool = self.get(sp_uuid)
        for sd_uuid in sd_uuids:
            sd = validate.uuid(sd_uuid, "storagedomainID")
            if sd not in pool.domains:
                raise se.StorageDomainNotInPool(f"{sd} is not in pool {pool.sp_uuid}")
        return pool

    def spm_of(self, sp_uuid: Any) -> SpmRole:
        """The SPM role of a connected pool, checked held (654 "Not SPM" otherwise)."""
        role = self.get(sp_uuid).spm
        role.require()
        return role

    def master(self, pool: ConnectedPool) -> DomainHandle:
        try:
            handle = self.domains.locate(pool.master_sd)
        except se.StorageDomainDoesNotExist as e:
            raise se.StoragePoolMasterNotFound(f"{pool.master_sd}: {e}") from e
        return handle

    def write_master(self, pool: ConnectedPool, change: Callable[[Any], Any]) -> None:
        """Read-modify-write the master metadata under the pool's lock."""
        with pool.lock:
            handle = self.master(pool)
            self.domains.write_metadata(handle, change(handle.metadata))

    # --- create ------------------------------------------------------------------------

    def create(
        self,
        sp_uuid: Any,
        name: Any,
        master_sd: Any,
        master_version: Any,
        domain_list: Any,
        lease_params: Mapping[str, Any],
    ) -> None:
        sp = validate.uuid(sp_uuid, "storagepoolID")
        msd = validate.uuid(master_sd, "masterSdUUID")
        version = int_arg(master_version, "masterVersion")
        description = pool_description(name)
        members = uuid_list(domain_list, "domainList")
        if msd not in members:
            raise se.StoragePoolMasterNotFound(f"{msd} is not in domainList")
        handles = {sd: self.domains.locate(sd) for sd in members}
        if handles[msd].metadata.is_master and sp in handles[msd].metadata.pools:
            raise se.StoragePoolAlreadyExists(sp)
        for sd, handle in handles.items():
            # A domain already claiming this pool is what an interrupted create left.
            if handle.metadata.pools and handle.metadata.pools != (sp,):
                raise se.StorageDomainAlreadyAttached(f"{sd} is in pool {handle.metadata.pools[0]}")
        master_class = handles[msd].metadata.domain_class
        if master_class is sc.DomainClass.ISO:
            raise se.IsoCannotBeMasterDomain(msd)
        if master_class is not sc.DomainClass.DATA:
            raise se.BackupCannotBeMasterDomain(msd)
        leases = {key: int_arg(value, key) for key, value in lease_params.items()}
        written: list[DomainHandle] = []
        try:
            # The master's metadata is written last: until then there is no pool.
            for sd in [sd for sd in members if sd != msd] + [msd]:
                handle = handles[sd]
                md = replace(handle.metadata, pool_uuids=(sp,), role=sc.DomainRole.REGULAR)
                if sd == msd:
                    md = self._master_metadata(md, sp, description, version, members, leases)
                    for sub in ("tasks", "vms"):
                        handle.io.makedirs(os.path.join(handle.directory, "master", sub), 0o755)
                self.domains.write_metadata(handle, md)
                written.append(handle)
        except BaseException:
            for handle in reversed(written):
                self._restore(handle)
            raise
        log.info("Created pool %s (%r) with master %s and %d domains", sp, name, msd, len(members))

    @staticmethod
    def _master_metadata(
        md: sdmetadata.DomainMetadata,
        sp: str,
        description: str,
        version: int,
        members: list[str],
        leases: Mapping[str, int],
    ) -> sdmetadata.DomainMetadata:
        statuses = {
            sd: (sc.DomainStatus.ACTIVE if sd == md.sd_uuid else sc.DomainStatus.ATTACHED).value
            for sd in members
        }

        def lease(key: str, current: int | None) -> int | None:
            value = leases.get(key, 0)
            return value if value > 0 else current

        return replace(
            md,
            role=sc.DomainRole.MASTER,
            pool_description=description,
            pool_domains=statuses,
            pool_spm_id=sc.SPM_ID_FREE,
            pool_spm_lver=sc.LVER_INVALID,
            master_version=version,
            lock_renewal_interval_sec=lease("lockRenewalIntervalSec", md.lock_renewal_interval_sec),
            lease_time_sec=lease("leaseTimeSec", md.lease_time_sec),
            io_op_timeout_sec=lease("ioOpTimeoutSec", md.io_op_timeout_sec),
            lease_retries=lease("leaseRetries", md.lease_retries),
        )

    def _restore(self, handle: DomainHandle) -> None:
        try:
            self.domains.write_metadata(handle, handle.metadata)
        except Exception:
            log.exception("Cannot restore the metadata of %s", handle.sd_uuid)

    # --- connect and disconnect -----------------------------------------------------------

    def connect(
        self,
        sp_uuid: Any,
        host_id: Any,
        master_sd: Any,
        master_version: Any,
        statuses: Any = None,
    ) -> None:
        sp = validate.uuid(sp_uuid, "storagepoolID")
        hid = host_id_arg(host_id)
        msd = validate.uuid(master_sd, "masterSdUUID")
        version = int_arg(master_version, "masterVersion")
        given = domain_dict(statuses) if statuses else None
        with self._lock:
            current = self._pool
            if current is not None:
                if current.sp_uuid != sp:
                    raise se.CannotConnectMultiplePools(f"connected to {current.sp_uuid}")
                log.info("Pool %s is already connected", sp)
                return
            handle = self._checked_master(sp, msd, version)
            members = given if given is not None else self._pool_statuses(handle.metadata)
            members.setdefault(msd, sc.DomainStatus.ACTIVE)
            role = SpmRole(
                sp,
                hid,
                _MasterAccess(self, sp),
                self._host_ids,
                self._lease,
                self._tasks,
                self._task_store,
            )
            pool = ConnectedPool(sp, hid, msd, version, members, role)
            self._pool = pool
        self._link(sp, msd, handle.directory, master=True)
        for sd in pool.active():
            self._activate_locally(pool, sd)
        log.info("Connected to pool %s as host id %d (master %s)", sp, hid, msd)

    def _checked_master(self, sp: str, msd: str, version: int) -> DomainHandle:
        """The master domain, checked to be the master of ``sp`` at ``version`` (304/324)."""
        try:
            handle = self.domains.locate(msd)
        except se.StorageDomainDoesNotExist as e:
            raise se.StoragePoolMasterNotFound(f"{msd}: {e}") from e
        md = handle.metadata
        if sp not in md.pools or not md.is_master:
            raise se.StoragePoolWrongMaster(f"{msd} is not the master domain of pool {sp}")
        if md.master_version != version:
            raise se.StoragePoolWrongMaster(
                f"master version of {msd} is {md.master_version}, expected {version}"
            )
        return handle

    @staticmethod
    def _pool_statuses(md: sdmetadata.DomainMetadata) -> dict[str, sc.DomainStatus]:
        return {
            sd: sc.DomainStatus.from_value(status) for sd, status in (md.pool_domains or {}).items()
        }

    def disconnect(self, sp_uuid: Any, host_id: Any) -> None:
        pool = self.get(sp_uuid)
        host_id_arg(host_id)
        if pool.spm.is_spm:
            raise se.IsSpm(f"this host is SPM of pool {pool.sp_uuid}; stop the SPM first")
        with self._lock:
            if self._pool is not pool:
                raise se.StoragePoolUnknown(pool.sp_uuid)
            self._pool = None
        for sd in list(pool.domains):
            self._monitor.stop_monitoring(sd)
        self._unlink_pool(pool.sp_uuid)
        log.info("Disconnected from pool %s", pool.sp_uuid)

    def refresh(self, sp_uuid: Any, master_sd: Any, master_version: Any) -> None:
        """Re-read the pool metadata (another host changed it): domains and their status."""
        pool = self.get(sp_uuid)
        msd = validate.uuid(master_sd, "masterSdUUID")
        version = int_arg(master_version, "masterVersion")
        handle = self._checked_master(pool.sp_uuid, msd, version)
        statuses = self._pool_statuses(handle.metadata)
        with pool.lock:
            before = set(pool.active())
            pool.domains = statuses
            pool.master_sd, pool.master_version = msd, version
        for sd in set(pool.active()) - before:
            self._activate_locally(pool, sd)
        for sd in before - set(pool.active()):
            self.deactivate_locally(pool, sd)

    # --- destroy -----------------------------------------------------------------------

    def destroy(self, sp_uuid: Any, host_id: Any) -> None:
        """Remove the pool: every domain becomes unattached; this host leaves the pool."""
        pool = self.get(sp_uuid)
        host_id_arg(host_id)
        pool.spm.require()
        with pool.lock:
            for sd in [sd for sd in pool.domains if sd != pool.master_sd]:
                try:
                    handle = self.domains.locate(sd)
                except se.StorageDomainDoesNotExist:
                    log.warning("Domain %s of pool %s is gone; skipped", sd, pool.sp_uuid)
                    continue
                self.domains.write_metadata(handle, unattached(handle.metadata))
            pool.domains = {pool.master_sd: sc.DomainStatus.ACTIVE}
        pool.spm.stop()
        self.write_master(pool, unattached)
        self.disconnect(pool.sp_uuid, pool.host_id)
        log.info("Destroyed pool %s", pool.sp_uuid)

    # --- queries -----------------------------------------------------------------------

    def info(self, sp_uuid: Any) -> dict[str, Any]:
        pool = self.get(sp_uuid)
        handle = self.master(pool)
        md = handle.metadata
        status = pool.spm.status()
        domains = ",".join(f"{sd}:{st.value}" for sd, st in sorted(pool.domains.items()))
        iso_prefix = ""
        dominfo: dict[str, Any] = {}
        for sd, st in sorted(pool.domains.items()):
            entry: dict[str, Any] = {"status": st.value, "alerts": [], "isoprefix": ""}
            if st is sc.DomainStatus.ACTIVE:
                try:
                    entry.update(self._domain_figures(pool, sd))
                except errors.VirtHostError as e:
                    log.warning("Cannot describe domain %s of pool %s: %s", sd, pool.sp_uuid, e)
                    entry["alerts"] = [{"code": e.code, "message": e.wire_message}]
                iso_prefix = entry.get("isoprefix") or iso_prefix
            dominfo[sd] = entry
        info = {
            "name": md.pool_description or "",
            "isoprefix": iso_prefix,
            "pool_status": "connected",
            "lver": status.lver,
            "spm_id": status.spm_id,
            "master_uuid": pool.master_sd,
            "version": str(md.version),
            "domains": domains,
            "type": md.storage_type.name,
            "master_ver": md.master_version if md.master_version is not None else 0,
        }
        return {"info": info, "dominfo": dominfo}

    def _domain_figures(self, pool: ConnectedPool, sd: str) -> dict[str, Any]:
        handle = self.domains.locate(sd)
        stats = self.domains.stats(sd)
        figures: dict[str, Any] = {
            "version": str(handle.metadata.version),
            "diskfree": stats["diskfree"],
            "disktotal": stats["disktotal"],
        }
        if handle.metadata.domain_class is sc.DomainClass.ISO:
            figures["isoprefix"] = os.path.join(
                self._pool_dir(pool.sp_uuid), sd, sc.DOMAIN_IMAGES, sc.ISO_IMAGE_UUID
            )
        return figures

    def spm_status(self, sp_uuid: Any) -> dict[str, Any]:
        return self.get(sp_uuid).spm.status().to_wire()

    def verify_spm(self) -> None:
        """The SPM watchdog's periodic check of the connected pool, if any."""
        with self._lock:
            pool = self._pool
        if pool is not None:
            pool.spm.verify_lease()

    def stop_spm(self, sp_uuid: Any) -> None:
        self.get(sp_uuid).spm.stop()

    # --- local state: monitoring and links -----------------------------------------------

    def _activate_locally(self, pool: ConnectedPool, sd: str) -> None:
        """Monitor an active domain (joining its lockspace) and link it into the pool dir."""
        self._monitor.start_monitoring(sd, pool.host_id)
        try:
            directory = self.domains.domain_dir(sd)
        except errors.VirtHostError as e:
            log.warning("Active domain %s of pool %s is not visible: %s", sd, pool.sp_uuid, e)
            return
        self._link(pool.sp_uuid, sd, directory, master=sd == pool.master_sd)

    def activate_locally(self, pool: ConnectedPool, sd: str) -> None:
        self._activate_locally(pool, sd)

    def deactivate_locally(self, pool: ConnectedPool, sd: str) -> None:
        self._monitor.stop_monitoring(sd)
        _remove_link(Path(self._pool_dir(pool.sp_uuid)) / sd)

    def _pool_dir(self, sp: str) -> str:
        return str(self._repository / sp)

    def _link(self, sp: str, sd: str, directory: str, master: bool) -> None:
        pool_dir = Path(self._pool_dir(sp))
        pool_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
        names = [sd, MASTER_LINK] if master else [sd]
        for name in names:
            _replace_link(pool_dir / name, directory)

    def _unlink_pool(self, sp: str) -> None:
        pool_dir = Path(self._pool_dir(sp))
        if not pool_dir.is_dir():
            return
        for entry in pool_dir.iterdir():
            _remove_link(entry)
        try:
            pool_dir.rmdir()
        except OSError as e:
            log.warning("Cannot remove %s: %s", pool_dir, e)


def unattached(md: sdmetadata.DomainMetadata) -> sdmetadata.DomainMetadata:
    """The metadata of a domain that belongs to no pool (pool keys dropped)."""
    return replace(
        md,
        pool_uuids=(),
        role=sc.DomainRole.REGULAR,
        pool_description=None,
        pool_domains=None,
        pool_spm_id=None,
        pool_spm_lver=None,
        master_version=None,
    )


def _replace_link(link: Path, target: str) -> None:
    """Point ``link`` at ``target`` atomically (a link is all these entries ever are)."""
    if link.is_symlink() and os.readlink(link) == target:
        return
    temporary = link.with_name(f".{link.name}.new")
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(target)
    os.replace(temporary, link)


def _remove_link(path: Path) -> None:
    if path.is_symlink():
        path.unlink(missing_ok=True)


class _MasterAccess:
    """The SPM role's view of its pool's master domain."""

    def __init__(self, pools: StoragePools, sp: str) -> None:
        self._pools = pools
        self._sp = sp

    def master(self) -> DomainHandle:
        return self._pools.master(self._pools.get(self._sp))

    def write_master(self, change: Callable[[Any], Any]) -> None:
        self._pools.write_master(self._pools.get(self._sp), change)
