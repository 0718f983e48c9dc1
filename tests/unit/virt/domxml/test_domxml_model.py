"""Parsing domain XML: what is refused, what the typed views say, and that nothing is lost."""

from __future__ import annotations

import dataclasses
import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from virthost.common import errors
from virthost.virt.domxml import DomainXml, VmMetadata, parse_domain
from virthost.virt.domxml.devices import read_disk

DATA = Path(__file__).parent / "data"
VM_UUID = "5c1d7f0e-8a9b-4c2d-9e3f-a0b1c2d3e4f5"


def minimal(extra: str = "", *, uuid: str = VM_UUID, name: str = "vm1") -> str:
    return f"<domain type='kvm'><name>{name}</name><uuid>{uuid}</uuid>{extra}</domain>"


def describe(dom: DomainXml) -> str:
    """The typed views of ``dom`` as JSON, for golden files."""
    metadata = dataclasses.asdict(dom.metadata)
    metadata["_present"] = sorted(metadata["_present"])
    view = {
        "uuid": dom.uuid,
        "name": dom.name,
        "domain_type": dom.domain_type,
        "memory_kib": dom.memory_kib,
        "current_memory_kib": dom.current_memory_kib,
        "vcpus": dom.vcpus,
        "max_vcpus": dom.max_vcpus,
        "os": dataclasses.asdict(dom.os),
        "devices": dataclasses.asdict(dom.devices),
        "has_guest_agent_channel": dom.devices.has_guest_agent_channel,
        "metadata": metadata,
    }
    return json.dumps(view, indent=2) + "\n"


def canonical(element: ET.Element) -> Any:
    text = (element.text or "").strip() if len(element) else element.text or ""
    tail_free = [canonical(c) for c in element]
    return (element.tag, dict(element.attrib), text, tail_free)


# --- refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("xml", "detail"),
    [
        ("<domain><name>x</name>", "malformed domain XML"),
        ("", "malformed domain XML"),
        ("<vm/>", "not <domain>"),
        (minimal().replace(f"<uuid>{VM_UUID}</uuid>", ""), "missing <uuid>"),
        (minimal(uuid=""), "missing <uuid>"),
        (minimal(uuid="{vm_uuid}"), "invalid <uuid>"),
        (minimal(uuid="../../etc/passwd"), "invalid <uuid>"),
        (minimal().replace("<name>vm1</name>", ""), "missing <name>"),
        (minimal(name="  "), "missing <name>"),
        (minimal("<memory unit='MiB'>lots</memory>"), "<memory> is not a valid size"),
        (minimal("<memory unit='parsecs'>1</memory>"), "<memory> is not a valid size"),
        (minimal("<currentMemory>-1</currentMemory>"), "<currentMemory>"),
        (minimal("<vcpu>0</vcpu>"), "<vcpu>"),
        (minimal("<vcpu current='x'>2</vcpu>"), "<vcpu>"),
        (
            minimal(
                "<metadata><v:vm xmlns:v='http://ovirt.org/vm/1.0'>"
                "<v:startTime type='float'>noon</v:startTime></v:vm></metadata>"
            ),
            "startTime",
        ),
        (
            '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY e "boom">]>' + minimal(name="&e;"),
            "DTD",
        ),
    ],
)
def test_unusable_xml_is_refused_with_a_reason(xml: str, detail: str) -> None:
    with pytest.raises(errors.CannotCreateVM) as caught:
        parse_domain(xml)
    assert caught.value.code == 9
    assert detail in str(caught.value.detail)


def test_non_string_input_is_refused() -> None:
    with pytest.raises(errors.CannotCreateVM):
        parse_domain(b"<domain/>")  # type: ignore[arg-type]


# --- typed views -----------------------------------------------------------------------------


def test_golden_engine_document_view(golden: Callable[[str, str], None]) -> None:
    dom = parse_domain((DATA / "engine_vm.xml").read_text())
    golden("engine_vm.parsed.json", describe(dom))


def test_engine_document_view_highlights() -> None:
    dom = parse_domain((DATA / "engine_vm.xml").read_text())
    assert dom.uuid == "7d3e0f52-91c4-4b8e-a6f1-2c5d8e9b0a17"
    assert (dom.memory_kib, dom.current_memory_kib) == (2 * 1024 * 1024, 1536 * 1024)
    assert (dom.vcpus, dom.max_vcpus) == (2, 8)
    assert dom.os.kernel == "/var/lib/golden/vmlinuz" and dom.os.machine == "pc"
    devices = dom.devices
    assert [d.target_dev for d in devices.disks] == ["vda", "sda", "vdb", "hdc"]
    assert [d.type for d in devices.disks] == ["file", "block", "network", "file"]
    assert devices.disks[3].path is None and devices.disks[3].readonly
    assert devices.disks[2].protocol == "rbd" and devices.disks[2].network_name == "pool/volume"
    nic = devices.interface("00:1A:4A:16:20:01")
    assert nic is not None and nic.target_dev == "vnet7" and nic.source_bridge == "ovirtmgmt"
    assert [g.type for g in devices.graphics] == ["vnc", "spice"]
    assert devices.graphics[0].port == 5901 and devices.graphics[0].autoport is False
    assert devices.balloon is not None and devices.balloon.stats_period == 5
    assert devices.serials[0].source_path == "/var/log/golden/console.log"
    assert devices.serials[0].append is True
    assert not devices.has_guest_agent_channel
    assert dom.metadata.resume_behavior == "kill"
    assert dom.metadata.extra["ratio"] == 0.25


@pytest.mark.parametrize(
    ("element", "kib"),
    [
        ("<memory>1024</memory>", 1024),
        ("<memory unit='KiB'>1024</memory>", 1024),
        ("<memory unit='k'>1024</memory>", 1024),
        ("<memory unit='MiB'>2</memory>", 2048),
        ("<memory unit='M'>2</memory>", 2048),
        ("<memory unit='GiB'>1</memory>", 1024 * 1024),
        ("<memory unit='b'>1025</memory>", 2),
        ("<memory unit='bytes'>2048</memory>", 2),
        ("<memory unit='KB'>1024</memory>", 1000),
        ("<memory unit='MB'>1</memory>", 977),
        ("<memory unit='TiB'>1</memory>", 1024**3),
    ],
)
def test_memory_units(element: str, kib: int) -> None:
    assert parse_domain(minimal(element)).memory_kib == kib


def test_missing_optional_parts_read_as_defaults() -> None:
    dom = parse_domain(minimal())
    assert dom.memory_kib is None and dom.current_memory_kib is None
    assert dom.vcpus == 1 and dom.max_vcpus == 1
    assert dom.os.kernel is None
    assert dom.devices.disks == () and dom.devices.balloon is None
    assert dom.metadata == VmMetadata()


def test_uuid_reads_canonical() -> None:
    assert parse_domain(minimal(uuid=VM_UUID.upper())).uuid == VM_UUID


def test_disk_views_of_the_engine_disk_vectors(disk_vectors: list[str]) -> None:
    disks = [read_disk(ET.fromstring(text)) for text in disk_vectors]
    assert len(disks) == 16
    assert {d.type for d in disks} == {"file", "block", "network"}
    assert {d.device for d in disks} == {"disk", "lun", "cdrom"}
    assert all(d.target_dev for d in disks)
    empty_cdroms = [d for d in disks if d.device == "cdrom" and d.path is None]
    assert len(empty_cdroms) == 1 and empty_cdroms[0].readonly
    rbd = [d for d in disks if d.type == "network"]
    assert all(d.protocol == "rbd" and d.network_name == "poolname/volumename" for d in rbd)
    assert any(d.error_policy == "enospace" for d in disks)


# --- keeping the tree ------------------------------------------------------------------------


def test_unknown_elements_survive_a_round_trip() -> None:
    source = (DATA / "engine_vm.xml").read_text()
    out = parse_domain(source).to_xml()
    assert canonical(ET.fromstring(out)) == canonical(ET.fromstring(source))


def test_unchanged_metadata_is_not_rewritten() -> None:
    source = minimal(
        "<metadata><v:vm xmlns:v='http://ovirt.org/vm/1.0'>\n"
        "<v:zeta>1</v:zeta><v:alpha>2</v:alpha></v:vm></metadata>"
    )
    out = ET.fromstring(parse_domain(source).to_xml())
    vm = out.find("metadata/{http://ovirt.org/vm/1.0}vm")
    assert vm is not None
    assert [c.tag.split("}")[1] for c in vm] == ["zeta", "alpha"]  # source order kept


def test_metadata_edits_reach_the_xml() -> None:
    dom = parse_domain(minimal())
    assert "ovirt.org/vm/1.0" not in dom.to_xml()  # nothing added to an external VM
    dom.metadata.start_time = 99.5
    dom.metadata.custom["k"] = "v"
    again = parse_domain(dom.to_xml())
    assert again.metadata.start_time == 99.5 and again.metadata.custom == {"k": "v"}


def test_setters_edit_the_tree() -> None:
    dom = parse_domain(minimal("<memory unit='GiB'>1</memory>"))
    dom.name = "renamed"
    dom.domain_type = "qemu"
    dom.memory_kib = 4096
    dom.current_memory_kib = 2048
    again = parse_domain(dom.to_xml())
    assert (again.name, again.domain_type) == ("renamed", "qemu")
    assert (again.memory_kib, again.current_memory_kib) == (4096, 2048)
    for bad in (0, -1, True):
        with pytest.raises(errors.InvalidParameter):
            dom.memory_kib = bad
    with pytest.raises(errors.InvalidParameter):
        dom.name = " "
    with pytest.raises(errors.InvalidParameter):
        dom.domain_type = "kvm' evil='1"


def test_copy_is_independent() -> None:
    dom = parse_domain((DATA / "engine_vm.xml").read_text())
    clone = dom.copy()
    clone.name = "other"
    clone.metadata.start_time = 1.0
    clone.root.remove(clone.root.find("devices"))  # type: ignore[arg-type]
    assert dom.name == "golden-engine-vm"
    assert dom.metadata.start_time == 1700000000.5
    assert len(dom.devices.disks) == 4
    assert clone.devices.disks == ()


def test_disks_can_be_pointed_at_prepared_volumes() -> None:
    dom = parse_domain((DATA / "engine_vm.xml").read_text())
    dom.set_disk_source("vda", "/run/virthost/volumes/vda.qcow2")
    dom.set_disk_source("hdc", "/var/lib/virthost/iso/tools.iso")
    dom.set_disk_source("sda", "/dev/mapper/other-lun")
    dom.set_disk_source("vda", "/dev/vg0/lv-vda", disk_type="block")
    again = parse_domain(dom.to_xml())
    vda, hdc, sda = (again.devices.disk(dev) for dev in ("vda", "hdc", "sda"))
    assert vda is not None and (vda.type, vda.path) == ("block", "/dev/vg0/lv-vda")
    assert hdc is not None and hdc.path == "/var/lib/virthost/iso/tools.iso"
    assert hdc.startup_policy == "optional"  # the rest of <source> is kept
    assert sda is not None and (sda.type, sda.path) == ("block", "/dev/mapper/other-lun")
    source = again.root.find("devices/disk/source")
    assert source is not None and set(source.attrib) == {"dev"}


@pytest.mark.parametrize(
    ("target", "path", "disk_type", "param"),
    [
        ("vdz", "/img/a", None, "target_dev"),
        ("vda' or '1'='1", "/img/a", None, "target_dev"),
        ("vda", "/img/../a", None, "path"),
        ("vda", "img/a", None, "path"),
        ("vda", "/img/a", "network", "disk_type"),
        ("vdb", "/img/a", None, "disk_type"),  # a network (rbd) disk has no path to set
        ("vdb", "/img/a", "file", "disk_type"),
    ],
)
def test_bad_disk_sources_are_refused(
    target: str, path: str, disk_type: str | None, param: str
) -> None:
    dom = parse_domain((DATA / "engine_vm.xml").read_text())
    with pytest.raises(errors.InvalidParameter) as caught:
        dom.set_disk_source(target, path, disk_type)
    assert caught.value.context.get("param") == param
