"""The StoragePool namespace: translates StoragePool.* verbs into the storage services."""

from __future__ import annotations

from typing import Any

from virthost.storage.connections import StorageConnections


class StoragePoolApi:
    def __init__(self, connections: StorageConnections) -> None:
        self._connections = connections

    def connectStorageServer(
        self, storagepoolID: str, domainType: Any, connectionParams: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        return self._connections.connect(domainType, connectionParams)

    def disconnectStorageServer(
        self, storagepoolID: str, domainType: Any, connectionParams: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        return self._connections.disconnect(domainType, connectionParams)
