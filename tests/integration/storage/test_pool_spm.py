"""A pool on LOCALFS domains through the real daemon and sanlock: SPM, tasks, volumes, crash.

The daemon joins lockspaces with io_timeout 1 (a join takes seconds, not VDSM's ~20 s); all
else is what a host managed by an engine does: connect the storage, create domains and a pool,
connect it, become SPM through an async task, create volumes as SPM tasks, and survive a
kill -9 in the middle of one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fixtures import daemon as daemon_fixtures
from fixtures.polling import wait_for
from fixtures.sanlock import SanlockDaemon, local_daemon_for_session
from virthost.client import errors as client_errors
from virthost.common.pki import PkiPaths
from virthost.storage import sdmetadata, volmetadata

from .localfs import connected_local_dir

pytestmark = pytest.mark.integration

BLANK = "00000000-0000-0000-0000-000000000000"
MiB = 1024 * 1024
TASK_TIMEOUT = 120.0
COPY_SIZE = 1024 * MiB  # long enough a copy to catch qemu-img in the middle


@pytest.fixture(scope="session")
def sanlock_daemon() -> Iterator[SanlockDaemon]:
    yield from local_daemon_for_session()


@pytest.fixture(scope="module")
def services(pki: PkiPaths, sanlock_daemon: SanlockDaemon) -> Iterator[daemon_fixtures.Services]:
    running = daemon_fixtures.start_services(
        pki,
        overrides={
            "storage": {
                "sanlock_io_timeout": 1,
                "domain_check_interval": 1.0,
                "spm_watchdog_interval": 0.5,
            }
        },
    )
    yield running
    daemon_fixtures.cleanup(running)


@pytest.fixture
def local_dir(services: daemon_fixtures.Services) -> Iterator[Path]:
    with connected_local_dir(services, "virthost-pool-") as directory:
        yield directory


def wait_task(cli: Any, task_id: str) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        status = cli.Task.getStatus(taskID=task_id)
        return status if status["taskState"] == "finished" else None

    return dict(wait_for(finished, TASK_TIMEOUT, f"task {task_id}"))


def create_domain(cli: Any, directory: Path, name: str) -> str:
    sd = str(uuid.uuid4())
    cli.StorageDomain.create(
        storagedomainID=sd,
        domainType=4,
        typeArgs=str(directory),
        name=name,
        domainClass=1,
        version=5,
    )
    return sd


def create_and_connect_pool(cli: Any, sp: str, master: str, *others: str) -> None:
    cli.StoragePool.create(
        storagepoolID=sp,
        name="dc",
        masterSdUUID=master,
        masterVersion=1,
        domainList=[master, *others],
        lockRenewalIntervalSec=5,
        leaseTimeSec=60,
        ioOpTimeoutSec=10,
        leaseRetries=3,
    )
    cli.StoragePool.connect(
        storagepoolID=sp, hostID=1, scsiKey=sp, masterSdUUID=master, masterVersion=1
    )


def become_spm(cli: Any, sp: str) -> None:
    status = cli.StoragePool.getSpmStatus(storagepoolID=sp)
    task = cli.StoragePool.spmStart(
        storagepoolID=sp,
        prevID=status["spmId"],
        prevLver=status["spmLver"],
        enableScsiFencing="false",
        maxHostID=250,
    )
    result = wait_task(cli, task)
    assert result["taskResult"] == "success", result
    cli.Task.clear(taskID=task)


def create_volume(cli: Any, sp: str, sd: str, img: str, vol: str, **kwargs: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "volumeID": vol,
        "storagepoolID": sp,
        "storagedomainID": sd,
        "imageID": img,
        "size": 64 * MiB,
        "volFormat": 5,
        "preallocate": 2,
        "diskType": "DATA",
        "desc": "test volume",
        "srcImgUUID": BLANK,
        "srcVolUUID": BLANK,
    }
    args.update(kwargs)
    task = cli.Volume.create(**args)
    status = wait_task(cli, task)
    cli.Task.clear(taskID=task)
    return status


def run_job(cli: Any, verb: str, **params: Any) -> dict[str, Any]:
    job_id = str(uuid.uuid4())
    getattr(cli.SDM, verb)(job_id=job_id, **params)

    def ended() -> dict[str, Any] | None:
        job = cli.Host.getJobs(job_ids=[job_id])[job_id]
        return job if job["status"] in ("done", "failed", "aborted") else None

    job = wait_for(ended, TASK_TIMEOUT, f"job {job_id}")
    assert job["status"] == "done", job
    return dict(job)


def test_pool_spm_and_volumes(services: daemon_fixtures.Services, local_dir: Path) -> None:
    sp = str(uuid.uuid4())
    with services.client() as cli:
        master = create_domain(cli, local_dir, "master")
        second = create_domain(cli, local_dir, "second")
        create_and_connect_pool(cli, sp, master, second)
        assert cli.Host.getConnectedStoragePools() == [sp]
        assert sorted(cli.Host.getStorageDomains(storagepoolID=sp)) == sorted([master, second])
        wait_for(
            lambda: cli.Host.getStorageRepoStats(domains=[master])[master]["acquired"],
            what="host id acquired",
        )
        assert cli.StoragePool.getSpmStatus(storagepoolID=sp) == {
            "spmStatus": "Free",
            "spmLver": -1,
            "spmId": -1,
        }

        # Not SPM yet: SPM verbs are refused with VDSM's "Not SPM".
        with pytest.raises(client_errors.ServerError) as not_spm:
            cli.Volume.create(
                volumeID=str(uuid.uuid4()),
                storagepoolID=sp,
                storagedomainID=master,
                imageID=str(uuid.uuid4()),
                size=MiB,
                volFormat=5,
                preallocate=2,
                diskType="DATA",
                desc="",
                srcImgUUID=BLANK,
                srcVolUUID=BLANK,
            )
        assert not_spm.value.code == 654

        become_spm(cli, sp)
        time.sleep(1.5)  # the SPM watchdog (every 0.5 s) finds the lease held in sanlock
        status = cli.StoragePool.getSpmStatus(storagepoolID=sp)
        assert status["spmStatus"] == "SPM" and status["spmId"] == 1 and status["spmLver"] >= 1
        assert "SPM lease of pool" not in services.log_text()
        md = sdmetadata.DomainMetadata.parse(
            (local_dir / master / "dom_md" / "metadata").read_bytes()
        )
        assert (md.pool_spm_id, md.pool_spm_lver) == (1, status["spmLver"])
        info = cli.StoragePool.getInfo(storagepoolID=sp)
        assert info["info"]["spm_id"] == 1 and info["info"]["master_uuid"] == master

        cli.StorageDomain.activate(storagedomainID=second, storagepoolID=sp)
        assert cli.StoragePool.getInfo(storagepoolID=sp)["dominfo"][second]["status"] == "Active"

        # A base and a thin COW leaf over it (a snapshot) in the same image.
        base_img, base_vol = str(uuid.uuid4()), str(uuid.uuid4())
        done = create_volume(cli, sp, master, base_img, base_vol)
        assert done["taskResult"] == "success", done
        cli.Volume.setDescription(
            volumeID=base_vol,
            storagepoolID=sp,
            storagedomainID=master,
            imageID=base_img,
            description="template",
        )
        leaf_img, leaf_vol = base_img, str(uuid.uuid4())
        done = create_volume(
            cli,
            sp,
            master,
            leaf_img,
            leaf_vol,
            volFormat=4,
            srcImgUUID=base_img,
            srcVolUUID=base_vol,
        )
        assert done["taskResult"] == "success", done
        leaf = cli.Volume.getInfo(
            volumeID=leaf_vol, storagepoolID=sp, storagedomainID=master, imageID=leaf_img
        )
        assert (leaf["format"], leaf["voltype"], leaf["parent"]) == ("COW", "LEAF", base_vol)
        base = cli.Volume.getInfo(
            volumeID=base_vol, storagepoolID=sp, storagedomainID=master, imageID=base_img
        )
        assert (base["voltype"], base["description"]) == ("INTERNAL", "template")
        assert leaf["legality"] == "LEGAL"
        prepared = cli.Image.prepare(
            storagepoolID=sp, storagedomainID=master, imageID=leaf_img, volumeID=leaf_vol
        )
        assert prepared["path"].endswith(f"/images/{leaf_img}/{leaf_vol}")
        assert [v["volumeID"] for v in prepared["imgVolumesInfo"]] == [base_vol, leaf_vol]
        assert sorted(
            cli.StorageDomain.getVolumes(storagedomainID=master, storagepoolID=sp)
        ) == sorted([base_vol, leaf_vol])
        meta = volmetadata.VolumeMetadata.parse(
            (local_dir / master / "images" / leaf_img / f"{leaf_vol}.meta").read_bytes()
        )
        assert meta.parent == base_vol

        # Deleting the base while the leaf needs it fails in the task, nothing is lost.
        task = cli.Volume.delete(
            volumeID=base_vol,
            storagepoolID=sp,
            storagedomainID=master,
            imageID=base_img,
            postZero="false",
            force="false",
        )
        failed = wait_task(cli, task)
        assert failed["taskResult"] == "cleanSuccess" and failed["code"] != 0
        assert task in cli.Host.getAllTasksStatuses()
        cli.Task.clear(taskID=task)
        assert (local_dir / master / "images" / base_img / base_vol).exists()

        # A template filled from a disk image file, marked SHARED, and a thin leaf over it in
        # another image: what the engine does to make a VM from a template.
        disk = local_dir / "guest.qcow2"
        subprocess.run(["qemu-img", "create", "-f", "qcow2", str(disk), "16M"], check=True)
        subprocess.run(
            ["qemu-io", "-f", "qcow2", "-c", "write -P 0x6b 0 1M", str(disk)],
            check=True,
            capture_output=True,
        )
        disk.chmod(0o644)
        tmpl_img, tmpl_vol = str(uuid.uuid4()), str(uuid.uuid4())
        assert create_volume(cli, sp, second, tmpl_img, tmpl_vol, size=16 * MiB)["code"] == 0
        run_job(
            cli,
            "copy_data",
            source={"endpoint_type": "external", "url": f"file://{disk}"},
            destination={"endpoint_type": "div", "sd_id": second, "img_id": tmpl_img,
                         "vol_id": tmpl_vol},
        )  # fmt: skip
        run_job(
            cli,
            "update_volume",
            vol_info={"sd_id": second, "img_id": tmpl_img, "vol_id": tmpl_vol},
            vol_attr={"type": "SHARED", "description": "tiny template"},
        )
        vm_img, vm_vol = str(uuid.uuid4()), str(uuid.uuid4())
        done = create_volume(
            cli, sp, second, vm_img, vm_vol, volFormat=4, srcImgUUID=tmpl_img, srcVolUUID=tmpl_vol
        )
        assert done["taskResult"] == "success", done
        prepared = cli.Image.prepare(
            storagepoolID=sp, storagedomainID=second, imageID=vm_img, volumeID=vm_vol
        )
        assert [v["volumeID"] for v in prepared["imgVolumesInfo"]] == [tmpl_vol, vm_vol]
        compare = subprocess.run(
            ["qemu-img", "compare", "-f", "qcow2", "-F", "qcow2", str(disk), prepared["path"]],
            capture_output=True,
        )
        assert compare.returncode == 0, compare.stdout

        # Unfinished SPM tasks would block spmStop; none are left.
        cli.StoragePool.spmStop(storagepoolID=sp)
        assert cli.StoragePool.getSpmStatus(storagepoolID=sp)["spmStatus"] == "Free"
        cli.StoragePool.disconnect(storagepoolID=sp, hostID=1, scsiKey=sp)
        assert cli.Host.getConnectedStoragePools() == []


def qemu_img_writing(path_part: str) -> int | None:
    """The pid of a qemu-img process whose command line mentions ``path_part``."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"qemu-img") and any(path_part.encode() in a for a in argv):
            return int(entry.name)
    return None


def test_kill9_during_image_copy_is_rolled_back(
    services: daemon_fixtures.Services, local_dir: Path
) -> None:
    """kill -9 while Image.move copies: the next SPM start removes the partial copy."""
    sp = str(uuid.uuid4())
    img, vol = str(uuid.uuid4()), str(uuid.uuid4())
    with services.client() as cli:
        source = create_domain(cli, local_dir, "source")
        target = create_domain(cli, local_dir, "target")
        create_and_connect_pool(cli, sp, source, target)
        become_spm(cli, sp)
        cli.StorageDomain.activate(storagedomainID=target, storagepoolID=sp)
        assert create_volume(cli, sp, source, img, vol, size=COPY_SIZE)["code"] == 0
        data = local_dir / source / "images" / img / vol
        chunk = os.urandom(MiB)  # data, not zeros: qemu-img must really copy it
        with data.open("r+b") as f:
            for _ in range(COPY_SIZE // MiB):
                f.write(chunk)
        task = cli.Image.move(
            imageID=img,
            storagepoolID=sp,
            storagedomainID=source,
            dstSdUUID=target,
            operation=1,
            postZero="false",
            force="false",
        )
    copier = wait_for(lambda: qemu_img_writing(target), 60, "the copying qemu-img", 0.005)
    os.kill(copier, signal.SIGSTOP)  # the copy is now surely in the middle
    try:
        services.stop_daemon(signal.SIGKILL)
    finally:
        os.kill(copier, signal.SIGKILL)
    assert (local_dir / target / "images" / img).exists()  # the partial copy is there
    task_dir = local_dir / source / "master" / "tasks" / task
    assert task_dir.is_dir()

    services.start_daemon()
    with services.client() as cli:
        with pytest.raises(client_errors.ServerError) as unknown:
            cli.Task.getStatus(taskID=task)
        assert unknown.value.code == 401  # nothing known before this host is SPM again
        cli.StoragePool.connect(
            storagepoolID=sp, hostID=1, scsiKey=sp, masterSdUUID=source, masterVersion=1
        )
        become_spm(cli, sp)
        status = wait_task(cli, task)
        assert status["taskResult"] == "cleanSuccess", status
        assert not (local_dir / target / "images" / img).exists()
        assert data.exists()  # the source is untouched
        cli.Task.clear(taskID=task)
        assert not task_dir.exists()
        cli.StoragePool.spmStop(storagepoolID=sp)
        cli.StoragePool.disconnect(storagepoolID=sp, hostID=1, scsiKey=sp)
    assert qemu_img_writing(target) is None
