"""Domain monitoring through the real daemon: a LOCALFS domain checked, broken, forgotten.

The directory is set-group-id and owned by group ``sanlock``, as in test_storage_domains,
so that StorageDomain.create can have sanlock format the lockspace.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fixtures import daemon as daemon_fixtures
from fixtures.sanlock import SanlockDaemon, local_daemon_for_session
from virthost.common.pki import PkiPaths

from .localfs import connected_local_dir

pytestmark = pytest.mark.integration

CHECK_INTERVAL = 0.5


@pytest.fixture(scope="session")
def sanlock_daemon() -> Iterator[SanlockDaemon]:
    yield from local_daemon_for_session()


@pytest.fixture(scope="module")
def services(pki: PkiPaths, sanlock_daemon: SanlockDaemon) -> Iterator[daemon_fixtures.Services]:
    running = daemon_fixtures.start_services(
        pki, overrides={"storage": {"domain_check_interval": CHECK_INTERVAL}}
    )
    yield running
    daemon_fixtures.cleanup(running)


@pytest.fixture
def local_dir(services: daemon_fixtures.Services) -> Iterator[Path]:
    with connected_local_dir(services, "virthost-monitor-") as directory:
        yield directory


def wait_for(
    fetch: Callable[[], Any], predicate: Callable[[Any], bool], timeout: float = 20.0
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if predicate(value):
            return value
        assert time.monotonic() < deadline, f"last value: {value!r}"
        time.sleep(0.1)


def test_monitor_lifecycle(services: daemon_fixtures.Services, local_dir: Path) -> None:
    sd = str(uuid.uuid4())
    with services.client() as cli:
        cli.StorageDomain.create(
            storagedomainID=sd,
            domainType=4,
            typeArgs=str(local_dir),
            name="monitored",
            domainClass=1,
            version=5,
        )
        assert sd not in cli.Host.getStorageRepoStats()
        cli.Host.startMonitoringDomain(sdUUID=sd, hostID=1)

        def repo_stats() -> dict[str, Any]:
            return dict(cli.Host.getStorageRepoStats(domains=[sd]))

        stats = wait_for(repo_stats, lambda s: s[sd]["actual"])
        entry = stats[sd]
        assert (entry["code"], entry["valid"], entry["version"]) == (0, True, 5)
        assert isinstance(entry["acquired"], bool)
        assert isinstance(entry["delay"], str) and 0.0 <= float(entry["delay"]) < 5.0
        assert isinstance(entry["lastCheck"], str) and float(entry["lastCheck"]) < 10.0
        host_stats = cli.Host.getStats()
        assert host_stats["storageDomains"][sd]["valid"] is True

        (local_dir / sd / "dom_md" / "metadata").unlink()
        broken = wait_for(repo_stats, lambda s: not s[sd]["valid"])[sd]
        assert broken["code"] in (358, 379)
        assert sd in cli.Host.getStats()["storageDomains"]

        cli.Host.stopMonitoringDomain(sdUUID=sd)
        assert sd not in cli.Host.getStorageRepoStats()
        assert sd not in cli.Host.getStats()["storageDomains"]
