"""Scheduling SPM verbs as persisted tasks of the connected pool.

Every verb that changes shared storage (Volume.create, Image.delete, ...) goes through here:
this host must be the pool's SPM (654 otherwise), the domain must belong to the pool (353), and
the task is persisted in the master domain's ``master/tasks`` so that a new SPM, after a crash
of this one, rolls back what was left half done. The task is tagged with the pool id: stopping
the SPM waits for exactly these tasks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from virthost.storage.pool import ConnectedPool, StoragePools
from virthost.storage.tasks import TaskContext, TaskManager, TaskStore, tasks_dir_of


class SpmTasks:
    def __init__(self, pools: StoragePools, tasks: TaskManager) -> None:
        self.pools = pools
        self.tasks = tasks

    def member(self, sp_uuid: Any, *sd_uuids: Any) -> ConnectedPool:
        return self.pools.member(sp_uuid, *sd_uuids)

    def schedule(
        self, sp_uuid: Any, domains: tuple[Any, ...], verb: str, work: Callable[[TaskContext], Any]
    ) -> str:
        """Run ``work`` as a persisted SPM task of the pool; returns the task id."""
        pool = self.member(sp_uuid, *domains)
        pool.spm.require()
        master = self.pools.master(pool)
        store = TaskStore(master.io, tasks_dir_of(master.directory))
        return self.tasks.schedule(verb, work, store=store, tag=pool.sp_uuid)
