"""The ovirt-vm metadata model: typed values round-trip, nothing is lost, libvirt takes it."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

import pytest

from virthost.common import errors
from virthost.virt.domxml import (
    METADATA_KEY,
    METADATA_URI,
    DeviceMetadata,
    MetadataNode,
    VmMetadata,
    metadata_xml,
    parse_metadata_xml,
    read_metadata,
    write_metadata,
)

NS = "http://ovirt.org/vm/1.0"
TUNE = "http://ovirt.org/vm/tune/1.0"
VM_UUID = "2a7b0c1d-3e4f-4a5b-8c6d-7e8f9a0b1c2d"


def domain_with(vm_body: str, *, others: str = "") -> ET.Element:
    return ET.fromstring(
        f'<domain type="kvm" xmlns:ovirt-vm="{NS}" xmlns:ovirt-tune="{TUNE}">'
        f"<name>m</name><uuid>{VM_UUID}</uuid>"
        f"<metadata>{others}<ovirt-vm:vm>{vm_body}</ovirt-vm:vm></metadata></domain>"
    )


def canonical(element: ET.Element) -> Any:
    """An element as (tag, attributes, text, children), ignoring indentation whitespace."""
    text = (element.text or "").strip() if len(element) else element.text or ""
    return (element.tag, dict(element.attrib), text, [canonical(c) for c in element])


def rewritten(root: ET.Element) -> ET.Element:
    copy = ET.fromstring(ET.tostring(root))
    write_metadata(copy, read_metadata(copy))
    found = copy.find(f"metadata/{{{NS}}}vm")
    assert found is not None
    return found


# --- reading ---------------------------------------------------------------------------------


def test_known_keys_are_typed() -> None:
    md = read_metadata(
        domain_with(
            '<ovirt-vm:destroy_on_reboot type="bool">True</ovirt-vm:destroy_on_reboot>'
            "<ovirt-vm:launchPaused>true</ovirt-vm:launchPaused>"
            '<ovirt-vm:memGuaranteedSize type="int">2048</ovirt-vm:memGuaranteedSize>'
            "<ovirt-vm:resumeBehavior>leave_paused</ovirt-vm:resumeBehavior>"
            '<ovirt-vm:startTime type="float">1700000000.25</ovirt-vm:startTime>'
        )
    )
    assert md.destroy_on_reboot is True
    assert md.launch_paused is True
    assert md.mem_guaranteed_mib == 2048
    assert md.resume_behavior == "leave_paused"
    assert md.start_time == 1700000000.25
    assert md.extra == {}


def test_a_domain_without_metadata_reads_as_defaults() -> None:
    root = ET.fromstring(f"<domain><name>m</name><uuid>{VM_UUID}</uuid></domain>")
    md = read_metadata(root)
    assert md == VmMetadata()
    assert md.resume_behavior == "auto_resume" and md.start_time is None


def test_other_keys_keep_their_types_in_extra() -> None:
    md = read_metadata(
        domain_with(
            "<ovirt-vm:clusterVersion>4.2</ovirt-vm:clusterVersion>"
            '<ovirt-vm:minGuaranteedMemoryMb type="int">4096</ovirt-vm:minGuaranteedMemoryMb>'
            '<ovirt-vm:ratio type="float">0.5</ovirt-vm:ratio>'
            '<ovirt-vm:flag type="bool">False</ovirt-vm:flag>'
            "<ovirt-vm:empty/>"
            '<ovirt-vm:job id="j1"><ovirt-vm:state>running</ovirt-vm:state></ovirt-vm:job>'
        )
    )
    assert md.extra["clusterVersion"] == "4.2"
    assert md.extra["minGuaranteedMemoryMb"] == 4096
    assert md.extra["ratio"] == 0.5
    assert md.extra["flag"] is False
    assert md.extra["empty"] == ""
    job = md.extra["job"]
    assert isinstance(job, MetadataNode)
    assert job.attrs == {"id": "j1"} and job.get("state") == "running"


def test_devices_keep_attributes_and_nested_values() -> None:
    md = read_metadata(
        domain_with(
            '<ovirt-vm:device mac_address="00:1A:4A:16:01:00">'
            "<ovirt-vm:network>ovirtmgmt</ovirt-vm:network><ovirt-vm:specParams/>"
            "</ovirt-vm:device>"
            '<ovirt-vm:device devtype="disk" name="sda">'
            "<ovirt-vm:imageID>img</ovirt-vm:imageID>"
            "<ovirt-vm:volumeChain>"
            '<ovirt-vm:volumeChainNode><ovirt-vm:leaseOffset type="int">7</ovirt-vm:leaseOffset>'
            "<ovirt-vm:path>/p/1</ovirt-vm:path></ovirt-vm:volumeChainNode>"
            "<ovirt-vm:volumeChainNode><ovirt-vm:path>/p/2</ovirt-vm:path></ovirt-vm:volumeChainNode>"
            "</ovirt-vm:volumeChain></ovirt-vm:device>"
        )
    )
    nic = md.nic_device("00:1a:4a:16:01:00")
    assert nic is not None and nic.get("network") == "ovirtmgmt"
    specparams = nic.child("specParams")
    assert specparams is not None and specparams.value is None and specparams.children == []
    disk = md.device(devtype="disk", name="sda")
    assert disk is not None and disk.get("imageID") == "img"
    chain = disk.volume_chain()
    assert [node.get("path") for node in chain] == ["/p/1", "/p/2"]
    assert chain[0].get("leaseOffset") == 7
    assert md.device(devtype="disk", name="sdb") is None


def test_custom_properties_are_a_string_dict() -> None:
    md = read_metadata(
        domain_with(
            "<ovirt-vm:custom><ovirt-vm:sap_agent>false</ovirt-vm:sap_agent>"
            "<ovirt-vm:empty/></ovirt-vm:custom>"
        )
    )
    assert md.custom == {"sap_agent": "false", "empty": ""}


@pytest.mark.parametrize(
    "body",
    [
        '<ovirt-vm:memGuaranteedSize type="int">lots</ovirt-vm:memGuaranteedSize>',
        '<ovirt-vm:startTime type="float">soon</ovirt-vm:startTime>',
        '<ovirt-vm:destroy_on_reboot type="bool">maybe</ovirt-vm:destroy_on_reboot>',
        "<ovirt-vm:launchPaused>perhaps</ovirt-vm:launchPaused>",
        "<ovirt-vm:resumeBehavior>explode</ovirt-vm:resumeBehavior>",
        '<ovirt-vm:x type="complex">1j</ovirt-vm:x>',
        "<ovirt-vm:x>1</ovirt-vm:x><ovirt-vm:x>2</ovirt-vm:x>",
        '<other:x xmlns:other="urn:other">1</other:x>',
        "<ovirt-vm:custom><ovirt-vm:k><ovirt-vm:deep/></ovirt-vm:k></ovirt-vm:custom>",
    ],
)
def test_malformed_metadata_is_refused(body: str) -> None:
    with pytest.raises(errors.CannotCreateVM, match="ovirt-vm metadata"):
        read_metadata(domain_with(body))


# --- writing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "type_attr", "text"),
    [
        (42, "int", "42"),
        (-7, "int", "-7"),
        (0.1, "float", "0.1"),
        (1521453447.17, "float", "1521453447.17"),
        (True, "bool", "True"),
        (False, "bool", "False"),
        ("4.2", None, "4.2"),
        ("", None, None),
    ],
)
def test_types_round_trip(value: Any, type_attr: str | None, text: str | None) -> None:
    root = domain_with("")
    write_metadata(root, VmMetadata(extra={"key": value}))
    element = root.find(f"metadata/{{{NS}}}vm/{{{NS}}}key")
    assert element is not None
    assert element.get("type") == type_attr
    assert (element.text or None) == text
    back = read_metadata(root).extra["key"]
    assert back == value and type(back) is type(value)


def test_known_fields_write_in_the_engine_spelling() -> None:
    md = VmMetadata(
        launch_paused=True,
        resume_behavior="kill",
        destroy_on_reboot=True,
        start_time=12.5,
        mem_guaranteed_mib=512,
    )
    element = ET.fromstring(metadata_xml(md))
    values = {child.tag: (child.get("type"), child.text) for child in element}
    assert values == {
        "destroy_on_reboot": ("bool", "True"),
        "launchPaused": (None, "true"),
        "memGuaranteedSize": ("int", "512"),
        "resumeBehavior": (None, "kill"),
        "startTime": ("float", "12.5"),
    }
    assert [child.tag for child in element] == sorted(values)


def test_absent_keys_stay_absent_and_present_defaults_stay() -> None:
    absent = domain_with("")
    write_metadata(absent, read_metadata(absent))
    vm = absent.find(f"metadata/{{{NS}}}vm")
    assert vm is not None and len(vm) == 0

    present = domain_with(
        "<ovirt-vm:launchPaused>false</ovirt-vm:launchPaused>"
        "<ovirt-vm:resumeBehavior>auto_resume</ovirt-vm:resumeBehavior>"
    )
    vm = rewritten(present)
    assert [(c.tag.split("}")[1], c.text) for c in vm] == [
        ("launchPaused", "false"),
        ("resumeBehavior", "auto_resume"),
    ]


def test_output_order_is_keys_then_devices_then_custom() -> None:
    root = domain_with(
        "<ovirt-vm:custom><ovirt-vm:a>1</ovirt-vm:a></ovirt-vm:custom>"
        '<ovirt-vm:device devtype="disk" name="vda"/>'
        "<ovirt-vm:zeta>z</ovirt-vm:zeta>"
        "<ovirt-vm:alpha>a</ovirt-vm:alpha>"
    )
    vm = rewritten(root)
    assert [c.tag.split("}")[1] for c in vm] == ["alpha", "zeta", "device", "custom"]


def test_a_full_document_round_trips_exactly() -> None:
    body = (
        "<ovirt-vm:clusterVersion>4.2</ovirt-vm:clusterVersion>"
        '<ovirt-vm:destroy_on_reboot type="bool">False</ovirt-vm:destroy_on_reboot>'
        "<ovirt-vm:launchPaused>false</ovirt-vm:launchPaused>"
        '<ovirt-vm:memGuaranteedSize type="int">4096</ovirt-vm:memGuaranteedSize>'
        "<ovirt-vm:resumeBehavior>auto_resume</ovirt-vm:resumeBehavior>"
        '<ovirt-vm:startTime type="float">1521453447.17</ovirt-vm:startTime>'
        '<ovirt-vm:device mac_address="00:1a:4a:16:01:00">'
        "<ovirt-vm:network>ovirtmgmt</ovirt-vm:network><ovirt-vm:specParams/>"
        "</ovirt-vm:device>"
        '<ovirt-vm:device devtype="disk" name="sda"><ovirt-vm:volumeChain>'
        '<ovirt-vm:volumeChainNode><ovirt-vm:leaseOffset type="int">0</ovirt-vm:leaseOffset>'
        "</ovirt-vm:volumeChainNode></ovirt-vm:volumeChain></ovirt-vm:device>"
        "<ovirt-vm:custom><ovirt-vm:k>v</ovirt-vm:k></ovirt-vm:custom>"
    )
    root = domain_with(body)
    original = root.find(f"metadata/{{{NS}}}vm")
    assert original is not None
    assert canonical(rewritten(root)) == canonical(original)


def test_write_keeps_other_metadata_and_its_place() -> None:
    root = domain_with(
        "<ovirt-vm:clusterVersion>4.2</ovirt-vm:clusterVersion>",
        others=(
            '<ovirt-tune:qos><ovirt-tune:x>1</ovirt-tune:x></ovirt-tune:qos><a:b xmlns:a="urn:a"/>'
        ),
    )
    write_metadata(root, VmMetadata(start_time=5.0))
    container = root.find("metadata")
    assert container is not None
    assert [c.tag for c in container] == [f"{{{TUNE}}}qos", "{urn:a}b", f"{{{NS}}}vm"]
    assert container.findtext(f"{{{TUNE}}}qos/{{{TUNE}}}x") == "1"
    assert read_metadata(root) == VmMetadata(start_time=5.0)


def test_write_creates_the_metadata_element_after_the_identity() -> None:
    root = ET.fromstring(
        f"<domain><name>m</name><uuid>{VM_UUID}</uuid><memory>1024</memory></domain>"
    )
    write_metadata(root, VmMetadata(launch_paused=True))
    assert [c.tag for c in root] == ["name", "uuid", "metadata", "memory"]
    assert read_metadata(root).launch_paused is True


@pytest.mark.parametrize(
    "md",
    [
        VmMetadata(extra={"bad key": "x"}),
        VmMetadata(extra={"1digit": "x"}),
        VmMetadata(extra={"a><b": "x"}),
        VmMetadata(extra={"device": "x"}),
        VmMetadata(extra={"startTime": 1.0}),
        VmMetadata(extra={"k": [1, 2]}),
        VmMetadata(extra={"k": "nul\x00"}),
        VmMetadata(custom={"x/>": "v"}),
        VmMetadata(custom={"k": "bell\x07"}),
        VmMetadata(devices=[DeviceMetadata(attrs={'a="1" b': "x"})]),
        VmMetadata(devices=[DeviceMetadata(values=[MetadataNode("ok", attrs={"type": "int"})])]),
        VmMetadata(resume_behavior="sometimes"),  # type: ignore[arg-type]
    ],
)
def test_values_xml_cannot_hold_are_refused(md: VmMetadata) -> None:
    with pytest.raises(errors.InvalidParameter):
        metadata_xml(md)


# --- the libvirt form ------------------------------------------------------------------------


def test_metadata_xml_is_unqualified_for_set_metadata() -> None:
    text = metadata_xml(VmMetadata(start_time=1.5, custom={"k": "v"}))
    assert text.startswith("<vm>")
    assert "xmlns" not in text
    assert parse_metadata_xml(text) == VmMetadata(start_time=1.5, custom={"k": "v"})


def test_parse_metadata_xml_accepts_the_namespaced_form() -> None:
    text = (
        f'<ovirt-vm:vm xmlns:ovirt-vm="{NS}"><ovirt-vm:startTime type="float">2.0'
        "</ovirt-vm:startTime></ovirt-vm:vm>"
    )
    assert parse_metadata_xml(text).start_time == 2.0
    with pytest.raises(errors.CannotCreateVM):
        parse_metadata_xml("<qos/>")
    with pytest.raises(errors.CannotCreateVM):
        parse_metadata_xml("<vm>")


def test_libvirt_stores_and_returns_the_metadata(define: Callable[[str], Any]) -> None:
    libvirt = pytest.importorskip("libvirt")
    dom = define(
        f"<domain type='qemu'><name>virthost-md-test</name><uuid>{VM_UUID}</uuid>"
        "<memory>65536</memory><os><type>hvm</type></os></domain>"
    )
    md = VmMetadata(
        launch_paused=True,
        start_time=1700000000.5,
        custom={"note": "a < b & \"c\" 'd'"},
        devices=[
            DeviceMetadata(
                {"devtype": "disk", "name": "vda"},
                [MetadataNode("volumeChain", children=[MetadataNode("leaseOffset", 3)])],
            )
        ],
        extra={"clusterVersion": "4.7", "count": 3},
    )
    flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG
    dom.setMetadata(
        libvirt.VIR_DOMAIN_METADATA_ELEMENT, metadata_xml(md), METADATA_KEY, METADATA_URI, flags
    )
    assert (
        parse_metadata_xml(dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, METADATA_URI, flags))
        == md
    )
    assert read_metadata(ET.fromstring(dom.XMLDesc(0))) == md
