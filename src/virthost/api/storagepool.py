"""The StoragePool namespace: translates StoragePool.* verbs into the storage services.

``spmStart`` answers with a task id at once, as VDSM does: becoming SPM waits for this host's
id in the master domain's lockspace (seconds, or longer after a crash) and must not hold a
worker of the API meanwhile. The engine follows it with Task.getStatus.
"""

from __future__ import annotations

from typing import Any, Protocol

from virthost.common import errors
from virthost.storage.connections import StorageConnections
from virthost.storage.jobs.sdmrequests import subchain_info
from virthost.storage.pool import StoragePools, int_arg
from virthost.storage.sdm import SdmContext, finalize_merge, prepare_merge
from virthost.storage.spmtasks import SpmTasks
from virthost.storage.tasks import TaskContext


class TaskScheduler(Protocol):
    def schedule(self, verb: str, work: Any, *, tag: str = "") -> str: ...


HSM_TAG = "hsm"


class StoragePoolApi:
    def __init__(
        self,
        connections: StorageConnections,
        pools: StoragePools | None = None,
        tasks: TaskScheduler | None = None,
        spm_join_timeout: float = 120.0,
        spm_tasks: SpmTasks | None = None,
        merge: SdmContext | None = None,
    ) -> None:
        self._connections = connections
        self._spm_tasks = spm_tasks
        self._merge = merge
        self._pools_service = pools
        self._tasks_service = tasks
        self._join_timeout = spm_join_timeout

    @property
    def _pools(self) -> StoragePools:
        if self._pools_service is None:
            raise errors.MethodNotImplemented("this host has no storage pools")
        return self._pools_service

    def connectStorageServer(
        self, storagepoolID: str, domainType: Any, connectionParams: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        return self._connections.connect(domainType, connectionParams)

    def disconnectStorageServer(
        self, storagepoolID: str, domainType: Any, connectionParams: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        return self._connections.disconnect(domainType, connectionParams)

    def create(
        self,
        storagepoolID: str,
        name: str,
        masterSdUUID: str,
        masterVersion: Any,
        domainList: Any,
        lockRenewalIntervalSec: Any,
        leaseTimeSec: Any,
        ioOpTimeoutSec: Any,
        leaseRetries: Any,
    ) -> None:
        self._pools.create(
            storagepoolID,
            name,
            masterSdUUID,
            masterVersion,
            domainList,
            {
                "lockRenewalIntervalSec": lockRenewalIntervalSec,
                "leaseTimeSec": leaseTimeSec,
                "ioOpTimeoutSec": ioOpTimeoutSec,
                "leaseRetries": leaseRetries,
            },
        )

    def connect(
        self,
        storagepoolID: str,
        hostID: Any,
        scsiKey: str,
        masterSdUUID: str,
        masterVersion: Any,
        domainDict: dict[str, str] | None = None,
    ) -> None:
        self._pools.connect(storagepoolID, hostID, masterSdUUID, masterVersion, domainDict)

    def disconnect(
        self, storagepoolID: str, hostID: Any, scsiKey: str, remove: bool = False
    ) -> None:
        self._pools.disconnect(storagepoolID, hostID)

    def destroy(self, storagepoolID: str, hostID: Any, scsiKey: str) -> None:
        self._pools.destroy(storagepoolID, hostID)

    def getInfo(self, storagepoolID: str) -> dict[str, Any]:
        return self._pools.info(storagepoolID)

    def refresh(self, storagepoolID: str, masterSdUUID: str, masterVersion: Any) -> None:
        self._pools.refresh(storagepoolID, masterSdUUID, masterVersion)

    def getSpmStatus(self, storagepoolID: str) -> dict[str, Any]:
        return self._pools.spm_status(storagepoolID)

    def spmStart(
        self,
        storagepoolID: str,
        prevID: Any,
        prevLver: Any,
        enableScsiFencing: Any,
        maxHostID: Any = 250,
        domVersion: Any = None,
    ) -> str:
        role = self._pools.get(storagepoolID).spm
        prev_id, prev_lver = int_arg(prevID, "prevID"), int_arg(prevLver, "prevLver")
        int_arg(maxHostID, "maxHostID")
        if self._tasks_service is None:
            raise errors.MethodNotImplemented("this host runs no storage tasks")
        starting = role.begin_start()
        timeout = self._join_timeout

        def work(ctx: TaskContext) -> None:
            if starting:
                role.start(prev_id, prev_lver, timeout)

        try:
            return self._tasks_service.schedule("spmStart", work, tag=HSM_TAG)
        except BaseException:
            if starting:
                role.abort_start()
            raise

    def spmStop(self, storagepoolID: str) -> None:
        self._pools.stop_spm(storagepoolID)

    # --- cold merge around SDM.merge (SPM tasks) ----------------------------------------

    def prepareMerge(self, storagepoolID: str, subchainInfo: dict[str, Any]) -> str:
        return self._merge_step("prepareMerge", storagepoolID, subchainInfo)

    def finalizeMerge(self, storagepoolID: str, subchainInfo: dict[str, Any]) -> str:
        return self._merge_step("finalizeMerge", storagepoolID, subchainInfo)

    def _merge_step(self, verb: str, storagepoolID: str, subchainInfo: dict[str, Any]) -> str:
        if self._merge is None or self._spm_tasks is None:
            raise errors.MethodNotImplemented(f"StoragePool.{verb} is not available here")
        info = subchain_info(subchainInfo, "subchainInfo")
        step = prepare_merge if verb == "prepareMerge" else finalize_merge
        context = self._merge

        def work(ctx: TaskContext) -> None:
            step(context, info)

        return self._spm_tasks.schedule(storagepoolID, (info.sd_id,), f"StoragePool.{verb}", work)
