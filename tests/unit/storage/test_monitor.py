"""DomainMonitor with fake pools: good, failing and hanging storage, and the reports."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from virthost.common import errors
from virthost.common.executor import Executor
from virthost.common.scheduler import Scheduler
from virthost.storage import errors as se
from virthost.storage.monitor import DomainMonitor, error_code, host_id_arg, parse_version
from virthost.storage.oop import StorageTimeout

METADATA = b"CLASS=Data\nROLE=Regular\nSDUUID=x\nVERSION=5\n_SHA_CKSUM=abc\n"


class FakeIO:
    def __init__(self, behaviour: Callable[[str, int], bytes]) -> None:
        self.behaviour = behaviour
        self.reads: list[tuple[str, int]] = []

    def directio_read(self, path: str, size: int = 4096) -> bytes:
        self.reads.append((path, size))
        return self.behaviour(path, size)


class FakePools:
    def __init__(self) -> None:
        self.ios: dict[str, FakeIO] = {}

    def get(self, name: str = "Global") -> FakeIO:
        return self.ios[name]


class FakeDomains:
    def __init__(self) -> None:
        self.missing: set[str] = set()

    def domain_dir(self, sd_uuid: Any) -> str:
        if sd_uuid in self.missing:
            raise se.StorageDomainDoesNotExist(sd_uuid)
        return f"/mnt/server:_export/{sd_uuid}"


def good(path: str, size: int) -> bytes:
    return METADATA


def failing(path: str, size: int) -> bytes:
    raise FileNotFoundError(2, "No such file or directory", path)


def timing_out(path: str, size: int) -> bytes:
    raise StorageTimeout("directio_read did not complete within 0.2 s")


@pytest.fixture
def infra() -> Iterator[tuple[Scheduler, Executor]]:
    scheduler = Scheduler("monitor-test-sched")
    executor = Executor("monitor-test", workers=4, max_tasks=50, scheduler=scheduler)
    scheduler.start()
    executor.start()
    yield scheduler, executor
    executor.stop(wait=False)
    scheduler.stop()


def make_monitor(
    infra: tuple[Scheduler, Executor], interval: float = 0.05, **kwargs: Any
) -> tuple[DomainMonitor, FakePools, FakeDomains]:
    pools, domains = FakePools(), FakeDomains()
    monitor = DomainMonitor(domains, pools, *infra, check_interval=interval, **kwargs)
    return monitor, pools, domains


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def test_good_domain_is_valid(infra: tuple[Scheduler, Executor]) -> None:
    monitor, pools, _ = make_monitor(infra)
    sd = str(uuid.uuid4())
    pools.ios[sd] = FakeIO(good)
    before = monitor.report()
    assert before == {}
    monitor.start_monitoring(sd, "1")
    wait_for(lambda: monitor.report()[sd]["actual"])
    entry = monitor.report()[sd]
    assert entry["code"] == 0 and entry["valid"] is True
    assert entry["version"] == 5 and entry["acquired"] is False
    assert float(entry["delay"]) >= 0.0 and float(entry["lastCheck"]) < 5.0
    assert pools.ios[sd].reads[0] == (f"/mnt/server:_export/{sd}/dom_md/metadata", 4096)
    wait_for(lambda: len(pools.ios[sd].reads) >= 3)  # checks keep coming
    monitor.stop()


def test_initial_report_before_first_check(infra: tuple[Scheduler, Executor]) -> None:
    monitor, pools, _ = make_monitor(infra, interval=60.0)
    sd = str(uuid.uuid4())
    gate = threading.Event()

    def blocked(path: str, size: int) -> bytes:
        gate.wait(5)
        return METADATA

    pools.ios[sd] = FakeIO(blocked)
    monitor.start_monitoring(sd, 1)
    entry = monitor.report()[sd]
    assert entry == {
        "code": 0,
        "lastCheck": entry["lastCheck"],
        "delay": "0.000000",
        "valid": True,
        "version": -1,
        "acquired": False,
        "actual": False,
    }
    gate.set()
    wait_for(lambda: monitor.report()[sd]["actual"])
    monitor.stop()


@pytest.mark.parametrize(
    ("behaviour", "code"),
    [(failing, 379), (timing_out, 3)],
)
def test_failures_record_code(
    infra: tuple[Scheduler, Executor], behaviour: Callable[[str, int], bytes], code: int
) -> None:
    monitor, pools, _ = make_monitor(infra)
    sd = str(uuid.uuid4())
    pools.ios[sd] = FakeIO(behaviour)
    monitor.start_monitoring(sd, 2)
    wait_for(lambda: monitor.report()[sd]["actual"])
    entry = monitor.report()[sd]
    assert (entry["code"], entry["valid"], entry["version"]) == (code, False, -1)
    pools.ios[sd].behaviour = good  # the storage comes back
    wait_for(lambda: monitor.report()[sd]["valid"])
    assert monitor.report()[sd]["code"] == 0
    monitor.stop()


def test_missing_domain_reports_358(infra: tuple[Scheduler, Executor]) -> None:
    monitor, _, domains = make_monitor(infra)
    sd = str(uuid.uuid4())
    domains.missing.add(sd)
    monitor.start_monitoring(sd, 1)
    wait_for(lambda: monitor.report()[sd]["actual"])
    assert monitor.report()[sd]["code"] == 358
    monitor.stop()


def test_hanging_domain_does_not_block_others(infra: tuple[Scheduler, Executor]) -> None:
    monitor, pools, _ = make_monitor(infra)
    hung, healthy = str(uuid.uuid4()), str(uuid.uuid4())
    release = threading.Event()

    def hanging(path: str, size: int) -> bytes:
        release.wait(10)
        raise StorageTimeout("hung")

    pools.ios[hung] = FakeIO(hanging)
    pools.ios[healthy] = FakeIO(good)
    monitor.start_monitoring(hung, 1)
    monitor.start_monitoring(healthy, 1)
    wait_for(lambda: len(pools.ios[healthy].reads) >= 5)
    report = monitor.report()
    assert report[healthy]["valid"] is True and report[hung]["actual"] is False
    assert len(pools.ios[hung].reads) == 1  # exclusive: no reads pile up on a hung mount
    release.set()
    wait_for(lambda: monitor.report()[hung]["actual"])
    assert monitor.report()[hung]["code"] == 3
    monitor.stop()


def test_report_filter_and_stop(infra: tuple[Scheduler, Executor]) -> None:
    monitor, pools, _ = make_monitor(infra)
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    pools.ios[a] = FakeIO(good)
    pools.ios[b] = FakeIO(good)
    monitor.start_monitoring(a, 1)
    monitor.start_monitoring(b, 1)
    monitor.start_monitoring(a, 1)  # already monitored: nothing changes
    assert monitor.monitored() == sorted([a, b])
    assert set(monitor.report([a])) == {a}
    assert set(monitor.report([])) == {a, b}
    monitor.stop_monitoring(a)
    assert set(monitor.report()) == {b}
    reads = len(pools.ios[a].reads)
    time.sleep(0.2)
    assert len(pools.ios[a].reads) <= reads + 1  # at most a check already running
    monitor.stop_monitoring(a)  # not monitored: ignored
    monitor.stop()
    with pytest.raises(errors.VirtHostError):
        monitor.start_monitoring(a, 1)


class FakeHostIds:
    """Records joins; the id is held once ``joined`` says so."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.joined: set[str] = set()
        self.acquires: list[tuple[str, int, str]] = []
        self.released: list[str] = []

    def acquire(self, sd_uuid: str, host_id: int, ids: str) -> bool:
        if self.fail:
            raise se.AcquireHostIdFailure("sanlock down")
        if sd_uuid in self.joined:
            return True
        self.acquires.append((sd_uuid, host_id, ids))  # a join is started
        self.joined.add(sd_uuid)
        return False

    def release(self, sd_uuid: str, host_id: int, ids: str) -> None:
        self.released.append(sd_uuid)


def test_joins_the_lockspace_and_reports_acquired(infra: tuple[Scheduler, Executor]) -> None:
    host_ids = FakeHostIds()
    monitor, pools, _ = make_monitor(infra, host_ids=host_ids)
    sd = str(uuid.uuid4())
    pools.ios[sd] = FakeIO(good)
    monitor.start_monitoring(sd, 7)
    assert monitor.host_id(sd) == 7
    wait_for(lambda: monitor.report()[sd]["acquired"])
    assert host_ids.acquires[0] == (sd, 7, f"/mnt/server:_export/{sd}/dom_md/ids")
    assert len(host_ids.acquires) == 1  # joined once, then only inquired
    monitor.stop_monitoring(sd)
    assert host_ids.released == [sd]
    assert monitor.host_id(sd) is None
    monitor.stop()


def test_join_failure_is_not_acquired(infra: tuple[Scheduler, Executor]) -> None:
    monitor, pools, _ = make_monitor(infra, host_ids=FakeHostIds(fail=True))
    sd = str(uuid.uuid4())
    pools.ios[sd] = FakeIO(good)
    monitor.start_monitoring(sd, 1)
    wait_for(lambda: monitor.report()[sd]["actual"])
    assert monitor.report()[sd]["acquired"] is False
    assert monitor.report()[sd]["valid"] is True
    monitor.stop()


@pytest.mark.parametrize("bad", ["0", 2001, "x", None, True])
def test_bad_host_id(bad: Any) -> None:
    with pytest.raises(errors.InvalidParameter):
        host_id_arg(bad)


def test_bad_uuid(infra: tuple[Scheduler, Executor]) -> None:
    monitor, _, _ = make_monitor(infra)
    with pytest.raises(errors.InvalidParameter):
        monitor.start_monitoring("../etc", 1)
    with pytest.raises(ValueError):
        DomainMonitor(FakeDomains(), FakePools(), *infra, check_interval=0)


def test_helpers() -> None:
    assert parse_version(METADATA) == 5
    assert parse_version(b"VERSION=abc\n") is None
    assert parse_version(b"\x00\xff") is None
    assert error_code(StorageTimeout("x")) == 3
    assert error_code(OSError(5, "EIO")) == 379
    assert error_code(se.StorageDomainDoesNotExist("x")) == 358
