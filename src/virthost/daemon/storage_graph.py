"""The storage part of the daemon's object graph: connections, domains, pool, SPM, tasks, jobs.

Built by :class:`virthost.daemon.app.Daemon` from the shared infrastructure; kept apart so that
app.py stays a readable list of subsystems. Start/stop order matters in one place: the task
manager stops before the I/O pools it writes through.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from virthost.api.hoststorage import HostStorage
from virthost.api.image import ImageApi
from virthost.api.sdm import SdmApi
from virthost.api.storagedomain import StorageDomainApi
from virthost.api.storagepool import StoragePoolApi
from virthost.api.task import TaskApi
from virthost.api.volume import VolumeApi
from virthost.common.commands import Runner
from virthost.common.executor import Executor
from virthost.common.periodic import PeriodicOperation
from virthost.common.resources import ResourceManager
from virthost.common.scheduler import Scheduler
from virthost.daemon.config import Config
from virthost.rpc.events import EventBus
from virthost.storage.connections import StorageConnections
from virthost.storage.filedomain import DomainHandle, FileDomains
from virthost.storage.hostids import HostIds
from virthost.storage.images import ImageStore, SanlockVolumeLeases
from virthost.storage.jobs import JobFactory, JobRegistry
from virthost.storage.monitor import DomainMonitor
from virthost.storage.oop import ProcessPools
from virthost.storage.pool import StoragePools
from virthost.storage.pooldomains import PoolDomains
from virthost.storage.sdm import SdmContext, job_factories
from virthost.storage.spm import SanlockSpmLease
from virthost.storage.spmtasks import SpmTasks
from virthost.storage.tasks import TaskManager, TaskStore, tasks_dir_of
from virthost.supervisor.client import SupervisorProxy

TASK_SHUTDOWN_TIMEOUT = 10.0


def _task_store(handle: DomainHandle) -> TaskStore:
    return TaskStore(handle.io, tasks_dir_of(handle.directory))


class StorageGraph:
    """Every storage service of the daemon, and the API namespaces over them."""

    def __init__(
        self,
        config: Config,
        scheduler: Scheduler,
        periodic_executor: Executor,
        events: EventBus,
        runner: Runner,
        resources: ResourceManager,
        supervisor: SupervisorProxy,
        sdm_factories: Mapping[str, JobFactory[Any]] | None = None,
    ) -> None:
        storage = config.storage
        self.connections = StorageConnections(
            Path(storage.repository) / "mnt", supervisor, storage.nfs_mount_options
        )
        self.oop_pools = ProcessPools()
        self.domains = FileDomains(
            self.connections.mount_root,
            self.connections.mount_point,
            self.oop_pools,
            lockspace_io_timeout=storage.sanlock_io_timeout,
        )
        self.host_ids = HostIds(io_timeout=storage.sanlock_io_timeout)
        self.monitor = DomainMonitor(
            self.domains,
            self.oop_pools,
            scheduler,
            periodic_executor,
            storage.domain_check_interval,
            host_ids=self.host_ids,
        )
        self.images = ImageStore(
            self.domains, runner, resources, storage.resource_timeout, SanlockVolumeLeases()
        )
        self.tasks = TaskManager(
            self.images.recoveries(),
            max_workers=storage.task_workers,
            max_tasks=storage.max_tasks,
        )
        self.pools = StoragePools(
            self.domains,
            self.monitor,
            self.host_ids,
            SanlockSpmLease(),
            self.tasks,
            _task_store,
            Path(storage.repository),
        )
        self.pool_domains = PoolDomains(self.pools)
        self.spm_tasks = SpmTasks(self.pools, self.tasks)
        self.jobs = JobRegistry(
            scheduler,
            events,
            workers=storage.job_workers,
            autodelete_delay=storage.job_autodelete_delay,
        )
        self.sdm_context = SdmContext(
            self.images, self.domains, runner, resources, storage.resource_timeout
        )
        if sdm_factories is None:
            sdm_factories = job_factories(self.sdm_context)
        self.spm_watchdog = PeriodicOperation(
            "spm-watchdog",
            self.pools.verify_spm,
            storage.spm_watchdog_interval,
            scheduler,
            periodic_executor,
            exclusive=True,
        )
        self.sdm = SdmApi(self.jobs, dict(sdm_factories))
        self.task_api = TaskApi(self.tasks)

    def namespaces(self) -> dict[str, object]:
        return {
            "StoragePool": StoragePoolApi(
                self.connections,
                self.pools,
                self.tasks,
                self.host_ids.join_timeout(),
                self.spm_tasks,
                self.sdm_context,
            ),
            "StorageDomain": StorageDomainApi(self.domains, self.pool_domains, self.images),
            "Volume": VolumeApi(self.images, self.spm_tasks),
            "Image": ImageApi(self.images, self.spm_tasks),
            "Task": self.task_api,
            "SDM": self.sdm,
        }

    def host_storage(self) -> HostStorage:
        return HostStorage(
            domains=self.domains, pools=self.pools, tasks=self.task_api, jobs=self.sdm
        )

    def start(self) -> None:
        self.jobs.start()
        self.spm_watchdog.start()

    def stop(self) -> None:
        self.spm_watchdog.stop()
        self.monitor.stop()
        self.jobs.shutdown()
        self.tasks.shutdown(TASK_SHUTDOWN_TIMEOUT)
        self.oop_pools.close()
