"""A VM booting from a thin volume over a template in a GlusterFS domain, all through the API.

The whole path an engine drives, on real components: glusterd and a FUSE mount (made by the
supervisor), sanlock (host id, SPM lease, volume leases), qemu-img, libvirt and QEMU with the
tiny guest. The template is filled from a disk image file (SDM.copy_data from ``file://``),
marked SHARED (SDM.update_volume), a thin COW volume is created over it in another image, the
VM starts on it, sees the template's data, is snapshotted onto a new leaf, and is destroyed;
every task and job finishes.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import libvirt
import pytest

from fixtures import daemon as daemon_fixtures
from fixtures import gluster
from fixtures.sanlock import SanlockDaemon, local_daemon_for_session
from guest import image
from virthost.client import Client
from virthost.common.pki import PkiPaths

from .vmhelpers import guest_exec, simple_params, stats, status, wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for qemu:///system and mounts"),
    pytest.mark.skipif(not gluster.available(), reason="glusterd is not installed"),
]

BLANK = "00000000-0000-0000-0000-000000000000"
MiB = 1024 * 1024
GLUSTERFS = 7
MARK = b"TEMPLATE-ON-GLUSTER"


@pytest.fixture(scope="module")
def sanlock_daemon() -> Iterator[SanlockDaemon]:
    yield from local_daemon_for_session()


@pytest.fixture(scope="module")
def remote() -> Iterator[str]:
    # The volume root belongs to the daemon's user and the sanlock group, so that sanlock can
    # open the domain's ids and leases (what an administrator sets with storage.owner-gid).
    with gluster.gluster_volume(group="sanlock") as path:
        yield path


@pytest.fixture(scope="module")
def services(
    pki: PkiPaths, sanlock_daemon: SanlockDaemon, remote: str
) -> Iterator[daemon_fixtures.Services]:
    running = daemon_fixtures.start_services(
        pki,
        overrides={
            "virt": {"domain_type": "qemu", "vm_sample_interval": 1.0, "qga_polling_period": 1.0},
            "storage": {"sanlock_io_timeout": 1, "domain_check_interval": 1.0},
        },
    )
    running.workdir.chmod(0o755)  # QEMU's user walks down to the mount
    yield running
    daemon_fixtures.cleanup(running)


def wait_task(cli: Client, task: str) -> None:
    done = wait_for(
        lambda: (s := cli.Task.getStatus(taskID=task))["taskState"] == "finished" and s,
        120,
        f"task {task}",
    )
    assert done["taskResult"] == "success", done
    cli.Task.clear(taskID=task)


def run_job(cli: Client, verb: str, **params: Any) -> None:
    job_id = str(uuid.uuid4())
    getattr(cli.SDM, verb)(job_id=job_id, **params)
    job = wait_for(
        lambda: (
            (j := cli.Host.getJobs(job_ids=[job_id])[job_id])["status"]
            in ("done", "failed", "aborted")
            and j
        ),
        120,
        f"job {job_id}",
    )
    assert job["status"] == "done", job


def new_volume(cli: Client, sp: str, sd: str, img: str, **kwargs: Any) -> str:
    vol = str(uuid.uuid4())
    args: dict[str, Any] = {
        "volumeID": vol,
        "storagepoolID": sp,
        "storagedomainID": sd,
        "imageID": img,
        "size": 64 * MiB,
        "volFormat": "RAW",
        "preallocate": "SPARSE",
        "diskType": "DATA",
        "desc": "",
        "srcImgUUID": BLANK,
        "srcVolUUID": BLANK,
    }
    args.update(kwargs)
    wait_task(cli, cli.Volume.create(**args))
    return vol


def test_vm_boots_from_a_thin_volume_over_a_template_on_gluster(
    services: daemon_fixtures.Services, remote: str
) -> None:
    guest = image.ensure_guest()
    logs = Path(tempfile.mkdtemp(prefix="virthost-gluster-vm-", dir="/tmp"))
    logs.chmod(0o777)
    disk = logs / "template.raw"
    disk.write_bytes(MARK + bytes(4 * MiB - len(MARK)))
    disk.chmod(0o644)
    sp, sd, conn_id, vm_id = (str(uuid.uuid4()) for _ in range(4))
    connection = [{"id": conn_id, "connection": remote, "vfs_type": "glusterfs"}]
    with services.client() as cli:
        answer = cli.StoragePool.connectStorageServer(
            storagepoolID=BLANK, domainType=GLUSTERFS, connectionParams=connection
        )
        assert answer[0]["status"] == 0, answer
        try:
            cli.StorageDomain.create(
                storagedomainID=sd,
                domainType=GLUSTERFS,
                typeArgs=remote,
                name="gluster",
                domainClass=1,
                version=5,
            )
            cli.StoragePool.create(
                storagepoolID=sp,
                name="gluster-dc",
                masterSdUUID=sd,
                masterVersion=1,
                domainList=[sd],
                lockRenewalIntervalSec=5,
                leaseTimeSec=60,
                ioOpTimeoutSec=10,
                leaseRetries=3,
            )
            cli.StoragePool.connect(
                storagepoolID=sp, hostID=1, scsiKey=sp, masterSdUUID=sd, masterVersion=1
            )
            wait_task(
                cli,
                cli.StoragePool.spmStart(
                    storagepoolID=sp, prevID=-1, prevLver=-1, enableScsiFencing="false"
                ),
            )
            template_img, img = str(uuid.uuid4()), str(uuid.uuid4())
            template = new_volume(cli, sp, sd, template_img)
            run_job(
                cli,
                "copy_data",
                source={"endpoint_type": "external", "url": f"file://{disk}"},
                destination={
                    "endpoint_type": "div",
                    "sd_id": sd,
                    "img_id": template_img,
                    "vol_id": template,
                },
            )
            run_job(
                cli,
                "update_volume",
                vol_info={"sd_id": sd, "img_id": template_img, "vol_id": template},
                vol_attr={"type": "SHARED"},
            )
            leaf = new_volume(
                cli, sp, sd, img, volFormat="COW", srcImgUUID=template_img, srcVolUUID=template
            )
            drive = {"poolID": sp, "domainID": sd, "imageID": img, "volumeID": leaf}

            cli.VM.create(vmID=vm_id, vmParams=simple_params(vm_id, guest, logs, drives=[drive]))
            wait_for(lambda: status(cli, vm_id) == "Up", 180, "Up")
            wait_for(lambda: stats(cli, vm_id).get("guestAgentConnected"), 180, "guest agent")
            conn = libvirt.open("qemu:///system")
            try:
                dom = conn.lookupByUUIDString(vm_id)
                code, out = guest_exec(dom, "/bin/sh", "-c", f"head -c {len(MARK)} /dev/vda")
            finally:
                conn.close()
            assert (code, out) == (0, MARK.decode())

            top = new_volume(cli, sp, sd, img, volFormat="COW", srcImgUUID=img, srcVolUUID=leaf)
            cli.VM.snapshot(
                vmID=vm_id,
                snapDrives=[
                    {"domainID": sd, "imageID": img, "volumeID": top, "baseVolumeID": leaf}
                ],
            )
            assert (
                f"<ovirt-vm:volumeID>{top}</ovirt-vm:volumeID>"
                in cli.Host.dumpxmls(vmList=[vm_id])["domxmls"][vm_id]
            )
            chain = cli.Image.prepare(
                storagepoolID=sp, storagedomainID=sd, imageID=img, volumeID=top
            )["imgVolumesInfo"]
            assert [v["volumeID"] for v in chain] == [template, leaf, top]
            cli.VM.destroy(vmID=vm_id)
            assert cli.Host.getAllTasksStatuses() == {}  # every task finished and cleared
            cli.StoragePool.spmStop(storagepoolID=sp)
            cli.StoragePool.disconnect(storagepoolID=sp, hostID=1, scsiKey=sp)
        finally:
            with contextlib.suppress(Exception):
                cli.VM.destroy(vmID=vm_id)  # a failed check must not leave the VM running
            cli.StoragePool.disconnectStorageServer(
                storagepoolID=BLANK, domainType=GLUSTERFS, connectionParams=connection
            )
