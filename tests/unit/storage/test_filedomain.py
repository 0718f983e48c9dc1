"""File domains on a temporary mount root: layout, metadata, verbs, errors, cleanup.

Most tests record the cluster lock calls instead of running sanlock, so they check our side
(what is created, in which order, what is left on failure); one test runs the real daemon
to prove that ``ids`` and ``leases`` come out as sanlock formats them.
"""

from __future__ import annotations

import grp
import os
import shutil
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.sanlock import SanlockDaemon, local_daemon_for_session, make_workdir
from virthost.common import errors
from virthost.storage import constants as sc
from virthost.storage import errors as se
from virthost.storage import sdmetadata
from virthost.storage.connections import LOCALFS, transform_path
from virthost.storage.filedomain import CreateRequest, FileDomains, alignment_for
from virthost.storage.oop import ProcessPools


class RecordingLocks:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.calls: list[tuple[str, str, int, int]] = []

    def init_lockspace(
        self, sd_uuid: str, ids_path: str, io_timeout: int, alignment: int, block_size: int
    ) -> None:
        self.calls.append(("lockspace", ids_path, alignment, block_size))
        if self.fail:
            raise se.ClusterLockInitError("sanlock said no")

    def init_sdm_lease(
        self, sd_uuid: str, leases_path: str, alignment: int, block_size: int
    ) -> None:
        self.calls.append(("sdm", leases_path, alignment, block_size))


class Env:
    def __init__(self, root: Path, locks: object) -> None:
        self.local = root / "local"
        self.local.mkdir()
        self.mount_root = root / "mnt"
        self.mount_root.mkdir()
        self.mount = self.mount_root / transform_path(str(self.local))
        self.mount.symlink_to(self.local)
        self.pools = ProcessPools(reap_interval=0)

        def mount_point(kind: int, remote: str) -> Path:
            return self.mount_root / transform_path(remote)

        self.domains = FileDomains(self.mount_root, mount_point, self.pools, locks)  # type: ignore[arg-type]

    def request(self, sd_uuid: str, **kwargs: object) -> CreateRequest:
        args: dict[str, object] = {
            "domain_type": LOCALFS,
            "type_args": str(self.local),
            "name": "test domain",
            "domain_class": 1,
            "version": 5,
        }
        args.update(kwargs)
        return CreateRequest.from_wire(sd_uuid, **args)


@pytest.fixture
def locks() -> RecordingLocks:
    return RecordingLocks()


@pytest.fixture
def env(tmp_path: Path, locks: RecordingLocks) -> Iterator[Env]:
    made = Env(tmp_path, locks)
    yield made
    made.pools.close()


def new_id() -> str:
    return str(uuid.uuid4())


def test_create_lays_out_a_v5_file_domain(env: Env, locks: RecordingLocks) -> None:
    sd = new_id()
    env.domains.create(env.request(sd))
    dom_md = env.local / sd / "dom_md"
    assert sorted(p.name for p in dom_md.iterdir()) == sorted(
        ["metadata", "ids", "leases", "inbox", "outbox", "xleases"]
    )
    assert (env.local / sd / "images").is_dir()
    assert (dom_md / "inbox").stat().st_size == 16 * sc.MiB
    assert (dom_md / "xleases").stat().st_size == 1024 * sc.MiB
    assert (dom_md / "leases").stat().st_size == 2048 * sc.MiB
    assert (dom_md / "inbox").stat().st_blocks == 0  # sparse
    assert (dom_md / "ids").stat().st_mode & 0o777 == 0o660
    entries = sdmetadata.parse_entries((dom_md / "metadata").read_bytes())
    assert entries == {
        "ALIGNMENT": "1048576",
        "BLOCK_SIZE": "512",
        "CLASS": "Data",
        "DESCRIPTION": "test domain",
        "IOOPTIMEOUTSEC": "10",
        "LEASERETRIES": "3",
        "LEASETIMESEC": "60",
        "LOCKPOLICY": "",
        "LOCKRENEWALINTERVALSEC": "5",
        "POOL_UUID": "",
        "REMOTE_PATH": str(env.local),
        "ROLE": "Regular",
        "SDUUID": sd,
        "TYPE": "LOCALFS",
        "VERSION": "5",
    }
    assert (dom_md / "metadata").read_text().splitlines()[-1].startswith("_SHA_CKSUM=")
    assert [c[0] for c in locks.calls] == ["lockspace", "sdm"]
    assert locks.calls[0][1] == str(env.mount / sd / "dom_md" / "ids")


def test_info_stats_validate_images(env: Env) -> None:
    sd = new_id()
    env.domains.create(env.request(sd, domain_class="Iso"))
    info = env.domains.info(sd)
    assert info["uuid"] == sd
    assert (info["type"], info["class"], info["role"]) == ("LOCALFS", "Iso", "Regular")
    assert (info["name"], info["pool"], info["version"]) == ("test domain", [], "5")
    assert (info["block_size"], info["alignment"]) == (512, sc.MiB)
    assert info["remotePath"] == str(env.local)
    stats = env.domains.stats(sd)
    st = os.statvfs(env.local)
    assert stats["disktotal"] == str(st.f_blocks * st.f_frsize)
    assert int(stats["diskfree"]) > 0
    env.domains.validate(sd)
    image = new_id()
    (env.local / sd / "images" / image).mkdir()
    (env.local / sd / "images" / f"_remove_me_{new_id()}").mkdir()
    assert env.domains.images(sd) == [image]


def test_set_description_reseals(env: Env) -> None:
    sd = new_id()
    env.domains.create(env.request(sd))
    env.domains.set_description(sd, "renamed")
    path = env.local / sd / "dom_md" / "metadata"
    assert sdmetadata.DomainMetadata.parse(path.read_bytes()).description == "renamed"
    assert env.domains.dump(sd)["metadata"]["DESCRIPTION"] == "renamed"
    with pytest.raises(se.StorageDomainDescriptionTooLongError) as e:
        env.domains.set_description(sd, "x" * 51)
    assert e.value.code == 387


def test_broken_seal_fails_validation(env: Env) -> None:
    sd = new_id()
    env.domains.create(env.request(sd))
    path = env.local / sd / "dom_md" / "metadata"
    path.write_text(path.read_text().replace("test domain", "tampered"))
    with pytest.raises(se.MetaDataSealIsBroken):
        env.domains.validate(sd)


def test_create_twice_is_365(env: Env) -> None:
    sd = new_id()
    env.domains.create(env.request(sd))
    with pytest.raises(se.StorageDomainAlreadyExists) as e:
        env.domains.create(env.request(sd))
    assert e.value.code == 365


def test_failed_create_leaves_nothing(tmp_path: Path) -> None:
    failing = Env(tmp_path, RecordingLocks(fail=True))
    try:
        with pytest.raises(se.ClusterLockInitError):
            failing.domains.create(failing.request(new_id()))
        assert list(failing.local.iterdir()) == []
    finally:
        failing.pools.close()


def test_format_removes_the_domain(env: Env) -> None:
    sd = new_id()
    env.domains.create(env.request(sd))
    env.domains.format(sd)
    assert not (env.local / sd).exists()
    assert env.local.is_dir()
    with pytest.raises(se.StorageDomainDoesNotExist) as e:
        env.domains.info(sd)
    assert e.value.code == 358


def test_not_mounted_is_360(env: Env) -> None:
    with pytest.raises(se.StorageDomainFSNotMounted):
        env.domains.create(env.request(new_id(), type_args="/not/connected"))


@pytest.mark.parametrize(
    ("kwargs", "error", "code"),
    [
        ({"version": 3}, se.UnsupportedDomainVersion, 394),
        ({"name": "n" * 51}, se.StorageDomainDescriptionTooLongError, 387),
        ({"domain_type": 3}, se.StorageDomainTypeError, 372),
        ({"domain_class": 9}, se.StorageDomainClassError, 386),
        ({"block_size": 1024}, se.InvalidParameterException, 1000),
        ({"type_args": "/a/../etc"}, errors.InvalidParameter, 91),
    ],
)
def test_bad_create_arguments(
    env: Env, kwargs: dict[str, object], error: type[Exception], code: int
) -> None:
    with pytest.raises(error) as e:
        env.request(new_id(), **kwargs)
    assert getattr(e.value, "code", None) == code


@pytest.mark.parametrize("bad", ["../../etc", "not-a-uuid", "*"])
def test_bad_ids_are_refused(env: Env, bad: str) -> None:
    with pytest.raises(errors.InvalidParameter):
        env.domains.info(bad)
    with pytest.raises(errors.InvalidParameter):
        env.request(bad)


def test_alignment_for_max_hosts() -> None:
    assert alignment_for(512, 2000) == sc.MiB
    assert alignment_for(4096, 250) == sc.MiB
    assert alignment_for(4096, 251) == 2 * sc.MiB
    assert alignment_for(4096, 2000) == 8 * sc.MiB


@pytest.fixture(scope="session")
def sanlock_daemon() -> Iterator[SanlockDaemon]:
    yield from local_daemon_for_session()


def test_real_sanlock_formats_ids_and_leases(sanlock_daemon: SanlockDaemon) -> None:
    root = make_workdir("virthost-filedomain-")
    try:
        local = root / "local"
        local.mkdir()
        shutil.chown(local, group="sanlock")
        local.chmod(0o2770)
        (root / "mnt").mkdir()
        link = root / "mnt" / transform_path(str(local))
        link.symlink_to(local)
        pools = ProcessPools(reap_interval=0)
        try:
            domains = FileDomains(root / "mnt", lambda _k, _r: link, pools)
            sd = new_id()
            domains.create(CreateRequest.from_wire(sd, 4, str(local), "real", 1, 5))
            ids = local / sd / "dom_md" / "ids"
            assert ids.stat().st_gid == grp.getgrnam("sanlock").gr_gid
            assert ids.stat().st_size == sc.MiB
            # a sanlock delta lease sector starts with its magic and names the lockspace
            assert sd.encode() in ids.read_bytes()[:512]
            leases = (local / sd / "dom_md" / "leases").read_bytes()[sc.MiB : sc.MiB + 512]
            assert b"SDM" in leases and sd.encode() in leases
            domains.validate(sd)
        finally:
            pools.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_block_size_zero_is_detected(env: Env, locks: RecordingLocks) -> None:
    sd = new_id()
    env.domains.create(env.request(sd, block_size=0, max_hosts=250))
    info = env.domains.info(sd)
    assert info["block_size"] in (512, 4096)  # what this machine's disk takes
    assert locks.calls[0][3] == info["block_size"]
    assert not [n for n in os.listdir(env.local) if n.startswith(".probe-")]
    old = new_id()
    env.domains.create(env.request(old, block_size=0, version=4))
    assert env.domains.info(old)["block_size"] == 512  # v4 domains are 512 only


def test_leftover_of_an_interrupted_create_is_replaced(env: Env) -> None:
    sd = new_id()
    partial = env.local / sd / "dom_md"
    partial.mkdir(parents=True)  # killed before the metadata was written
    (partial / "ids").write_bytes(b"")
    env.domains.create(env.request(sd))
    assert env.domains.info(sd)["uuid"] == sd
    with pytest.raises(se.StorageDomainAlreadyExists):
        env.domains.create(env.request(sd))


def test_domain_directory_belongs_to_sanlock_and_passes_it_on(env: Env) -> None:
    sd = new_id()
    env.local.chmod(0o755)  # a storage root of any group, not set-group-id
    env.domains.create(env.request(sd))
    sanlock_gid = grp.getgrnam("sanlock").gr_gid
    top = (env.local / sd).stat()
    assert top.st_gid == sanlock_gid and top.st_mode & stat.S_ISGID
    for path in (env.local / sd / "dom_md" / "ids", env.local / sd / "images"):
        assert path.stat().st_gid == sanlock_gid, path


def test_a_found_domain_is_not_searched_for_again(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    sd = new_id()
    env.domains.create(env.request(sd))
    where = env.domains.domain_dir(sd)

    def hung_search(sd_uuid: str) -> list[str]:
        raise AssertionError("searched every mount (one could hang) for a known domain")

    monkeypatch.setattr(env.domains, "_candidates", hung_search)
    assert env.domains.domain_dir(sd) == where
    assert env.domains.info(sd)["uuid"] == sd
    monkeypatch.undo()
    env.domains.format(sd)
    with pytest.raises(se.StorageDomainDoesNotExist):
        env.domains.domain_dir(sd)
