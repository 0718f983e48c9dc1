"""The StorageDomain namespace: translates StorageDomain.* verbs into the file domain service.

Only file domains exist so far; the verbs validate their identifiers (through the service)
and return what VDSM returns, so the engine cannot tell the difference.
"""

from __future__ import annotations

from typing import Any

from virthost.storage.filedomain import CreateRequest, FileDomains


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


class StorageDomainApi:
    def __init__(self, domains: FileDomains) -> None:
        self._domains = domains

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
        self._domains.format(storagedomainID, _flag(autoDetach))

    def dump(self, sd_id: str, full: bool = False) -> dict[str, Any]:
        return self._domains.dump(sd_id)
