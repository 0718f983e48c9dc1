"""StorageDomain.* on a LOCALFS directory through the real daemon, supervisor and sanlock.

The daemon runs as ``virthost`` and sanlock as ``sanlock``: the directory is set-group-id
and owned by group ``sanlock`` (both users are in it), which is how a real host shares a
domain's files between the agent and sanlock.
"""

from __future__ import annotations

import grp
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures import daemon as daemon_fixtures
from fixtures.sanlock import SanlockDaemon, local_daemon_for_session
from virthost.client import errors as client_errors
from virthost.common.pki import PkiPaths
from virthost.storage import sdmetadata

from .localfs import connected_local_dir

pytestmark = pytest.mark.integration

MiB = 1024 * 1024


@pytest.fixture(scope="session")
def sanlock_daemon() -> Iterator[SanlockDaemon]:
    yield from local_daemon_for_session()


@pytest.fixture(scope="module")
def services(pki: PkiPaths, sanlock_daemon: SanlockDaemon) -> Iterator[daemon_fixtures.Services]:
    running = daemon_fixtures.start_services(pki)
    yield running
    daemon_fixtures.cleanup(running)


@pytest.fixture
def local_dir(services: daemon_fixtures.Services) -> Iterator[Path]:
    with connected_local_dir(services, "virthost-localfs-") as directory:
        yield directory


def test_domain_lifecycle(services: daemon_fixtures.Services, local_dir: Path) -> None:
    sd = str(uuid.uuid4())
    with services.client() as cli:
        cli.StorageDomain.create(
            storagedomainID=sd,
            domainType=4,
            typeArgs=str(local_dir),
            name="integration",
            domainClass=1,
            version="5",
            blockSize=512,
            maxHosts=250,
        )
        info = cli.StorageDomain.getInfo(storagedomainID=sd)
        assert info["uuid"] == sd
        assert (info["type"], info["class"], info["role"]) == ("LOCALFS", "Data", "Regular")
        assert (info["name"], info["pool"], info["version"]) == ("integration", [], "5")
        assert info["remotePath"] == str(local_dir)
        stats = cli.StorageDomain.getStats(storagedomainID=sd)
        assert int(stats["disktotal"]) >= int(stats["diskfree"]) > 0
        cli.StorageDomain.validate(storagedomainID=sd)
        assert cli.StorageDomain.getImages(storagedomainID=sd) == []
        cli.StorageDomain.setDescription(storagedomainID=sd, description="renamed")
        assert cli.StorageDomain.getInfo(storagedomainID=sd)["name"] == "renamed"
        assert cli.StorageDomain.dump(sd_id=sd)["metadata"]["SDUUID"] == sd

        dom_md = local_dir / sd / "dom_md"
        md = sdmetadata.DomainMetadata.parse((dom_md / "metadata").read_bytes())
        assert (md.sd_uuid, md.description, md.version) == (sd, "renamed", 5)
        assert md.remote_path == str(local_dir)
        sanlock_gid = grp.getgrnam("sanlock").gr_gid
        for name in ("ids", "leases", "metadata"):
            st = (dom_md / name).stat()
            assert st.st_gid == sanlock_gid and stat.S_IMODE(st.st_mode) == 0o660, name
        assert (dom_md / "ids").stat().st_size == MiB
        assert (dom_md / "leases").stat().st_size == 2048 * MiB
        assert sd.encode() in (dom_md / "ids").read_bytes()[:512]

        with pytest.raises(client_errors.ServerError) as twice:
            cli.StorageDomain.create(
                storagedomainID=sd,
                domainType=4,
                typeArgs=str(local_dir),
                name="again",
                domainClass=1,
                version=5,
            )
        assert twice.value.code == 365

        cli.StorageDomain.format(storagedomainID=sd)
        assert not (local_dir / sd).exists()
        with pytest.raises(client_errors.ServerError) as gone:
            cli.StorageDomain.getInfo(storagedomainID=sd)
        assert gone.value.code == 358


def test_bad_requests(services: daemon_fixtures.Services, local_dir: Path) -> None:
    with services.client() as cli:
        for bad in ("not-a-uuid", "../../etc/passwd"):
            with pytest.raises(client_errors.ServerError) as refused:
                cli.StorageDomain.getInfo(storagedomainID=bad)
            assert refused.value.code == -32602  # the schema's UUID check
        with pytest.raises(client_errors.ServerError) as escape:
            cli.StorageDomain.create(
                storagedomainID=str(uuid.uuid4()),
                domainType=4,
                typeArgs=f"{local_dir}/../../etc",
                name="escape",
                domainClass=1,
            )
        assert escape.value.code == 91
        with pytest.raises(client_errors.ServerError) as old:
            cli.StorageDomain.create(
                storagedomainID=str(uuid.uuid4()),
                domainType=4,
                typeArgs=str(local_dir),
                name="old",
                domainClass=1,
                version=3,
            )
        assert old.value.code == 394
        with pytest.raises(client_errors.ServerError) as unmounted:
            cli.StorageDomain.create(
                storagedomainID=str(uuid.uuid4()),
                domainType=4,
                typeArgs="/nonexistent/dir",
                name="nowhere",
                domainClass=1,
            )
        assert unmounted.value.code == 360
    assert list(local_dir.iterdir()) == []


def test_broken_seal_is_752_and_nothing_is_written(
    services: daemon_fixtures.Services, local_dir: Path
) -> None:
    sd = str(uuid.uuid4())
    with services.client() as cli:
        cli.StorageDomain.create(
            storagedomainID=sd, domainType=4, typeArgs=str(local_dir), name="seal", domainClass=1
        )
        metadata = local_dir / sd / "dom_md" / "metadata"
        tampered = metadata.read_bytes().replace(b"DESCRIPTION=seal", b"DESCRIPTION=evil")
        metadata.write_bytes(tampered)
        for call in (
            lambda: cli.StorageDomain.getInfo(storagedomainID=sd),
            lambda: cli.StorageDomain.setDescription(storagedomainID=sd, description="x"),
        ):
            with pytest.raises(client_errors.ServerError) as broken:
                call()
            assert broken.value.code == 752
        assert metadata.read_bytes() == tampered  # not "repaired", not overwritten
        cli.StorageDomain.format(storagedomainID=sd)  # an unreadable domain can still go
    assert not (local_dir / sd).exists()
