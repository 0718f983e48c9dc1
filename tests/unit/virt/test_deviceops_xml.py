"""The device XML of the device verbs: parsing requests, building devices, finding live ones."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from virthost.common import errors
from virthost.virt import devops_xml as dx

LIVE = """<domain type='qemu'><name>t</name><uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</uuid>
<devices>
  <disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
    <source file='/img/root.qcow2'/><target dev='vda' bus='virtio'/><alias name='virtio-disk0'/>
  </disk>
  <disk type='file' device='disk'><source file='/img/data.raw'/>
    <target dev='vdc' bus='virtio'/><alias name='ua-data'/></disk>
  <disk type='file' device='cdrom'><driver name='qemu' type='raw'/>
    <source file='/iso/old.iso' index='2'/><backingStore/>
    <target dev='hdc' bus='ide'/><readonly/><alias name='ide0-1-0'/>
    <address type='drive' controller='0' bus='1' target='0' unit='0'/></disk>
  <interface type='user'><mac address='52:54:00:AA:BB:01'/><model type='virtio'/>
    <alias name='net0'/></interface>
  <graphics type='vnc' port='5900' autoport='yes' passwdValidTo='1970-01-01T00:00:01'>
    <listen type='address' address='127.0.0.1'/></graphics>
</devices></domain>"""


@pytest.fixture
def live() -> ET.Element:
    return ET.fromstring(LIVE)


# --- requests ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "xml",
    [
        "<hotplug><devices><disk device='disk'><target dev='vdb'/></disk></devices></hotplug>",
        "<hotunplug><devices><disk><target dev='vdb'/></disk></devices></hotunplug>",
        "<disk><target dev='vdb'/></disk>",
    ],
)
def test_device_from_xml_accepts_engine_wrappers_and_bare_devices(xml: str) -> None:
    disk = dx.device_from_xml(xml, "disk")
    assert disk.tag == "disk"
    assert dx.target_dev(disk) == "vdb"


@pytest.mark.parametrize(
    ("xml", "problem"),
    [
        ("<hotplug><devices/></hotplug>", "found 0"),
        ("<hotplug><devices><disk/><disk/></devices></hotplug>", "found 2"),
        ("<interface/>", "root element"),
        ("<hotplug><devices><disk>", "malformed"),
        ("<!DOCTYPE x [<!ENTITY e 'x'>]><disk>&e;</disk>", "DTD"),
    ],
)
def test_device_from_xml_refuses(xml: str, problem: str) -> None:
    with pytest.raises(errors.InvalidParameter) as refused:
        dx.device_from_xml(xml, "disk")
    assert problem in str(refused.value)


def test_device_from_params_needs_xml_or_the_dict() -> None:
    with pytest.raises(errors.MissingParameter):
        dx.device_from_params({"vmId": "x"}, "disk", "drive", plug=True)
    with pytest.raises(errors.InvalidParameter):
        dx.device_from_params({"drive": "vdb"}, "disk", "drive", plug=True)


def test_disk_from_drive_builds_a_file_disk() -> None:
    disk = dx.disk_from_drive(
        {
            "path": "/img/new.qcow2",
            "format": "cow",
            "target": "vdd",
            "serial": "abc",
            "alias": "ua-1",
        }
    )
    assert disk.get("type") == "file"
    assert disk.find("source").get("file") == "/img/new.qcow2"  # type: ignore[union-attr]
    assert disk.find("driver").get("type") == "qcow2"  # type: ignore[union-attr]
    assert disk.find("target").attrib == {"dev": "vdd", "bus": "virtio"}  # type: ignore[union-attr]
    assert disk.findtext("serial") == "abc"
    assert dx.alias_of(disk) == "ua-1"
    assert disk.find("readonly") is None


def test_disk_from_drive_block_device_and_readonly() -> None:
    disk = dx.disk_from_drive({"path": "/dev/sdz", "iface": "scsi", "readonly": "true"})
    assert disk.get("type") == "block"
    assert disk.find("source").get("dev") == "/dev/sdz"  # type: ignore[union-attr]
    assert disk.find("target").get("bus") == "scsi"  # type: ignore[union-attr]
    assert disk.find("readonly") is not None


@pytest.mark.parametrize(
    "drive",
    [
        {},
        {"path": "relative.img"},
        {"path": "/img/../etc/shadow"},
        {"path": "/img/a", "format": "vmdk"},
        {"path": "/img/a", "iface": "floppy-bus"},
        {"path": "/img/a", "target": "vdb'/><x"},
        {"path": "/img/a", "alias": "virtio-disk9"},
        {"path": "/img/a", "serial": "-rf"},
    ],
)
def test_disk_from_drive_refuses_bad_values(drive: dict[str, object]) -> None:
    with pytest.raises((errors.InvalidParameter, errors.MissingParameter)):
        dx.disk_from_drive(drive)


def test_wire_values_cannot_add_markup() -> None:
    path = "/img/a'\"><evil/>"
    disk = dx.disk_from_drive({"path": path})
    parsed = ET.fromstring(dx.tostring(disk))
    assert parsed.find(".//evil") is None
    assert parsed.find("source").get("file") == path  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("nic", "kind", "source"),
    [
        ({"macAddr": "56:6F:00:00:00:01"}, None, None),
        ({"macAddr": "56:6f:00:00:00:01", "type": "user"}, "user", None),
        ({"macAddr": "56:6f:00:00:00:01", "bridge": "br0"}, "bridge", ("bridge", "br0")),
        ({"macAddr": "56:6f:00:00:00:01", "network": "default"}, "network", ("network", "default")),
    ],
)
def test_nic_from_dict(
    nic: dict[str, str], kind: str | None, source: tuple[str, str] | None
) -> None:
    if kind is None:
        with pytest.raises(errors.InvalidParameter):
            dx.nic_from_dict(nic)
        return
    element = dx.nic_from_dict({**nic, "nicModel": "pv", "linkActive": False})
    assert element.get("type") == kind
    assert dx.mac_of(element) == "56:6f:00:00:00:01"
    assert element.find("model").get("type") == "virtio"  # type: ignore[union-attr]
    assert element.find("link").get("state") == "down"  # type: ignore[union-attr]
    found = element.find("source")
    assert (None if found is None else next(iter(found.attrib.items()))) == source


@pytest.mark.parametrize(
    "nic",
    [
        {"type": "user"},
        {"macAddr": "01:00:5e:00:00:01", "type": "user"},
        {"macAddr": "56:6f:00:00:00:01", "bridge": "br0", "network": "n"},
        {"macAddr": "56:6f:00:00:00:01", "bridge": "-x"},
        {"macAddr": "56:6f:00:00:00:01", "type": "user", "nicModel": "ne2k"},
    ],
)
def test_nic_from_dict_refuses(nic: dict[str, str]) -> None:
    with pytest.raises((errors.InvalidParameter, errors.MissingParameter)):
        dx.nic_from_dict(nic)


def test_media_requests() -> None:
    assert dx.media_request("/iso/a.iso") == dx.MediaRequest("/iso/a.iso")
    assert dx.media_request("") == dx.MediaRequest(None)
    assert dx.media_request({"path": ""}) == dx.MediaRequest(None)
    assert dx.media_request({"path": "/iso/b.iso", "iface": "ide", "index": 2}) == (
        dx.MediaRequest("/iso/b.iso", "hdc")
    )
    with pytest.raises(errors.UnsupportedOperation):
        dx.media_request({"domainID": "d", "imageID": "i", "volumeID": "v"})
    with pytest.raises(errors.InvalidParameter):
        dx.media_request("iso/relative.iso")
    with pytest.raises(errors.InvalidParameter):
        dx.media_request(42)
    with pytest.raises(errors.MissingParameter):
        dx.media_request({})  # an empty object does not silently eject


# --- the live domain -------------------------------------------------------------------


def test_assign_target_takes_the_first_free_name(live: ET.Element) -> None:
    disk = dx.disk_from_drive({"path": "/img/x"})
    assert dx.assign_target(disk, live) == "vdb"
    named = dx.disk_from_drive({"path": "/img/x", "target": "vdz"})
    assert dx.assign_target(named, live) == "vdz"
    sata = dx.disk_from_drive({"path": "/img/x", "iface": "sata"})
    assert dx.assign_target(sata, live) == "sda"


def test_drive_letters() -> None:
    names = [dx.drive_letters(i) for i in (0, 1, 25, 26, 27, 701)]
    assert names == ["a", "b", "z", "aa", "ab", "zz"]


def test_find_disk_by_alias_target_or_path(live: ET.Element) -> None:
    by_alias = dx.device_from_xml("<disk><alias name='ua-data'/></disk>", "disk")
    assert dx.target_dev(dx.find_disk(live, by_alias)) == "vdc"  # type: ignore[arg-type]
    by_target = dx.device_from_params({"drive": {"target": "vda"}}, "disk", "drive", plug=False)
    assert dx.alias_of(dx.find_disk(live, by_target)) == "virtio-disk0"  # type: ignore[arg-type]
    by_path = dx.device_from_params(
        {"drive": {"path": "/img/data.raw"}}, "disk", "drive", plug=False
    )
    assert dx.target_dev(dx.find_disk(live, by_path)) == "vdc"  # type: ignore[arg-type]
    missing = dx.device_from_xml("<disk><target dev='vdq'/></disk>", "disk")
    assert dx.find_disk(live, missing) is None
    with pytest.raises(errors.InvalidParameter):
        dx.find_disk(live, ET.Element("disk"))


def test_find_interface_by_mac_any_case_or_alias(live: ET.Element) -> None:
    selector = dx.device_from_params(
        {"nic": {"macAddr": "52:54:00:aa:bb:01"}}, "interface", "nic", plug=False
    )
    assert dx.alias_of(dx.find_interface(live, selector)) == "net0"  # type: ignore[arg-type]
    assert dx.has_device(live, "interface", "52:54:00:aa:bb:01")
    assert not dx.has_device(live, "interface", "52:54:00:aa:bb:02")
    with pytest.raises(errors.InvalidParameter):
        dx.find_interface(live, ET.Element("interface"))


def test_with_medium_replaces_or_removes_the_source(live: ET.Element) -> None:
    cdrom = dx.find_media(live, "cdrom", None)
    assert cdrom is not None and dx.find_media(live, "floppy", None) is None
    assert dx.find_media(live, "cdrom", "hdd") is None
    inserted = dx.with_medium(cdrom, "/iso/new.iso")
    assert [s.attrib for s in inserted.iter("source")] == [{"file": "/iso/new.iso"}]
    assert inserted.find("backingStore") is None
    assert dx.alias_of(inserted) == "ide0-1-0"  # libvirt matches on it
    assert [child.tag for child in inserted][:2] == ["driver", "source"]
    ejected = dx.with_medium(cdrom, None)
    assert ejected.find("source") is None and ejected.find("target") is not None
    assert dx.source_path(cdrom) == "/iso/old.iso"  # the live tree is untouched
    assert dx.with_medium(cdrom, "/dev/sr0").get("type") == "block"


def test_with_ticket(live: ET.Element) -> None:
    vnc = live.find("devices/graphics")
    assert vnc is not None
    ticket = dx.with_ticket(vnc, "s3cret", "2030-01-02T03:04:05", "disconnect")
    assert ticket.get("passwd") == "s3cret"
    assert ticket.get("passwdValidTo") == "2030-01-02T03:04:05"
    assert ticket.get("connected") is None  # VNC only keeps clients
    assert ticket.find("listen") is not None
    forever = dx.with_ticket(vnc, "x", None, "keep")
    assert "passwdValidTo" not in forever.attrib
    spice = ET.fromstring("<graphics type='spice' autoport='yes'/>")
    assert dx.with_ticket(spice, "x", None, "fail").get("connected") == "fail"
    with pytest.raises(errors.InvalidParameter):
        dx.with_ticket(vnc, "bad\x00password", None, "keep")


def test_has_display(live: ET.Element) -> None:
    assert dx.has_display(live)
    headless = "<domain><devices><video><model type='none'/></video></devices></domain>"
    assert not dx.has_display(ET.fromstring(headless))
    assert dx.has_display(ET.fromstring(headless.replace("none", "vga")))
