"""The StorageDomain namespace: translates StorageDomain.* verbs into the file domain service.

Only file domains exist so far; the verbs validate their identifiers (through the service)
and return what VDSM returns, so the engine cannot tell the difference.
"""

from __future__ import annotations

from typing import Any

from virthost.common import errors, validate
from virthost.storage import constants as sc
from virthost.storage.filedomain import CreateRequest, FileDomains
from virthost.storage.images import ImageStore
from virthost.storage.pooldomains import PoolDomains


class StorageDomainApi:
    def __init__(
        self,
        domains: FileDomains,
        pool_domains: PoolDomains | None = None,
        images: ImageStore | None = None,
    ) -> None:
        self._domains = domains
        self._pool_domains_service = pool_domains
        self._images = images

    @property
    def _pool_domains(self) -> PoolDomains:
        if self._pool_domains_service is None:
            raise errors.MethodNotImplemented("this host has no storage pools")
        return self._pool_domains_service

    def create(
        self,
        storagedomainID: str,
        domainType: Any,
        typeArgs: str,
        name: str,
        domainClass: Any,
        version: Any = None,
        blockSize: Any = None,
        maxHosts: Any = None,
    ) -> None:
        request = CreateRequest.from_wire(
            storagedomainID, domainType, typeArgs, name, domainClass, version, blockSize, maxHosts
        )
        self._domains.create(request)

    def getInfo(self, storagedomainID: str) -> dict[str, Any]:
        return self._domains.info(storagedomainID)

    def getStats(self, storagedomainID: str) -> dict[str, Any]:
        return self._domains.stats(storagedomainID)

    def validate(self, storagedomainID: str) -> None:
        self._domains.validate(storagedomainID)

    def getImages(self, storagedomainID: str) -> list[str]:
        return self._domains.images(storagedomainID)

    def setDescription(self, storagedomainID: str, description: str) -> None:
        self._domains.set_description(storagedomainID, description)

    def format(self, storagedomainID: str, autoDetach: Any = False) -> None:
        self._domains.format(storagedomainID, validate.flag(autoDetach))

    def dump(self, sd_id: str, full: bool = False) -> dict[str, Any]:
        return self._domains.dump(sd_id)

    def getVolumes(
        self, storagedomainID: str, storagepoolID: str, imageID: str = sc.BLANK_UUID
    ) -> list[str]:
        if self._images is None:
            raise errors.MethodNotImplemented("this host has no image store")
        self._pool_domains.pools.member(storagepoolID, storagedomainID)
        return self._images.domain_volumes(storagedomainID, imageID)

    def getFileStats(
        self, storagedomainID: str, pattern: str = "*", caseSensitive: bool = False
    ) -> dict[str, Any]:
        return self._domains.iso_files(storagedomainID, pattern, caseSensitive)

    # --- membership in a pool (SPM verbs) -----------------------------------------------

    def attach(self, storagedomainID: str, storagepoolID: str) -> None:
        self._pool_domains.attach(storagedomainID, storagepoolID)

    def activate(self, storagedomainID: str, storagepoolID: str) -> None:
        self._pool_domains.activate(storagedomainID, storagepoolID)

    def deactivate(
        self, storagedomainID: str, storagepoolID: str, masterSdUUID: str, masterVersion: Any
    ) -> None:
        self._pool_domains.deactivate(storagedomainID, storagepoolID, masterSdUUID, masterVersion)

    def detach(
        self,
        storagedomainID: str,
        storagepoolID: str,
        masterSdUUID: str | None = None,
        masterVersion: Any = 0,
        force: Any = False,
    ) -> None:
        self._pool_domains.detach(
            storagedomainID, storagepoolID, masterSdUUID, masterVersion, force
        )
