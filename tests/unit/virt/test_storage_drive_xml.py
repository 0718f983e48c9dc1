"""Disks naming storage volumes: found in metadata, pool paths and simple params; rewritten
to the prepared file with the chain recorded in the ``ovirt-vm`` metadata."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from virthost.common import errors
from virthost.virt.domxml import build_from_params, parse_domain
from virthost.virt.domxml.volumes import (
    ChainNode,
    PreparedVolume,
    VolumeDisk,
    VolumeRef,
    apply_prepared,
    chain_volumes,
    disk_of_image,
    drop_chain_volumes,
    ref_of_repository_path,
    set_drive_volume,
    volume_disks,
)

VECTORS = Path(__file__).resolve().parents[3].parent / "shared" / "vectors" / "vdsm-domain-xml"
REPO = "/rhev/data-center"
SP, SD, IMG, BASE, LEAF = (str(uuid.UUID(int=n)) for n in (0x51, 0x5D, 0x16, 0xBA, 0x1E))


def params(**drive: str) -> dict[str, object]:
    vm_id = str(uuid.uuid4())
    return {"vmId": vm_id, "vmName": "t", "kernel": "/boot/k", "drives": [drive]}


def prepared(volume: str = LEAF, fmt: str = "qcow2") -> PreparedVolume:
    ref = VolumeRef(SP, SD, IMG, volume)
    chain = tuple(
        ChainNode(SD, IMG, vol, f"/mnt/sd/images/{IMG}/{vol}", f"/mnt/{vol}.lease", 0)
        for vol in (BASE, LEAF)[: 2 if volume == LEAF else 1]
    )
    return PreparedVolume(ref, f"/mnt/sd/images/{IMG}/{volume}", fmt, "file", chain)


def test_simple_params_drive_by_ids_becomes_disk_metadata_without_a_source() -> None:
    domain = build_from_params(params(poolID=SP, domainID=SD, imageID=IMG, volumeID=LEAF))
    assert domain.devices.disk("vda") is not None
    assert domain.devices.disk("vda").path is None  # type: ignore[union-attr]
    assert volume_disks(domain, REPO) == [VolumeDisk("vda", VolumeRef(SP, SD, IMG, LEAF))]
    reparsed = parse_domain(domain.to_xml())
    assert [d.ref.volume for d in volume_disks(reparsed, REPO)] == [LEAF]


def test_simple_params_refuse_a_path_with_ids_and_missing_ids() -> None:
    with pytest.raises(errors.InvalidParameter):
        build_from_params(params(poolID=SP, domainID=SD, imageID=IMG, volumeID=LEAF, path="/x/y"))
    with pytest.raises(errors.MissingParameter):
        build_from_params(params(domainID=SD, imageID=IMG, volumeID=LEAF))
    with pytest.raises(errors.InvalidParameter):
        build_from_params(params(poolID=SP, domainID="../..", imageID=IMG, volumeID=LEAF))


def test_repository_paths_name_volumes_but_mount_paths_and_others_do_not() -> None:
    assert ref_of_repository_path(f"{REPO}/{SP}/{SD}/images/{IMG}/{LEAF}", REPO) == VolumeRef(
        SP, SD, IMG, LEAF
    )
    assert ref_of_repository_path(f"{REPO}/mnt/server:_x/{SD}/images/{IMG}/{LEAF}", REPO) is None
    assert ref_of_repository_path(f"{REPO}/{SP}/{SD}/images/{IMG}/../{LEAF}", REPO) is None
    assert ref_of_repository_path(f"/var/lib/{SP}/{SD}/images/{IMG}/{LEAF}", REPO) is None
    assert ref_of_repository_path(f"{REPO}/{SP}/{SD}/other/{IMG}/{LEAF}", REPO) is None


def test_engine_vector_disk_is_found_by_its_metadata() -> None:
    domain = parse_domain((VECTORS / "domain_disk_file.xml").read_text())
    [disk] = volume_disks(domain, REPO)
    assert disk.target == "sda"
    assert disk.ref == VolumeRef(
        "59c4c3ee-0205-0227-0229-000000000155",
        "a67a8671-05fc-4e42-b147-f7d3a0496cd6",
        "b07a37de-95d6-4682-84cd-c8c9201327e3",
        "b3335e60-6d27-46e0-bed8-50e75cca6786",
    )


def test_apply_prepared_points_the_disk_at_the_file_and_records_the_chain() -> None:
    xml = build_from_params(params(poolID=SP, domainID=SD, imageID=IMG, volumeID=LEAF)).to_xml()
    xml = xml.replace("</disk>", "<backingStore /></disk>", 1)
    domain = parse_domain(xml)
    apply_prepared(domain, "vda", prepared())
    again = parse_domain(domain.to_xml())
    disk = again.devices.disk("vda")
    assert disk is not None
    assert (disk.path, disk.format, disk.type) == (f"/mnt/sd/images/{IMG}/{LEAF}", "qcow2", "file")
    assert again.root.find("devices/disk/backingStore") is None  # libvirt reads the chain
    assert chain_volumes(again.metadata, "vda") == [BASE, LEAF]
    entry = again.metadata.device(devtype="disk", name="vda")
    assert entry is not None and entry.get("poolID") == SP
    node = entry.volume_chain()[0]
    assert node.get("leaseOffset") == 0 and node.get("path") == f"/mnt/sd/images/{IMG}/{BASE}"
    assert disk_of_image(again.metadata, SD, IMG) == ("vda", VolumeRef(SP, SD, IMG, LEAF))
    assert disk_of_image(again.metadata, SD, BASE) is None


def test_engine_metadata_keeps_its_other_values_when_the_volume_changes() -> None:
    domain = parse_domain((VECTORS / "domain_disk_file.xml").read_text())
    [disk] = volume_disks(domain, REPO)
    volume = PreparedVolume(disk.ref, "/mnt/x/v", "raw", "file", ())
    apply_prepared(domain, "sda", volume)
    entry = domain.metadata.device(devtype="disk", name="sda")
    assert entry is not None
    assert entry.child("specParams") is not None
    assert len(entry.volume_chain()) == 1  # an empty prepared chain leaves the recorded one


def test_merge_edits_of_the_metadata() -> None:
    domain = build_from_params(params(poolID=SP, domainID=SD, imageID=IMG, volumeID=LEAF))
    apply_prepared(domain, "vda", prepared())
    set_drive_volume(domain.metadata, "vda", BASE)
    drop_chain_volumes(domain.metadata, "vda", [LEAF])
    again = parse_domain(domain.to_xml())
    assert chain_volumes(again.metadata, "vda") == [BASE]
    assert disk_of_image(again.metadata, SD, IMG) == ("vda", VolumeRef(SP, SD, IMG, BASE))
    with pytest.raises(errors.InvalidParameter):
        set_drive_volume(again.metadata, "vdz", BASE)
