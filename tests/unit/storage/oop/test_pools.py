from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from virthost.storage.oop import GLOBAL, PoolClosed, ProcessPools

from .support import eventually


@pytest.fixture
def pools() -> Iterator[ProcessPools]:
    pools = ProcessPools(timeout=30.0, idle_time=3600.0, reap_interval=0)
    yield pools
    pools.close()


def test_one_pool_per_domain(pools: ProcessPools) -> None:
    sd1 = pools.get("sd-1")
    assert pools.get("sd-1") is sd1
    sd2 = pools.get("sd-2")
    assert sd2 is not sd1
    assert sd1.name == "sd-1" and sd2.name == "sd-2"
    assert pools.get() is pools.global_pool
    assert pools.global_pool.name == GLOBAL
    assert pools.names() == sorted([GLOBAL, "sd-1", "sd-2"])
    with pytest.raises(ValueError):
        pools.get("")


def test_settings_reach_the_pools() -> None:
    pools = ProcessPools(max_threads=3, max_queued=4, timeout=7.5, reap_interval=0)
    try:
        assert pools.get("sd").timeout == 7.5
        assert pools.idle_time == 60.0
    finally:
        pools.close()


def test_domains_have_separate_helpers(pools: ProcessPools, tmp_path: Path) -> None:
    assert pools.get("sd-1").exists(tmp_path)
    assert pools.get("sd-2").exists(tmp_path)
    pid1, pid2 = pools.get("sd-1").helper_pid, pools.get("sd-2").helper_pid
    assert pid1 is not None and pid2 is not None and pid1 != pid2
    assert pools.running() == ["sd-1", "sd-2"]

    os.kill(pid1, signal.SIGKILL)  # one domain's helper dying ...
    eventually(lambda: pools.get("sd-1").helper_pid is None, "the death is noticed")
    assert pools.get("sd-2").helper_pid == pid2  # ... leaves the other alone
    assert pools.get("sd-2").listdir(tmp_path) == []


def test_reap_idle_stops_idle_helpers_only(tmp_path: Path) -> None:
    pools = ProcessPools(idle_time=0.0, reap_interval=0)
    try:
        pools.get("sd-1").ping()
        pools.get("sd-2").ping()
        assert pools.reap_idle() == ["sd-1", "sd-2"]
        assert pools.running() == []
        assert pools.names() == ["sd-1", "sd-2"]  # the pools stay, usable
        assert pools.get("sd-1").listdir(tmp_path) == []
        assert pools.running() == ["sd-1"]
    finally:
        pools.close()


def test_recently_used_helpers_are_not_reaped(pools: ProcessPools) -> None:
    pools.get("sd-1").ping()
    assert pools.reap_idle() == []
    assert pools.running() == ["sd-1"]


def test_reaper_thread_stops_idle_helpers() -> None:
    pools = ProcessPools(idle_time=0.0, reap_interval=0.01)
    try:
        pools.get("sd-1").ping()
        eventually(lambda: pools.running() == [], "the idle helper is stopped")
    finally:
        pools.close()


def test_discard_closes_and_forgets(pools: ProcessPools) -> None:
    old = pools.get("sd-1")
    old.ping()
    pools.discard("sd-1")
    assert old.closed
    assert pools.names() == []
    with pytest.raises(PoolClosed):
        old.ping()
    new = pools.get("sd-1")
    assert new is not old
    new.ping()
    pools.discard("never-created")


def test_close_closes_everything(tmp_path: Path) -> None:
    pools = ProcessPools(reap_interval=0.01)
    sd = pools.get("sd-1")
    sd.ping()
    pools.close()
    assert sd.closed
    with pytest.raises(PoolClosed):
        pools.get("sd-1")
    pools.close()
