"""Pools, the SPM role and domain membership on real file domains in a temporary mount root.

sanlock is replaced by fakes here (a lease that records versions, host ids joined at once),
so these tests check our side: metadata written in the right order and shape, the rules
(who may do what, in which state), and the errors. tests/integration/storage/test_pool_spm.py
runs the same verbs through the daemon with real sanlock.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from virthost.common import errors
from virthost.common.executor import Executor
from virthost.common.scheduler import Scheduler
from virthost.storage import constants as sc
from virthost.storage import errors as se
from virthost.storage.hostids import HostIds
from virthost.storage.monitor import DomainMonitor
from virthost.storage.pool import StoragePools
from virthost.storage.pooldomains import PoolDomains
from virthost.storage.spm import SpmState

from .test_filedomain import Env, RecordingLocks


class FakeLockspaces:
    def __init__(self) -> None:
        self.joined: set[tuple[str, int]] = set()
        self.removed: list[str] = []

    def add(self, sd_uuid: str, host_id: int, ids: str, io_timeout: int) -> None:
        self.joined.add((sd_uuid, host_id))

    def remove(self, sd_uuid: str, host_id: int, ids: str) -> None:
        self.joined.discard((sd_uuid, host_id))
        self.removed.append(sd_uuid)

    def inquire(self, sd_uuid: str, host_id: int, ids: str) -> bool | None:
        return (sd_uuid, host_id) in self.joined


class FakeLease:
    """The SDM lease: a version that grows on every acquire, one owner at most."""

    def __init__(self) -> None:
        self.version = 0
        self.owner_id: int | None = None
        self.holder_host: int | None = None
        self.other_owner: tuple[int, int] | None = None

    def acquire(self, sd_uuid: str, leases: str, offset: int, version: int | None) -> int:
        if self.other_owner is not None:
            raise se.LeaseHeldByOtherHost(f"held by host {self.other_owner[1]}")
        if version is not None and version != self.version:
            raise se.AcquireLockFailure(f"version {self.version} != {version}")
        self.version += 1
        self.owner_id = 1
        return self.version

    def release(self, sd_uuid: str, leases: str, offset: int) -> None:
        self.owner_id = None

    def held(self, sd_uuid: str) -> bool:
        return self.owner_id is not None

    def owner(
        self, sd_uuid: str, leases: str, offset: int, alignment: int, block_size: int
    ) -> tuple[int, int] | None:
        if self.other_owner is not None:
            return self.other_owner
        return (self.version, self.owner_id) if self.owner_id is not None else None


class FakeTasks:
    def __init__(self) -> None:
        self.pending: list[str] = []
        self.loaded: list[tuple[Any, str]] = []
        self.forgotten: list[str] = []

    def unfinished(self, tag: str | None = None) -> list[str]:
        return list(self.pending)

    def load(self, store: Any, tag: str = "") -> list[str]:
        self.loaded.append((store, tag))
        return []

    def forget(self, tag: str) -> None:
        self.forgotten.append(tag)


class PoolEnv:
    def __init__(self, env: Env, tmp_path: Path, infra: tuple[Scheduler, Executor]) -> None:
        self.env = env
        self.lockspaces = FakeLockspaces()
        self.host_ids = HostIds(self.lockspaces, io_timeout=1)
        self.monitor = DomainMonitor(
            env.domains, env.pools, *infra, check_interval=0.05, host_ids=self.host_ids
        )
        self.lease = FakeLease()
        self.tasks = FakeTasks()
        self.repository = tmp_path / "data-center"
        self.repository.mkdir()
        self.pools = StoragePools(
            env.domains,
            self.monitor,
            self.host_ids,
            self.lease,
            self.tasks,
            lambda handle: ("store", handle.directory),
            self.repository,
        )
        self.pool_domains = PoolDomains(self.pools)

    def new_domain(self, domain_class: int = 1) -> str:
        sd = str(uuid.uuid4())
        self.env.domains.create(self.env.request(sd, domain_class=domain_class))
        return sd

    def md(self, sd: str) -> Any:
        return self.env.domains.locate(sd).metadata

    def become_spm(self, sp: str) -> None:
        role = self.pools.get(sp).spm
        assert role.begin_start()
        status = role.status()
        role.start(status.spm_id, status.lver, join_timeout=5)


@pytest.fixture
def infra() -> Iterator[tuple[Scheduler, Executor]]:
    scheduler = Scheduler("pool-test-sched")
    executor = Executor("pool-test", workers=2, max_tasks=50, scheduler=scheduler)
    scheduler.start()
    executor.start()
    yield scheduler, executor
    executor.stop(wait=False)
    scheduler.stop()


@pytest.fixture
def penv(tmp_path: Path, infra: tuple[Scheduler, Executor]) -> Iterator[PoolEnv]:
    env = Env(tmp_path, RecordingLocks())
    penv = PoolEnv(env, tmp_path, infra)
    yield penv
    penv.monitor.stop()
    env.pools.close()


SP = "5849b030-626e-47cb-ad90-3ce782d831b3"


def create_pool(penv: PoolEnv, *others: str) -> str:
    master = penv.new_domain()
    penv.pools.create(SP, "dc1", master, 1, [master, *others], {"leaseRetries": 0})
    return master


def test_create_writes_pool_keys_on_the_master(penv: PoolEnv) -> None:
    other = penv.new_domain()
    master = create_pool(penv, other)
    md = penv.md(master)
    assert md.is_master and md.pools == (SP,)
    assert md.pool_description == "dc1"
    assert dict(md.pool_domains) == {master: "Active", other: "Attached"}
    assert (md.pool_spm_id, md.pool_spm_lver, md.master_version) == (-1, -1, 1)
    assert md.lease_retries == sc.DEFAULT_LEASE_RETRIES  # 0 means the default
    assert penv.md(other).pools == (SP,) and not penv.md(other).is_master
    master_dir = Path(penv.env.domains.domain_dir(master))
    assert (master_dir / "master" / "tasks").is_dir()


def test_create_refuses_attached_iso_and_missing_master(penv: PoolEnv) -> None:
    master = create_pool(penv)
    fresh = penv.new_domain()
    with pytest.raises(se.StorageDomainAlreadyAttached):
        penv.pools.create(str(uuid.uuid4()), "x", fresh, 1, [fresh, master], {})
    assert penv.md(fresh).pools == ()  # nothing written
    iso = penv.new_domain(domain_class=2)
    with pytest.raises(se.IsoCannotBeMasterDomain):
        penv.pools.create(str(uuid.uuid4()), "x", iso, 1, [iso], {})
    with pytest.raises(se.StoragePoolMasterNotFound):
        penv.pools.create(str(uuid.uuid4()), "x", fresh, 1, [iso], {})
    with pytest.raises(se.StoragePoolDescriptionTooLongError):
        penv.pools.create(str(uuid.uuid4()), "x" * 51, fresh, 1, [fresh], {})
    with pytest.raises(errors.VirtHostError):
        penv.pools.create("../../etc", "x", fresh, 1, [fresh], {})


def test_connect_checks_master_and_version(penv: PoolEnv) -> None:
    master = create_pool(penv)
    with pytest.raises(se.StoragePoolWrongMaster):
        penv.pools.connect(SP, 1, master, 2)
    with pytest.raises(se.StoragePoolWrongMaster):
        penv.pools.connect(str(uuid.uuid4()), 1, master, 1)
    with pytest.raises(se.StoragePoolMasterNotFound):
        penv.pools.connect(SP, 1, str(uuid.uuid4()), 1)
    with pytest.raises(errors.InvalidParameter):
        penv.pools.connect(SP, 0, master, 1)
    assert penv.pools.connected() == []


def test_connect_monitors_links_and_disconnect_undoes(penv: PoolEnv) -> None:
    master = create_pool(penv)
    penv.pools.connect(SP, 3, master, "1")
    penv.pools.connect(SP, 3, master, 1)  # again: no-op
    assert penv.pools.connected() == [SP]
    assert penv.monitor.host_id(master) == 3
    pool_dir = penv.repository / SP
    assert os.readlink(pool_dir / "mastersd") == penv.env.domains.domain_dir(master)
    assert (pool_dir / master).is_symlink()
    with pytest.raises(se.CannotConnectMultiplePools):
        penv.pools.connect(str(uuid.uuid4()), 3, master, 1)
    info = penv.pools.info(SP)
    assert info["info"]["name"] == "dc1" and info["info"]["master_uuid"] == master
    assert info["info"]["spm_id"] == -1 and info["info"]["pool_status"] == "connected"
    assert info["dominfo"][master]["status"] == "Active"
    assert int(info["dominfo"][master]["disktotal"]) > 0
    penv.pools.disconnect(SP, 3)
    assert penv.pools.connected() == [] and not pool_dir.exists()
    assert penv.monitor.host_id(master) is None
    with pytest.raises(se.StoragePoolUnknown):
        penv.pools.info(SP)


def test_spm_start_writes_id_and_lver_and_stop_frees(penv: PoolEnv) -> None:
    master = create_pool(penv)
    penv.pools.connect(SP, 1, master, 1)
    assert penv.pools.spm_status(SP) == {"spmStatus": "Free", "spmLver": -1, "spmId": -1}
    penv.become_spm(SP)
    assert penv.pools.spm_status(SP) == {"spmStatus": "SPM", "spmLver": 1, "spmId": 1}
    md = penv.md(master)
    assert (md.pool_spm_id, md.pool_spm_lver) == (1, 1)
    assert (master, 1) in penv.lockspaces.joined
    assert penv.tasks.loaded and penv.tasks.loaded[0][1] == SP
    with pytest.raises(se.IsSpm):
        penv.pools.disconnect(SP, 1)
    penv.tasks.pending = ["t1"]
    with pytest.raises(se.SpmStopError):
        penv.pools.stop_spm(SP)
    penv.tasks.pending = []
    penv.pools.stop_spm(SP)
    assert penv.pools.get(SP).spm.state is SpmState.FREE
    assert penv.md(master).pool_spm_id == -1
    assert penv.md(master).pool_spm_lver == 1  # the version stays
    assert penv.tasks.forgotten == [SP]


def test_spm_start_with_stale_previous_params_fails(penv: PoolEnv) -> None:
    master = create_pool(penv)
    penv.pools.connect(SP, 1, master, 1)
    role = penv.pools.get(SP).spm
    assert role.begin_start()
    with pytest.raises(se.SpmParamsMismatch):
        role.start(2, 5, join_timeout=5)
    assert role.state is SpmState.FREE
    penv.lease.other_owner = (7, 2)
    assert penv.pools.spm_status(SP) == {"spmStatus": "Free", "spmLver": 7, "spmId": 2}
    assert role.begin_start()
    with pytest.raises(se.LeaseHeldByOtherHost):
        role.start(2, 7, join_timeout=5)
    assert role.state is SpmState.FREE
    assert penv.md(master).pool_spm_id == -1


def test_contending_twice_is_refused(penv: PoolEnv) -> None:
    master = create_pool(penv)
    penv.pools.connect(SP, 1, master, 1)
    role = penv.pools.get(SP).spm
    assert role.begin_start()
    with pytest.raises(se.SpmStartError):
        role.begin_start()
    assert penv.pools.spm_status(SP)["spmStatus"] == "Contend"
    role.abort_start()
    assert role.state is SpmState.FREE


def test_domain_membership_needs_spm(penv: PoolEnv) -> None:
    master = create_pool(penv)
    extra = penv.new_domain()
    penv.pools.connect(SP, 1, master, 1)
    with pytest.raises(se.SpmStatusError):
        penv.pool_domains.attach(extra, SP)
    assert penv.md(extra).pools == ()


def test_attach_activate_deactivate_detach(penv: PoolEnv) -> None:
    master = create_pool(penv)
    extra = penv.new_domain()
    penv.pools.connect(SP, 1, master, 1)
    penv.become_spm(SP)
    pd = penv.pool_domains
    pd.attach(extra, SP)
    pd.attach(extra, SP)  # again: no-op
    assert penv.md(extra).pools == (SP,)
    assert penv.md(master).pool_domains[extra] == "Attached"
    pd.activate(extra, SP)
    assert penv.md(master).pool_domains[extra] == "Active"
    assert penv.monitor.host_id(extra) == 1
    assert (penv.repository / SP / extra).is_symlink()
    with pytest.raises(se.StorageDomainActive):
        pd.detach(extra, SP, master, 1)
    with pytest.raises(se.CannotDetachMasterStorageDomain):
        pd.detach(master, SP, master, 1)
    with pytest.raises(errors.UnsupportedOperation):
        pd.deactivate(master, SP, master, 1)
    pd.deactivate(extra, SP, master, 1)
    assert penv.md(master).pool_domains[extra] == "Attached"
    assert penv.monitor.host_id(extra) is None
    pd.detach(extra, SP, master, 1)
    assert extra not in penv.md(master).pool_domains
    assert penv.md(extra).pools == () and penv.md(extra).pool_domains is None
    with pytest.raises(se.StorageDomainNotInPool):
        pd.activate(extra, SP)


def test_attach_refuses_a_domain_of_another_pool(penv: PoolEnv) -> None:
    master = create_pool(penv)
    foreign_master = penv.new_domain()
    penv.pools.create(str(uuid.uuid4()), "dc2", foreign_master, 1, [foreign_master], {})
    penv.pools.connect(SP, 1, master, 1)
    penv.become_spm(SP)
    with pytest.raises(se.StorageDomainAlreadyAttached):
        penv.pool_domains.attach(foreign_master, SP)


def test_destroy_leaves_domains_unattached(penv: PoolEnv) -> None:
    extra = penv.new_domain()
    master = create_pool(penv, extra)
    penv.pools.connect(SP, 1, master, 1)
    with pytest.raises(se.SpmStatusError):
        penv.pools.destroy(SP, 1)
    penv.become_spm(SP)
    penv.pools.destroy(SP, 1)
    for sd in (master, extra):
        md = penv.md(sd)
        assert md.pools == () and md.role is sc.DomainRole.REGULAR
        assert md.pool_domains is None and md.master_version is None
    assert penv.pools.connected() == []
    assert penv.lease.owner_id is None


def test_refresh_follows_another_hosts_changes(penv: PoolEnv) -> None:
    extra = penv.new_domain()
    master = create_pool(penv, extra)
    penv.pools.connect(SP, 1, master, 1)
    handle = penv.env.domains.locate(master)
    statuses = dict(handle.metadata.pool_domains)
    statuses[extra] = "Active"
    penv.env.domains.write_metadata(handle, replace(handle.metadata, pool_domains=statuses))
    penv.pools.refresh(SP, master, 1)
    assert penv.monitor.host_id(extra) == 1
    with pytest.raises(se.StoragePoolWrongMaster):
        penv.pools.refresh(SP, master, 9)


def test_concurrent_spm_start_claims_once(penv: PoolEnv) -> None:
    master = create_pool(penv)
    penv.pools.connect(SP, 1, master, 1)
    role = penv.pools.get(SP).spm
    results: list[bool | str] = []

    def claim() -> None:
        try:
            results.append(role.begin_start())
        except se.SpmStartError:
            results.append("refused")

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(map(str, results)) == ["True", "refused", "refused", "refused"]


def test_watchdog_gives_up_a_lost_lease(penv: PoolEnv) -> None:
    master = create_pool(penv)
    penv.pools.connect(SP, 1, master, 1)
    penv.pools.verify_spm()  # not SPM: nothing to check
    penv.become_spm(SP)
    penv.pools.verify_spm()
    assert penv.pools.get(SP).spm.is_spm  # still held
    penv.lease.owner_id = None  # sanlock took it away
    penv.pools.verify_spm()
    assert penv.pools.get(SP).spm.state is SpmState.FREE
    assert penv.tasks.forgotten == [SP]
    with pytest.raises(se.SpmStatusError):
        penv.pools.spm_of(SP)


def test_create_again_completes_an_interrupted_one_but_not_a_whole_pool(penv: PoolEnv) -> None:
    other = penv.new_domain()
    master = penv.new_domain()
    handle = penv.env.domains.locate(other)  # killed after writing the first domain
    penv.env.domains.write_metadata(handle, replace(handle.metadata, pool_uuids=(SP,)))
    penv.pools.create(SP, "dc1", master, 1, [master, other], {})
    assert penv.md(master).is_master
    with pytest.raises(se.StoragePoolAlreadyExists):
        penv.pools.create(SP, "dc1", master, 1, [master, other], {})
