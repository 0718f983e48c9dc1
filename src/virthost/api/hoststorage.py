"""Host verbs about storage: pools and domains seen by this host, storage tasks, host jobs.

Kept apart from :mod:`virthost.api.host` so that each file stays about one subsystem; the
Host namespace object combines them (:class:`HostStorageVerbs` is a mixin of HostApi).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from virthost.common import errors, validate
from virthost.storage import constants as sc
from virthost.storage.filedomain import FileDomains
from virthost.storage.pool import StoragePools


class TaskQueries(Protocol):
    def all_statuses(self) -> dict[str, Any]: ...

    def all_info(self) -> dict[str, Any]: ...

    def all_details(self) -> dict[str, Any]: ...


class JobQueries(Protocol):
    def get_jobs(self, job_type: str | None, job_ids: list[str]) -> dict[str, Any]: ...


@dataclass
class HostStorage:
    """The storage services the Host namespace answers from (any may be missing)."""

    domains: FileDomains | None = None
    pools: StoragePools | None = None
    tasks: TaskQueries | None = None
    jobs: JobQueries | None = None


def _need(service: Any, what: str) -> Any:
    if service is None:
        raise errors.MethodNotImplemented(f"this host has no {what}")
    return service


class HostStorageVerbs:
    """Host.getConnectedStoragePools, getStorageDomains, getAllTasks*, getJobs."""

    _storage: HostStorage

    def getConnectedStoragePools(self) -> list[str]:
        pools: StoragePools = _need(self._storage.pools, "storage pools")
        return pools.connected()

    def getStorageDomains(
        self,
        storagepoolID: str | None = None,
        domainClass: Any = None,
        storageType: Any = None,
        remotePath: str | None = None,
    ) -> list[str]:
        domains: FileDomains = _need(self._storage.domains, "storage domains")
        pool = validate.uuid(storagepoolID, "storagepoolID") if storagepoolID else None
        return domains.list_domains(
            pool=pool,
            domain_class=sc.DomainClass.from_value(domainClass) if domainClass else None,
            storage_type=sc.StorageType.from_value(storageType) if storageType else None,
            remote_path=remotePath or None,
        )

    def getAllTasksStatuses(self) -> dict[str, Any]:
        tasks: TaskQueries = _need(self._storage.tasks, "storage tasks")
        return tasks.all_statuses()

    def getAllTasksInfo(self) -> dict[str, Any]:
        tasks: TaskQueries = _need(self._storage.tasks, "storage tasks")
        return tasks.all_info()

    def getAllTasks(self) -> dict[str, Any]:
        tasks: TaskQueries = _need(self._storage.tasks, "storage tasks")
        return tasks.all_details()

    def getJobs(
        self, job_type: str | None = None, job_ids: list[str] | None = None
    ) -> dict[str, Any]:
        jobs: JobQueries = _need(self._storage.jobs, "host jobs")
        return jobs.get_jobs(job_type, list(job_ids or []))
