"""Which volumes a VM holds: prepared all or nothing, torn down once, rebuilt from metadata
after a restart, keyed by the VM object; StorageDrives over a fake store and pool; memory
volume handles."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from virthost.common import errors
from virthost.storage import errors as se
from virthost.virt.domxml import DomainXml, build_from_params
from virthost.virt.domxml.volumes import (
    ChainNode,
    PreparedVolume,
    VolumeDisk,
    VolumeRef,
    volume_disks,
)
from virthost.virt.memvolumes import MemoryVolumes, memory_target, restore_source
from virthost.virt.storagedrives import StorageDrives, VmVolumes
from virthost.virt.vm import Vm

SP, SD, IMG, IMG2 = (str(uuid.UUID(int=n)) for n in (1, 2, 3, 4))
V1, V2, V3 = (str(uuid.UUID(int=n)) for n in (11, 12, 13))


class FakePreparer:
    def __init__(self, fail_on: str | None = None) -> None:
        self.fail_on = fail_on
        self.prepared: list[str] = []
        self.torn_down: list[str] = []
        self.retired: list[str] = []

    def disks(self, domain: DomainXml) -> list[VolumeDisk]:
        return volume_disks(domain, "/rhev/data-center")

    def prepared_elsewhere(self, disk: VolumeDisk) -> bool:
        return False

    def prepare(self, ref: VolumeRef) -> PreparedVolume:
        if ref.volume == self.fail_on:
            raise se.PrepareIllegalVolumeError(f"volume {ref.volume} is ILLEGAL")
        self.prepared.append(ref.volume)
        node = ChainNode(ref.domain, ref.image, ref.volume, f"/s/{ref.volume}", "/l", 0)
        return PreparedVolume(ref, f"/s/{ref.volume}", "qcow2", "file", (node,))

    def teardown(self, ref: VolumeRef) -> None:
        self.torn_down.append(ref.volume)

    def retire(self, ref: VolumeRef) -> None:
        self.retired.append(ref.volume)


def two_disk_domain() -> DomainXml:
    drives = [
        {"poolID": SP, "domainID": SD, "imageID": IMG, "volumeID": V1},
        {"poolID": SP, "domainID": SD, "imageID": IMG2, "volumeID": V2},
    ]
    vm_id = str(uuid.uuid4())
    return build_from_params({"vmId": vm_id, "vmName": "t", "drives": drives})


def test_prepare_disks_rewrites_the_domain_and_holds_the_volumes() -> None:
    preparer = FakePreparer()
    volumes = VmVolumes(preparer)
    domain = two_disk_domain()
    vm = Vm(domain.uuid, "t")
    volumes.prepare_disks(vm, domain)
    assert [d.path for d in domain.devices.disks] == [f"/s/{V1}", f"/s/{V2}"]
    assert [r.volume for r in volumes.held(vm)] == [V1, V2]
    volumes.release(vm)
    volumes.release(vm)
    assert preparer.torn_down == [V2, V1]  # once, last first


def test_a_volume_that_cannot_be_prepared_undoes_the_others() -> None:
    preparer = FakePreparer(fail_on=V2)
    volumes = VmVolumes(preparer)
    domain = two_disk_domain()
    vm = Vm(domain.uuid, "t")
    with pytest.raises(se.PrepareIllegalVolumeError) as failed:
        volumes.prepare_disks(vm, domain)
    assert "disk vdb" in str(failed.value.detail) and "ILLEGAL" in str(failed.value.detail)
    assert preparer.torn_down == [V1]
    volumes.release(vm)
    assert preparer.torn_down == [V1]


def test_a_recovered_vm_finds_its_volumes_in_its_metadata() -> None:
    preparer = FakePreparer()
    volumes = VmVolumes(preparer)
    domain = two_disk_domain()
    first = Vm(domain.uuid, "t")
    volumes.prepare_disks(first, domain)
    recovered = Vm(domain.uuid, "t")  # after a restart: a new object, XML from libvirt
    recovered.domain_xml = domain.to_xml()
    assert [r.volume for r in volumes.held(recovered)] == [V1, V2]
    volumes.release(recovered)
    assert sorted(preparer.torn_down) == [V1, V2]
    assert preparer.prepared == [V1, V2]  # recovery prepared nothing again


def test_release_of_an_old_vm_leaves_a_new_one_with_the_same_id() -> None:
    preparer = FakePreparer()
    volumes = VmVolumes(preparer)
    domain = two_disk_domain()
    old, new = Vm(domain.uuid, "t"), Vm(domain.uuid, "t")
    volumes.prepare_disks(old, domain.copy())
    volumes.prepare_disks(new, domain.copy())
    volumes.release(old)
    assert len(volumes.held(new)) == 2


def test_snapshot_and_merge_bookkeeping() -> None:
    preparer = FakePreparer()
    volumes = VmVolumes(preparer)
    domain = two_disk_domain()
    vm = Vm(domain.uuid, "t")
    volumes.prepare_disks(vm, domain)
    leaf = VolumeRef(SP, SD, IMG, V3)
    volumes.prepare_more(vm, leaf)
    assert leaf in volumes.held(vm)
    volumes.swap(vm, leaf, VolumeRef(SP, SD, IMG, V1))
    assert preparer.torn_down == [V3]
    assert [r.volume for r in volumes.held(vm)] == [V1, V2]


def test_lend_prepares_all_or_nothing() -> None:
    preparer = FakePreparer(fail_on=V2)
    volumes = VmVolumes(preparer)
    vm = Vm(str(uuid.uuid4()), "t")
    refs = [VolumeRef(SP, SD, IMG, V1), VolumeRef(SP, SD, IMG, V2)]
    with pytest.raises(se.PrepareIllegalVolumeError):
        volumes.lend(vm, refs)
    assert preparer.torn_down == [V1]
    assert volumes.held(vm) == []


class FakeStore:
    def __init__(self, fmt: str = "COW") -> None:
        self.fmt = fmt
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def prepare_image(self, sd: Any, img: Any, vol: Any, allow_illegal: bool = False) -> Any:
        self.calls.append(("prepare", (sd, img, vol)))
        info = {"domainID": sd, "imageID": img, "volumeID": vol, "path": f"/m/{vol}"}
        info.update(leasePath=f"/m/{vol}.lease", leaseOffset=0)
        return {"path": f"/m/{vol}", "info": {"type": "file"}, "imgVolumesInfo": [info]}

    def teardown_image(self, sd: Any, img: Any, vol: Any = None) -> None:
        self.calls.append(("teardown", (sd, img, vol)))

    def volume_info(self, sd: Any, img: Any, vol: Any) -> dict[str, Any]:
        return {"format": self.fmt}

    def set_legality(self, sd: Any, img: Any, vol: Any, legality: Any) -> None:
        self.calls.append(("legality", (vol, legality)))


class FakePools:
    def __init__(self, pool: str) -> None:
        self.pool = pool

    def member(self, sp_uuid: Any, *sd_uuids: Any) -> object:
        if sp_uuid != self.pool:
            raise se.StoragePoolUnknown(sp_uuid)
        return object()


def test_storage_drives_checks_the_pool_and_maps_formats() -> None:
    store = FakeStore("RAW")
    drives = StorageDrives(store, FakePools(SP), "/rhev/data-center")
    volume = drives.prepare(VolumeRef(SP, SD, IMG, V1))
    assert (volume.path, volume.format, volume.disk_type) == (f"/m/{V1}", "raw", "file")
    assert [n.volume for n in volume.chain] == [V1]
    with pytest.raises(se.StoragePoolUnknown):
        drives.prepare(VolumeRef(str(uuid.uuid4()), SD, IMG, V1))
    drives.retire(VolumeRef(SP, SD, IMG, V1))
    assert ("legality", (V1, "ILLEGAL")) in store.calls
    with pytest.raises(errors.InvalidParameter):
        StorageDrives(FakeStore("UNKNOWN"), FakePools(SP), "/r").prepare(VolumeRef(SP, SD, IMG, V1))


def test_memory_handles() -> None:
    assert memory_target("/var/tmp/mem.img") == "/var/tmp/mem.img"
    legacy = memory_target(f"{SD},{SP},{IMG},{V1},{IMG2},{V2}")
    assert legacy == MemoryVolumes(VolumeRef(SP, SD, IMG, V1), VolumeRef(SP, SD, IMG2, V2))
    record = {"poolID": SP, "domainID": SD, "imageID": IMG, "volumeID": V1}
    assert memory_target(record) == MemoryVolumes(VolumeRef(SP, SD, IMG, V1))
    both = memory_target({"memoryDumpVolume": record, "memoryConfVolume": record})
    assert isinstance(both, MemoryVolumes) and len(both.refs()) == 2
    with pytest.raises(errors.UnsupportedOperation):
        memory_target("sd,sp,img,vol,img,vol")
    with pytest.raises(errors.InvalidParameter):
        memory_target({**record, "volumeID": "x"})
    assert restore_source({"restoreState": record}) == MemoryVolumes(VolumeRef(SP, SD, IMG, V1))
    assert restore_source({"memoryDumpVolume": record}) == MemoryVolumes(VolumeRef(SP, SD, IMG, V1))
    assert restore_source({}) is None


def test_a_disk_of_another_pool_with_its_own_path_is_used_as_given() -> None:
    drives = StorageDrives(FakeStore(), FakePools(SP), "/rhev/data-center")
    other_pool = str(uuid.uuid4())
    ref = VolumeRef(other_pool, SD, IMG, V1)
    assert drives.prepared_elsewhere(VolumeDisk("vda", ref, "/var/tmp/image.qcow2"))
    assert not drives.prepared_elsewhere(VolumeDisk("vda", ref, None))
    pool_link = f"/rhev/data-center/{other_pool}/{SD}/images/{IMG}/{V1}"
    assert not drives.prepared_elsewhere(VolumeDisk("vda", ref, pool_link))
    connected = VolumeRef(SP, SD, IMG, V1)
    assert not drives.prepared_elsewhere(VolumeDisk("vda", connected, "/var/tmp/image.qcow2"))
