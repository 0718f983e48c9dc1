"""VMs on storage volumes of a real file domain, with the tiny guest under TCG (one boot).

The VM service runs in this process over qemu:///system with a real ImageStore (real files,
qemu-img, out-of-process I/O, sanlock volume leases) on a LOCALFS-like directory; the pool
check is a stand-in that accepts the one pool id used. The guest boots from a qcow2 leaf over a
template base, then: a live snapshot (chain grows, the guest's writes land in the new leaf), a
live merge back (chain shrinks, the data is in the old leaf), hibernation to volumes and a
restore from them (the guest's uptime continues). An ILLEGAL volume refuses a start without
any boot, and every prepared volume is torn down once the VM is gone.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import libvirt
import pytest

from fixtures.sanlock import SanlockDaemon, local_daemon_for_session, make_workdir
from guest import image
from virthost.common.commands import CommandRunner
from virthost.common.executor import Executor
from virthost.common.resources import ResourceManager
from virthost.common.scheduler import Scheduler
from virthost.rpc.events import EventBus
from virthost.storage.connections import LOCALFS
from virthost.storage.filedomain import CreateRequest, FileDomains
from virthost.storage.images import ImageStore, SanlockVolumeLeases
from virthost.storage.oop import ProcessPools
from virthost.virt import eventloop
from virthost.virt.connection import LibvirtConnection
from virthost.virt.domxml import parse_domain
from virthost.virt.domxml.volumes import VolumeRef
from virthost.virt.service import VirtService, VirtSettings
from virthost.virt.storagedrives import StorageDrives

from .vmhelpers import guest_exec, simple_params, wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for qemu:///system and sanlock"),
]

MiB = 1024 * 1024
SP = str(uuid.uuid4())
MARK_OFFSET = 8 * MiB  # where the guest writes after the snapshot


@pytest.fixture(scope="module")
def sanlock_daemon() -> Iterator[SanlockDaemon]:
    yield from local_daemon_for_session()


class AnyDomainOf:
    """The pool check: the one pool of this test holds every domain."""

    def member(self, sp_uuid: Any, *sd_uuids: Any) -> object:
        assert sp_uuid == SP, sp_uuid
        return object()


class RecordingDrives(StorageDrives):
    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.torn_down: list[str] = []

    def teardown(self, ref: VolumeRef) -> None:
        self.torn_down.append(ref.volume)
        super().teardown(ref)


class GatedJobs:
    """Runs merge jobs in a thread once the test opens the gate (so it can look at them
    while they wait)."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.errors: list[BaseException] = []

    def __call__(self, job_id: str, description: str, work: Callable[[], None]) -> None:
        def run() -> None:
            self.gate.wait(60)
            try:
                work()
            except BaseException as e:
                self.errors.append(e)

        threading.Thread(target=run, name=f"job-{job_id[:8]}", daemon=True).start()


@dataclass
class Lab:
    root: Path
    store: ImageStore
    drives: RecordingDrives
    jobs: GatedJobs
    svc: VirtService
    conn: Any
    sd: str

    def image_dir(self, img: str) -> Path:
        return self.root / "mnt" / "storage" / self.sd / "images" / img

    def new_volume(self, img: str, size: int | None, fmt: str, parent: tuple[str, str] | None,
                   disk_type: str = "DATA") -> str:  # fmt: skip
        vol = str(uuid.uuid4())
        src_img, src_vol = parent if parent else (None, None)
        prealloc = "SPARSE"
        self.store.create_volume(
            self.sd, img, vol, size, fmt, prealloc, disk_type, "", src_img, src_vol
        )
        open_for_qemu(self.image_dir(img), self.root)
        return vol

    def record(self, img: str, vol: str) -> dict[str, str]:
        return {"poolID": SP, "domainID": self.sd, "imageID": img, "volumeID": vol}


def open_for_qemu(directory: Path, root: Path) -> None:
    """Let QEMU's user reach the volumes (a host's storage directories are kvm-readable)."""
    path = directory
    while True:
        path.chmod(path.stat().st_mode | 0o001)
        if path == root:
            return
        path = path.parent


@pytest.fixture(scope="module")
def lab(sanlock_daemon: SanlockDaemon) -> Iterator[Lab]:
    image.ensure_guest()
    root = make_workdir("virthost-vmvol-")
    mount = root / "mnt" / "storage"
    mount.mkdir(parents=True)
    for directory in (root / "mnt", mount):
        shutil.chown(directory, group="sanlock")
        directory.chmod(0o2771)
    pools = ProcessPools(reap_interval=0)
    domains = FileDomains(root / "mnt", lambda kind, remote: mount, pools)
    store = ImageStore(domains, CommandRunner(), ResourceManager(), 30.0, SanlockVolumeLeases())
    sd = str(uuid.uuid4())
    domains.create(CreateRequest.from_wire(sd, LOCALFS, str(mount), "vm volumes", 1, 5))

    libvirt.registerErrorHandler(lambda *_: None, None)
    eventloop.start()
    scheduler = Scheduler("vmvol-scheduler")
    scheduler.start()
    executors = [Executor(n, 2, 50, scheduler, 8) for n in ("create", "work", "blocking")]
    for e in executors:
        e.start()
    libvirt_conn = LibvirtConnection("qemu:///system", executors[2], timeout=60)
    drives = RecordingDrives(store, AnyDomainOf(), "/rhev/data-center")
    jobs = GatedJobs()
    svc = VirtService(
        libvirt_conn,
        EventBus(),
        scheduler,
        executors[0],
        executors[1],
        VirtSettings(domain_type="qemu", guest_wait_timeout=120),
        drives=drives,
        run_job=jobs,
    )
    assert libvirt_conn.ensure_connected()
    conn = libvirt.open("qemu:///system")
    try:
        yield Lab(root, store, drives, jobs, svc, conn, sd)
    finally:
        for vm in svc.vms.all():
            try:
                dom = conn.lookupByUUIDString(vm.id)
                if dom.isActive():
                    dom.destroy()
                dom.undefine()
            except libvirt.libvirtError:
                pass
        conn.close()
        libvirt_conn.close()
        for e in executors:
            e.stop()
        scheduler.stop()
        pools.close()
        shutil.rmtree(root, ignore_errors=True)


def status(lab: Lab, vm_id: str) -> dict[str, Any]:
    return lab.svc.get_stats(vm_id)[0]


def in_guest(lab: Lab, vm_id: str, script: str) -> str:
    """Run ``script`` in the guest, once its agent answers (after a restore it reconnects
    a moment after the VM is Up)."""
    dom = lab.conn.lookupByUUIDString(vm_id)
    deadline = time.monotonic() + 120
    while True:
        try:
            code, out = guest_exec(dom, "/bin/sh", "-c", script, timeout=60)
            break
        except libvirt.libvirtError as e:
            if "not connected" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    assert code == 0, out
    return out


def uptime(lab: Lab, vm_id: str) -> float:
    return float(in_guest(lab, vm_id, "cat /proc/uptime").split()[0])


def layer_has_data_at(path: Path, offset: int) -> bool:
    """Whether the qcow2 file itself (not its backing chain) holds data at ``offset``."""
    out = subprocess.run(
        ["qemu-img", "map", "-U", "--output=json", "-f", "qcow2", str(path)],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return any(
        e["depth"] == 0 and e["data"] and e["start"] <= offset < e["start"] + e["length"]
        for e in json.loads(out)
    )


def disk_source(lab: Lab, vm_id: str) -> str:
    found = parse_domain(lab.svc.get_vm(vm_id).domain_xml).devices.disk("vda")
    assert found is not None and found.path
    return found.path


def test_an_illegal_volume_refuses_the_start(lab: Lab) -> None:
    img = str(uuid.uuid4())
    vol = lab.new_volume(img, 16 * MiB, "COW", None)
    lab.store.set_legality(lab.sd, img, vol, "ILLEGAL")
    vm_id = str(uuid.uuid4())
    guest = image.ensure_guest()
    params = simple_params(vm_id, guest, lab.root, drives=[lab.record(img, vol)])
    lab.svc.create(vm_id, params)
    down = wait_for(lambda: (s := status(lab, vm_id))["status"] == "Down" and s)
    assert down["exitReason"] == 3  # LIBVIRT_START_FAILED
    assert "ILLEGAL" in down["exitMessage"]
    lab.svc.destroy(vm_id)
    assert vol not in lab.drives.torn_down  # it was never prepared


def test_snapshot_merge_hibernate_restore(lab: Lab) -> None:
    guest = image.ensure_guest()
    template_img, img = str(uuid.uuid4()), str(uuid.uuid4())
    base = lab.new_volume(template_img, 64 * MiB, "RAW", None)
    with open(lab.image_dir(template_img) / base, "r+b") as f:  # data the template carries
        f.write(b"TEMPLATE-DATA")
    lab.store.update_volume(lab.sd, template_img, base, vol_type="SHARED")
    leaf = lab.new_volume(img, None, "COW", (template_img, base))
    vm_id = str(uuid.uuid4())
    params = simple_params(vm_id, guest, lab.root, drives=[lab.record(img, leaf)])

    # boot from the leaf over the template
    lab.svc.create(vm_id, params)
    wait_for(lambda: status(lab, vm_id)["status"] == "Up", 120, "Up")
    wait_for(lambda: status(lab, vm_id).get("guestAgentConnected"), 120, "agent")
    assert in_guest(lab, vm_id, "head -c 13 /dev/vda") == "TEMPLATE-DATA"
    assert disk_source(lab, vm_id) == str(lab.image_dir(img) / leaf)

    # snapshot onto a new leaf the engine created
    top = lab.new_volume(img, None, "COW", (img, leaf))
    answer = lab.svc.snapshot(
        vm_id, [{"domainID": lab.sd, "imageID": img, "volumeID": top, "baseVolumeID": leaf}]
    )
    assert answer == {"quiesce": True}  # frozen through the agent, and thawed
    assert disk_source(lab, vm_id) == str(lab.image_dir(img) / top)
    assert f"<ovirt-vm:volumeID>{top}</ovirt-vm:volumeID>" in lab.svc.dumpxmls([vm_id])[vm_id]
    assert lab.store.chain(lab.sd, img, top) == [base, leaf, top]
    in_guest(lab, vm_id, "echo AFTER-SNAP | dd of=/dev/vda bs=1M seek=8 conv=fsync; sync")
    assert layer_has_data_at(lab.image_dir(img) / top, MARK_OFFSET)
    assert not layer_has_data_at(lab.image_dir(img) / leaf, MARK_OFFSET)

    # merge the snapshot's leaf back into its parent
    job_id = str(uuid.uuid4())
    drive = {"poolID": SP, "domainID": lab.sd, "imageID": img, "volumeID": top}
    lab.svc.merge(vm_id, drive, leaf, top, 0, job_id)
    jobs = status(lab, vm_id)["vmJobs"]
    assert jobs[job_id]["blockJobType"] == "commit" and jobs[job_id]["imgUUID"] == img
    lab.jobs.gate.set()
    wait_for(lambda: status(lab, vm_id)["vmJobs"] == {}, 120, "merge done")
    assert lab.jobs.errors == []
    assert disk_source(lab, vm_id) == str(lab.image_dir(img) / leaf)
    assert layer_has_data_at(lab.image_dir(img) / leaf, MARK_OFFSET)
    assert lab.store.volume_info(lab.sd, img, top)["legality"] == "ILLEGAL"
    lab.store.delete_volume(lab.sd, img, top)  # as the engine does next
    assert lab.store.chain(lab.sd, img, leaf) == [base, leaf]
    assert "AFTER-SNAP" in in_guest(lab, vm_id, "dd if=/dev/vda bs=1M skip=8 count=1")
    xml = lab.svc.dumpxmls([vm_id])[vm_id]
    assert top not in xml and f"<ovirt-vm:volumeID>{leaf}</ovirt-vm:volumeID>" in xml

    # hibernate to memory and configuration volumes, then restore from them
    mem_img, conf_img = str(uuid.uuid4()), str(uuid.uuid4())
    mem = lab.new_volume(mem_img, 512 * MiB, "RAW", None, "MEMD")
    conf = lab.new_volume(conf_img, MiB, "RAW", None, "MEMM")
    before = uptime(lab, vm_id)
    lab.svc.hibernate(vm_id, f"{lab.sd},{SP},{mem_img},{mem},{conf_img},{conf}")
    down = wait_for(lambda: (s := status(lab, vm_id))["status"] == "Down" and s, 120, "saved")
    assert down["exitReason"] == 5
    assert (lab.image_dir(mem_img) / mem).stat().st_blocks > 0
    wait_for(lambda: leaf in lab.drives.torn_down, what="disk torn down when Down")
    lab.svc.destroy(vm_id)
    restore = {
        "memoryDumpVolume": lab.record(mem_img, mem),
        "memoryConfVolume": lab.record(conf_img, conf),
    }
    params = {**params, "drives": [lab.record(img, leaf)], **restore}
    lab.svc.create(vm_id, params)
    wait_for(lambda: status(lab, vm_id)["status"] == "Up", 120, "restored")
    after = uptime(lab, vm_id)
    assert before < after < before + 120  # the same boot went on
    assert mem in lab.drives.torn_down  # the memory volume was only lent for the restore
    torn = len(lab.drives.torn_down)
    lab.svc.destroy(vm_id)
    wait_for(lambda: len(lab.drives.torn_down) > torn, what="teardown after destroy")
    assert lab.drives.torn_down[torn:] == [leaf]
