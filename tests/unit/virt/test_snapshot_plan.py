"""VM.snapshot's checks of snapDrives against the VM's disks, and its <domainsnapshot> XML."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET

import pytest

from virthost.common import errors
from virthost.virt.domxml import build_from_params
from virthost.virt.domxml.volumes import PreparedVolume, VolumeRef
from virthost.virt.livemerge import MergeJob
from virthost.virt.snapshot import plan, snapshot_xml

SP, SD, IMG, OTHER = (str(uuid.UUID(int=n)) for n in (1, 2, 3, 4))
LEAF, NEW = (str(uuid.UUID(int=n)) for n in (11, 12))


def domain_with_disks() -> ET.Element:
    params = {
        "vmId": str(uuid.uuid4()),
        "vmName": "t",
        "drives": [
            {"poolID": SP, "domainID": SD, "imageID": IMG, "volumeID": LEAF},
            {"path": "/var/lib/other.img"},
            {"device": "cdrom", "path": ""},
        ],
    }
    return build_from_params(params).root


def test_plan_maps_drives_to_disks_by_image() -> None:
    metadata = build_from_params(
        {
            "vmId": str(uuid.uuid4()),
            "vmName": "t",
            "drives": [{"poolID": SP, "domainID": SD, "imageID": IMG, "volumeID": LEAF}],
        }
    ).metadata
    [disk] = plan(metadata, [{"domainID": SD, "imageID": IMG, "volumeID": NEW}])
    assert disk.target == "vda"
    assert disk.current == VolumeRef(SP, SD, IMG, LEAF)
    assert disk.new == VolumeRef(SP, SD, IMG, NEW)
    item = {"domainID": SD, "imageID": IMG, "volumeID": NEW, "baseVolumeID": NEW}
    with pytest.raises(errors.SnapshotFailed):
        plan(metadata, [item])  # the disk does not use that base
    with pytest.raises(errors.SnapshotFailed):
        plan(metadata, [{"domainID": SD, "imageID": OTHER, "volumeID": NEW}])
    with pytest.raises(errors.SnapshotFailed):
        plan(metadata, [{"domainID": SD, "imageID": IMG, "volumeID": LEAF}])
    with pytest.raises(errors.InvalidParameter):
        plan(metadata, [])
    with pytest.raises(errors.InvalidParameter):
        plan(metadata, [{"domainID": SD, "imageID": IMG, "volumeID": "../x"}])


def test_snapshot_xml_switches_only_the_named_disks() -> None:
    ref = VolumeRef(SP, SD, IMG, NEW)
    volume = PreparedVolume(ref, f"/mnt/images/{IMG}/{NEW}", "qcow2", "file", ())
    root = ET.fromstring(snapshot_xml(domain_with_disks(), {"vda": volume}))
    disks = {d.get("name"): d for d in root.iterfind("disks/disk")}
    assert set(disks) == {"vda", "vdb", "hda"}
    assert disks["vda"].get("snapshot") == "external"
    assert disks["vda"].find("source").get("file") == volume.path  # type: ignore[union-attr]
    assert disks["vda"].find("driver").get("type") == "qcow2"  # type: ignore[union-attr]
    assert disks["vdb"].get("snapshot") == disks["hda"].get("snapshot") == "no"


def test_merge_job_report_is_vdsms_vm_job() -> None:
    base, top = VolumeRef(SP, SD, IMG, LEAF), VolumeRef(SP, SD, IMG, NEW)
    job = MergeJob("j", "vm", "vda", IMG, base, top, 5, cur=3, end=10)
    assert job.report() == {
        "id": "j",
        "jobType": "block",
        "blockJobType": "commit",
        "imgUUID": IMG,
        "bandwidth": 5,
        "cur": "3",
        "end": "10",
        "drive": "vda",
    }
