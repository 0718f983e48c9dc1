"""build_from_params: VDSM-style simple parameters to a domain, checked value by value."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

import pytest

from virthost.common import errors
from virthost.virt.domxml import build_from_params, parse_domain, prepare_for_host

VM_ID = "3f2e1d0c-9b8a-4776-8554-433221100fed"
MINIMAL: dict[str, Any] = {"vmId": VM_ID, "vmName": "tiny"}
FULL: dict[str, Any] = {
    "vmId": VM_ID.upper(),
    "vmName": "tiny-full_1.0",
    "memSize": "192",
    "smp": 2,
    "drives": [
        {"path": "/var/lib/virthost/images/root.qcow2", "format": "qcow2"},
        {"path": "/dev/mapper/data-lv", "iface": "sata", "readonly": "true"},
        {"device": "cdrom"},
        {"path": "/var/lib/virthost/iso/tools.iso", "device": "cdrom"},
    ],
    "nics": [
        {"type": "user"},
        {"bridge": "br0", "macAddr": "00:1A:4A:16:01:57", "nicModel": "e1000"},
        {"network": "default", "nicModel": "rtl8139"},
    ],
    "display": "vnc",
    "kernel": "/var/cache/virthost-test-guest/vmlinuz",
    "initrd": "/var/cache/virthost-test-guest/initrd.img",
    "kernelArgs": "console=ttyS0 quiet",
    "machine": "pc-i440fx-7.2",
    "custom": {"purpose": "golden"},
    "launchPaused": "true",
    "emulator": "/usr/bin/qemu-system-x86_64",
    "consoleLog": "/var/log/virthost/tiny-full.log",
    "balloon": "virtio",
}


def build_root(**changes: Any) -> ET.Element:
    return ET.fromstring(build_from_params({**MINIMAL, **changes}).to_xml())


@pytest.mark.parametrize(("name", "params"), [("minimal", MINIMAL), ("full", FULL)])
def test_golden(name: str, params: dict[str, Any], golden: Callable[[str, str], None]) -> None:
    golden(f"simple_{name}.xml", build_from_params(params).to_xml())


@pytest.mark.parametrize("params", [MINIMAL, FULL], ids=["minimal", "full"])
@pytest.mark.parametrize("domain_type", ["qemu", "kvm"])
def test_libvirt_accepts_the_result(
    params: dict[str, Any], domain_type: str, define: Callable[[str], Any]
) -> None:
    prepared = prepare_for_host(build_from_params(params), domain_type=domain_type)
    dom = define(prepared.to_xml())
    back = parse_domain(dom.XMLDesc(0))
    assert back.uuid == VM_ID and back.name == prepared.name
    assert back.memory_kib == prepared.memory_kib
    assert [d.target_dev for d in back.devices.disks] == [
        d.target_dev for d in prepared.devices.disks
    ]
    assert [i.mac for i in back.devices.interfaces] == [i.mac for i in prepared.devices.interfaces]
    assert back.metadata == prepared.metadata


def test_defaults() -> None:
    dom = build_from_params(MINIMAL)
    assert dom.uuid == VM_ID and dom.name == "tiny" and dom.domain_type == "kvm"
    assert dom.memory_kib == 256 * 1024 and dom.current_memory_kib == 256 * 1024
    assert dom.vcpus == 1
    assert dom.os.machine == "pc" and dom.os.kernel is None
    devices = dom.devices
    assert devices.emulator == "/usr/bin/qemu-system-x86_64"
    assert devices.disks == () and devices.interfaces == () and devices.graphics == ()
    assert devices.balloon is not None
    assert (devices.balloon.model, devices.balloon.stats_period) == ("virtio", 5)
    assert [(s.kind, s.type) for s in (*devices.serials, *devices.consoles)] == [
        ("serial", "pty"),
        ("console", "pty"),
    ]
    assert dom.metadata.launch_paused is False and dom.metadata.custom == {}


def test_null_optional_parameters_mean_defaults() -> None:
    nulls = dict.fromkeys(
        [
            "memSize",
            "smp",
            "machine",
            "emulator",
            "drives",
            "nics",
            "display",
            "balloon",
            "launchPaused",
            "custom",
            "kernel",
            "initrd",
            "kernelArgs",
            "consoleLog",
        ]
    )
    assert build_from_params({**MINIMAL, **nulls}).to_xml() == build_from_params(MINIMAL).to_xml()
    drive = {"path": "/img/a", "device": None, "iface": None, "format": None, "readonly": None}
    disk = build_from_params({**MINIMAL, "drives": [drive]}).devices.disks[0]
    assert (disk.device, disk.target_bus, disk.format, disk.readonly) == (
        "disk",
        "virtio",
        "raw",
        False,
    )


def test_full_parameters() -> None:
    dom = build_from_params(FULL)
    assert dom.uuid == VM_ID  # canonical lowercase
    assert dom.memory_kib == 192 * 1024 and dom.vcpus == 2
    assert (dom.os.kernel, dom.os.initrd, dom.os.cmdline, dom.os.machine) == (
        "/var/cache/virthost-test-guest/vmlinuz",
        "/var/cache/virthost-test-guest/initrd.img",
        "console=ttyS0 quiet",
        "pc-i440fx-7.2",
    )
    disks = dom.devices.disks
    assert [
        (d.device, d.type, d.target_dev, d.target_bus, d.format, d.readonly) for d in disks
    ] == [
        ("disk", "file", "vda", "virtio", "qcow2", False),
        ("disk", "block", "sda", "sata", "raw", True),
        ("cdrom", "file", "hda", "ide", "raw", True),
        ("cdrom", "file", "hdb", "ide", "raw", True),
    ]
    assert [d.path for d in disks] == [
        "/var/lib/virthost/images/root.qcow2",
        "/dev/mapper/data-lv",
        None,
        "/var/lib/virthost/iso/tools.iso",
    ]
    nics = dom.devices.interfaces
    assert [(n.type, n.source_bridge, n.source_network, n.model) for n in nics] == [
        ("user", None, None, "virtio"),
        ("bridge", "br0", None, "e1000"),
        ("network", None, "default", "rtl8139"),
    ]
    assert nics[1].mac == "00:1a:4a:16:01:57"
    assert [g.type for g in dom.devices.graphics] == ["vnc"]
    for char in (*dom.devices.serials, *dom.devices.consoles):
        assert (char.type, char.source_path, char.append) == (
            "file",
            "/var/log/virthost/tiny-full.log",
            True,
        )
    assert dom.metadata.launch_paused is True
    assert dom.metadata.custom == {"purpose": "golden"}


def test_generated_macs_are_local_unicast_distinct_and_stable() -> None:
    nics = [{"type": "user"}, {"bridge": "br0"}, {"network": "default"}]
    macs = [i.mac for i in build_from_params({**MINIMAL, "nics": nics}).devices.interfaces]
    assert len(set(macs)) == 3
    for mac in macs:
        assert mac is not None and mac.startswith("56:6f:")
        first = int(mac[:2], 16)
        assert first & 0x02 and not first & 0x01  # locally administered, unicast
    again = [i.mac for i in build_from_params({**MINIMAL, "nics": nics}).devices.interfaces]
    assert again == macs
    other_vm = {**MINIMAL, "vmId": "0d7c1e6a-0000-4000-8000-000000000001", "nics": nics}
    assert [i.mac for i in build_from_params(other_vm).devices.interfaces] != macs


def test_many_virtio_disks_get_linux_style_names() -> None:
    drives = [{"path": f"/img/d{i}"} for i in range(28)]
    targets = [d.target_dev for d in build_from_params({**MINIMAL, "drives": drives}).devices.disks]
    assert targets[:2] == ["vda", "vdb"] and targets[25:] == ["vdz", "vdaa", "vdab"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), (False, False), ("true", True), ("FALSE", False), ("True", True)],
)
def test_launch_paused_forms(value: Any, expected: bool) -> None:
    assert build_from_params({**MINIMAL, "launchPaused": value}).metadata.launch_paused is expected


def test_balloon_can_be_disabled_and_display_chosen() -> None:
    root = build_root(balloon="none", display="spice")
    balloon = root.find("devices/memballoon")
    assert balloon is not None and balloon.get("model") == "none" and balloon.find("stats") is None
    assert root.find("devices/graphics").get("type") == "spice"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "missing",
    [
        ({"vmName": "x"}, "vmId"),
        ({"vmId": VM_ID}, "vmName"),
        ({**MINIMAL, "drives": [{"format": "raw"}]}, "drives[0].path"),
        ({**MINIMAL, "drives": [{"path": None}]}, "drives[0].path"),
    ],
)
def test_missing_parameters_are_named(missing: tuple[dict[str, Any], str]) -> None:
    params, name = missing
    with pytest.raises(errors.MissingParameter) as caught:
        build_from_params(params)
    assert caught.value.code == 11
    assert caught.value.context.get("param") == name


@pytest.mark.parametrize(
    ("changes", "param"),
    [
        ({"vmId": "not-a-uuid"}, "vmId"),
        ({"vmName": ""}, "vmName"),
        ({"vmName": "-rf"}, "vmName"),
        ({"vmName": "a b"}, "vmName"),
        ({"memSize": 0}, "memSize"),
        ({"memSize": "12.5"}, "memSize"),
        ({"memSize": 1.5}, "memSize"),
        ({"memSize": True}, "memSize"),
        ({"memSize": 10**12}, "memSize"),
        ({"smp": 0}, "smp"),
        ({"smp": 256}, "smp"),
        ({"smp": "two"}, "smp"),
        ({"machine": "pc q35"}, "machine"),
        ({"emulator": "qemu-system-x86_64"}, "emulator"),
        ({"drives": "/img/a"}, "drives"),
        ({"drives": ["/img/a"]}, "drives[0]"),
        ({"drives": [{"path": "img/a"}]}, "drives[0].path"),
        ({"drives": [{"path": "/img/../etc/shadow"}]}, "drives[0].path"),
        ({"drives": [{"path": "/img//a"}]}, "drives[0].path"),
        ({"drives": [{"path": "/img/./a"}]}, "drives[0].path"),
        ({"drives": [{"path": "/img/a/"}]}, "drives[0].path"),
        ({"drives": [{"path": "/img/a\n"}]}, "drives[0].path"),
        ({"drives": [{"path": "/img/a", "format": "vmdk"}]}, "drives[0].format"),
        ({"drives": [{"path": "/img/a", "device": "floppy"}]}, "drives[0].device"),
        ({"drives": [{"path": "/img/a", "iface": "scsi"}]}, "drives[0].iface"),
        ({"drives": [{"path": "/img/a", "readonly": "yes"}]}, "drives[0].readonly"),
        ({"drives": [{"device": "cdrom", "iface": "virtio"}]}, "drives[0]"),
        ({"drives": [{"device": "cdrom"}] * 5}, "drives[4]"),
        ({"nics": [{}]}, "nics[0]"),
        ({"nics": [{"bridge": "br0", "network": "default"}]}, "nics[0]"),
        ({"nics": [{"type": "direct"}]}, "nics[0]"),
        ({"nics": [{"bridge": "br0", "type": "network"}]}, "nics[0]"),
        ({"nics": [{"bridge": "br 0"}]}, "nics[0].bridge"),
        ({"nics": [{"type": "user", "macAddr": "00:1a:4a:16:01"}]}, "nics[0].macAddr"),
        ({"nics": [{"type": "user", "macAddr": "01:00:5e:00:00:01"}]}, "nics[0].macAddr"),
        ({"nics": [{"type": "user", "nicModel": "ne2k"}]}, "nics[0].nicModel"),
        ({"display": "sdl"}, "display"),
        ({"kernelArgs": "quiet"}, "kernelArgs"),
        ({"initrd": "/boot/initrd"}, "initrd"),
        ({"kernel": "vmlinuz"}, "kernel"),
        ({"kernel": "/boot/vmlinuz", "kernelArgs": "a\x00b"}, "kernelArgs"),
        ({"custom": ["a"]}, "custom"),
        ({"custom": {"k": 1}}, "custom.k"),
        ({"custom": {"9lives": "v"}}, "custom.9lives"),
        ({"launchPaused": "maybe"}, "launchPaused"),
        ({"consoleLog": "console.log"}, "consoleLog"),
        ({"balloon": "xen"}, "balloon"),
    ],
)
def test_invalid_parameters_are_named(changes: dict[str, Any], param: str) -> None:
    with pytest.raises(errors.InvalidParameter) as caught:
        build_from_params({**MINIMAL, **changes})
    assert caught.value.code == 91
    assert caught.value.context.get("param") == param


def test_params_must_be_a_mapping() -> None:
    with pytest.raises(errors.InvalidParameter):
        build_from_params(["vmId"])  # type: ignore[arg-type]
