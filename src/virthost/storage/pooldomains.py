"""Domains entering and leaving a pool: attach, activate, deactivate, detach (SPM only).

A domain's membership is written twice, and the order matters: in the domain's own metadata
(``POOL_UUID``, ``ROLE``) and in the master's ``POOL_DOMAINS`` with its status. Attaching
writes the domain first and the master last; detaching clears the master first and the
domain last. A crash in between leaves a domain that claims a pool the master does not list,
which a retry of the same verb completes (both writes are idempotent), and never a pool that
lists a domain claiming another pool.

Statuses follow VDSM: ``Attached`` (member, not in use) and ``Active`` (in use: monitored by
every connected host, its images usable). The master domain is always active; moving the
master role to another domain is not supported (75).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from virthost.common import errors, validate
from virthost.storage import constants as sc
from virthost.storage import errors as se
from virthost.storage import sdmetadata
from virthost.storage.pool import ConnectedPool, StoragePools, int_arg, unattached

log = logging.getLogger("virthost.storage.pooldomains")


class PoolDomains:
    """StorageDomain.attach/activate/deactivate/detach on the connected pool."""

    def __init__(self, pools: StoragePools) -> None:
        self._pools = pools

    @property
    def pools(self) -> StoragePools:
        return self._pools

    def _spm_pool(self, sp_uuid: Any) -> ConnectedPool:
        pool = self._pools.get(sp_uuid)
        pool.spm.require()
        return pool

    def _set_status(self, pool: ConnectedPool, sd: str, status: sc.DomainStatus | None) -> None:
        """Write ``sd``'s status into POOL_DOMAINS (None removes it), then mirror it."""

        def change(md: sdmetadata.DomainMetadata) -> sdmetadata.DomainMetadata:
            domains = dict(md.pool_domains or {})
            if status is None:
                domains.pop(sd, None)
            else:
                domains[sd] = status.value
            return replace(md, pool_domains=domains)

        with pool.lock:
            self._pools.write_master(pool, change)
            if status is None:
                pool.domains.pop(sd, None)
            else:
                pool.domains[sd] = status

    def attach(self, sd_uuid: Any, sp_uuid: Any) -> None:
        sd = validate.uuid(sd_uuid, "storagedomainID")
        pool = self._spm_pool(sp_uuid)
        with pool.lock:
            handle = self._pools.domains.locate(sd)
            md = handle.metadata
            others = [p for p in md.pools if p != pool.sp_uuid]
            if others:
                raise se.StorageDomainAlreadyAttached(f"{sd} is in pool {others[0]}")
            if sd in pool.domains and pool.sp_uuid in md.pools:
                log.info("Domain %s is already attached to pool %s", sd, pool.sp_uuid)
                return
            if md.pools != (pool.sp_uuid,) or md.role is not sc.DomainRole.REGULAR:
                new = replace(md, pool_uuids=(pool.sp_uuid,), role=sc.DomainRole.REGULAR)
                self._pools.domains.write_metadata(handle, new)
            self._set_status(pool, sd, sc.DomainStatus.ATTACHED)
        log.info("Attached domain %s to pool %s", sd, pool.sp_uuid)

    def activate(self, sd_uuid: Any, sp_uuid: Any) -> None:
        sd = validate.uuid(sd_uuid, "storagedomainID")
        pool = self._spm_pool(sp_uuid)
        with pool.lock:
            if sd not in pool.domains:
                raise se.StorageDomainNotInPool(f"{sd} is not in pool {pool.sp_uuid}")
            handle = self._pools.domains.locate(sd)
            if pool.sp_uuid not in handle.metadata.pools:
                raise se.StorageDomainNotMemberOfPool(f"{sd} says pools {handle.metadata.pools}")
            if pool.domains[sd] is not sc.DomainStatus.ACTIVE:
                self._set_status(pool, sd, sc.DomainStatus.ACTIVE)
        self._pools.activate_locally(pool, sd)
        log.info("Activated domain %s in pool %s", sd, pool.sp_uuid)

    def deactivate(self, sd_uuid: Any, sp_uuid: Any, master_sd: Any, master_version: Any) -> None:
        sd = validate.uuid(sd_uuid, "storagedomainID")
        pool = self._spm_pool(sp_uuid)
        msd = validate.uuid(master_sd, "masterSdUUID")
        int_arg(master_version, "masterVersion")
        with pool.lock:
            if sd not in pool.domains:
                raise se.StorageDomainNotInPool(f"{sd} is not in pool {pool.sp_uuid}")
            if sd == pool.master_sd:
                raise errors.UnsupportedOperation(
                    f"{sd} is the master domain of pool {pool.sp_uuid} (new master {msd}); "
                    "moving the master role is not supported"
                )
            if pool.domains[sd] is sc.DomainStatus.ACTIVE:
                self._set_status(pool, sd, sc.DomainStatus.ATTACHED)
        self._pools.deactivate_locally(pool, sd)
        log.info("Deactivated domain %s in pool %s", sd, pool.sp_uuid)

    def detach(
        self,
        sd_uuid: Any,
        sp_uuid: Any,
        master_sd: Any = None,
        master_version: Any = 0,
        force: Any = False,
    ) -> None:
        sd = validate.uuid(sd_uuid, "storagedomainID")
        pool = self._spm_pool(sp_uuid)
        if master_sd is not None:
            validate.uuid(master_sd, "masterSdUUID")
        int_arg(master_version, "masterVersion")
        forced = validate.flag(force)
        with pool.lock:
            if sd == pool.master_sd:
                raise se.CannotDetachMasterStorageDomain(sd)
            status = pool.domains.get(sd)
            if status is None:
                raise se.StorageDomainNotInPool(f"{sd} is not in pool {pool.sp_uuid}")
            if status is sc.DomainStatus.ACTIVE and not forced:
                raise se.StorageDomainActive(f"deactivate {sd} first")
            handle = None
            try:
                handle = self._pools.domains.locate(sd)
            except errors.VirtHostError as e:
                if not forced:
                    raise
                log.warning("Forced detach of unreachable domain %s: %s", sd, e)
            self._set_status(pool, sd, None)
            if handle is not None and pool.sp_uuid in handle.metadata.pools:
                self._pools.domains.write_metadata(handle, unattached(handle.metadata))
        self._pools.deactivate_locally(pool, sd)
        log.info("Detached domain %s from pool %s", sd, pool.sp_uuid)
