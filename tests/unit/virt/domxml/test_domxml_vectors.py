"""The engine's own domain XML (shared vectors): parsed, metadata kept exactly, accepted by libvirt.

The vectors are read from ../shared/vectors (see conftest); these tests skip when it is absent.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

from virthost.virt.domxml import (
    GUEST_AGENT_CHANNEL,
    parse_domain,
    prepare_for_host,
    read_metadata,
    write_metadata,
)

OVIRT_VM = "{http://ovirt.org/vm/1.0}vm"
OVIRT_TUNE_QOS = "{http://ovirt.org/vm/tune/1.0}qos"
EMULATOR = "/usr/bin/qemu-system-x86_64"


def canonical(element: ET.Element) -> Any:
    """(tag, attributes, text, children) with indentation whitespace ignored."""
    text = (element.text or "").strip() if len(element) else element.text or ""
    return (element.tag, dict(element.attrib), text, [canonical(c) for c in element])


def test_every_vector_parses(vector: Any) -> None:
    dom = parse_domain(vector.text)
    source = ET.fromstring(vector.text)
    assert dom.uuid == source.findtext("uuid")
    assert dom.name == source.findtext("name")
    assert dom.domain_type == "kvm"
    assert dom.memory_kib == 4194304 and dom.current_memory_kib == 4194304
    assert (dom.vcpus, dom.max_vcpus) == (2, 16)
    assert dom.os.machine is not None and dom.os.machine.startswith("pc-i440fx-rhel7")
    devices = dom.devices
    assert len(devices.disks) == len(source.findall("devices/disk"))
    assert any(d.device == "cdrom" and d.readonly for d in devices.disks)
    assert all(d.target_dev for d in devices.disks)
    assert [i.mac for i in devices.interfaces] == [
        m.get("address") for m in source.findall("devices/interface/mac")
    ]
    assert [g.type for g in devices.graphics] == ["spice"]
    assert devices.balloon is not None and devices.balloon.model == "none"
    assert devices.has_guest_agent_channel


def test_vector_metadata_round_trips_exactly(vector: Any) -> None:
    root = ET.fromstring(vector.text)
    original = root.find(f"metadata/{OVIRT_VM}")
    metadata = read_metadata(root)
    write_metadata(root, metadata)
    rewritten = root.find(f"metadata/{OVIRT_VM}")
    assert rewritten is not None
    if original is None:
        assert len(rewritten) == 0
    else:
        assert canonical(rewritten) == canonical(original)
    assert read_metadata(root) == metadata
    assert root.find(f"metadata/{OVIRT_TUNE_QOS}") is not None  # ovirt-tune left alone


def test_vector_drive_metadata_is_reachable(vector: Any) -> None:
    dom = parse_domain(vector.text)
    for disk in dom.devices.disks:
        if disk.device != "disk" or disk.target_dev is None:
            continue
        device = dom.metadata.device(devtype="disk", name=disk.target_dev)
        if device is None:
            continue  # domain.xml has no ovirt-vm metadata at all
        chain = device.volume_chain()
        assert chain, disk.target_dev
        assert chain[-1].get("volumeID") == device.get("volumeID")
        assert chain[-1].get("path") == disk.path
        assert isinstance(chain[-1].get("leaseOffset"), int)
    for nic in dom.devices.interfaces:
        assert nic.mac is not None
        device = dom.metadata.nic_device(nic.mac)
        assert device is None or device.get("network") == nic.source_bridge


def test_prepared_vector_is_accepted_by_libvirt_and_reparses(
    vector: Any, define: Callable[[str], Any]
) -> None:
    prepared = prepare_for_host(parse_domain(vector.text), domain_type="qemu", emulator=EMULATOR)
    out = prepared.to_xml()

    again = parse_domain(out)
    assert again.to_xml() == out
    assert (again.uuid, again.name, again.domain_type) == (prepared.uuid, prepared.name, "qemu")
    assert again.devices == prepared.devices
    assert again.metadata == prepared.metadata == parse_domain(vector.text).metadata
    root = ET.fromstring(out)
    assert root.findtext("features/tcg/tb-cache") == "16"
    cpu = root.find("cpu")
    assert cpu is None or cpu.get("mode") not in ("host-passthrough", "host-model")
    assert root.find(f"metadata/{OVIRT_VM}") is not None

    dom = define(out)
    assert dom.UUIDString() == prepared.uuid
    described = parse_domain(dom.XMLDesc(0))
    assert described.domain_type == "qemu"
    assert described.metadata == prepared.metadata
    assert [d.target_dev for d in described.devices.disks] == [
        d.target_dev for d in prepared.devices.disks
    ]
    assert [d.path for d in described.devices.disks] == [d.path for d in prepared.devices.disks]
    names = [c.target_name for c in described.devices.channels]
    assert names.count(GUEST_AGENT_CHANNEL) == 1


def test_prepared_vector_for_kvm_is_accepted_too(vector: Any, define: Callable[[str], Any]) -> None:
    prepared = prepare_for_host(parse_domain(vector.text), domain_type="kvm")
    assert ET.fromstring(prepared.to_xml()).find("features/tcg") is None
    dom = define(prepared.to_xml())
    assert parse_domain(dom.XMLDesc(0)).metadata == prepared.metadata
