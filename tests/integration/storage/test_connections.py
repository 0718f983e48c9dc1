"""StoragePool.connectStorageServer / disconnectStorageServer through the real daemon and
supervisor: a local directory, a real GlusterFS volume, bad input."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures import daemon as daemon_fixtures
from fixtures import gluster
from virthost.common.pki import PkiPaths
from virthost.storage.connections import transform_path

pytestmark = pytest.mark.integration

POOL = "00000000-0000-0000-0000-000000000000"


@pytest.fixture(scope="module")
def services(pki: PkiPaths) -> Iterator[daemon_fixtures.Services]:
    running = daemon_fixtures.start_services(pki)
    yield running
    daemon_fixtures.cleanup(running)


def mounted(path: Path) -> bool:
    with open("/proc/self/mounts") as f:
        return any(line.split()[1] == str(path) for line in f)


def test_local_directory(services: daemon_fixtures.Services) -> None:
    directory = Path(tempfile.mkdtemp(prefix="virthost-localfs-", dir="/tmp"))
    directory.chmod(0o777)
    conn_id = str(uuid.uuid4())
    params = [{"id": conn_id, "connection": str(directory)}]
    with services.client() as cli:
        answer = cli.StoragePool.connectStorageServer(
            storagepoolID=POOL, domainType=4, connectionParams=params
        )
        assert answer == [{"id": conn_id, "status": 0}]
        link = services.workdir / "data-center" / "mnt" / transform_path(str(directory))
        assert link.is_symlink() and os.readlink(link) == str(directory)
        again = cli.StoragePool.connectStorageServer(
            storagepoolID=POOL, domainType="LOCALFS", connectionParams=params
        )
        assert again[0]["status"] == 0  # idempotent
        cli.StoragePool.disconnectStorageServer(
            storagepoolID=POOL, domainType=4, connectionParams=params
        )
        assert not link.exists()


def test_each_connection_gets_its_own_status(services: daemon_fixtures.Services) -> None:
    good = Path(tempfile.mkdtemp(prefix="virthost-localfs-", dir="/tmp"))
    ids = {name: str(uuid.uuid4()) for name in ("good", "missing", "relative")}
    params = [
        {"id": ids["good"], "connection": str(good)},
        {"id": ids["missing"], "connection": "/nonexistent/dir"},
        {"id": ids["relative"], "connection": "../../etc"},
    ]
    with services.client() as cli:
        answer = cli.StoragePool.connectStorageServer(
            storagepoolID=POOL, domainType=4, connectionParams=params
        )
        statuses = {a["id"]: a["status"] for a in answer}
        assert statuses[ids["good"]] == 0
        assert statuses[ids["missing"]] == 451
        assert statuses[ids["relative"]] == 91
        cli.StoragePool.disconnectStorageServer(
            storagepoolID=POOL, domainType=4, connectionParams=params[:1]
        )


def test_mount_refuses_escapes(services: daemon_fixtures.Services) -> None:
    params = [
        {
            "id": str(uuid.uuid4()),
            "connection": "host:/vol",
            "vfs_type": "ext4",
            "mnt_options": "rw,-o,remount",
        }
    ]
    with services.client() as cli:
        answer = cli.StoragePool.connectStorageServer(
            storagepoolID=POOL, domainType=6, connectionParams=params
        )
    assert answer[0]["status"] == 91  # refused by the supervisor's allow-list


@pytest.mark.skipif(not gluster.available(), reason="GlusterFS is not installed")
@pytest.mark.skipif(os.geteuid() != 0, reason="mounting needs root")
def test_glusterfs_volume(services: daemon_fixtures.Services) -> None:
    with gluster.gluster_volume() as remote:
        conn_id = str(uuid.uuid4())
        params = [{"id": conn_id, "connection": remote}]
        with services.client() as cli:
            answer = cli.StoragePool.connectStorageServer(
                storagepoolID=POOL, domainType=7, connectionParams=params
            )
            assert answer == [{"id": conn_id, "status": 0}]
            target = services.workdir / "data-center" / "mnt" / "glusterSD" / transform_path(remote)
            assert mounted(target)
            probe = target / f"probe-{uuid.uuid4().hex}"
            probe.write_text("shared")
            assert probe.read_text() == "shared"
            probe.unlink()
            cli.StoragePool.disconnectStorageServer(
                storagepoolID=POOL, domainType=7, connectionParams=params
            )
            assert not mounted(target)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting needs root")
def test_nfs_needs_a_kernel_client(services: daemon_fixtures.Services) -> None:
    with open("/proc/filesystems") as f:
        if "nfs" in f.read():
            pytest.skip("this kernel has an NFS client; covered on full-kernel lab hosts")
    params = [{"id": str(uuid.uuid4()), "connection": "127.0.0.1:/export"}]
    with services.client() as cli:
        answer = cli.StoragePool.connectStorageServer(
            storagepoolID=POOL, domainType=1, connectionParams=params
        )
    assert answer[0]["status"] == 477  # a clear mount error, nothing left mounted
