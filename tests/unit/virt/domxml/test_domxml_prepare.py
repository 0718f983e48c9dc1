"""prepare_for_host: domain type, TCG tuning, TCG-safe CPUs, agent channel, metadata, purity."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from virthost.common import errors
from virthost.virt.domxml import GUEST_AGENT_CHANNEL, parse_domain, prepare_for_host

DATA = Path(__file__).parent / "data"
VM_UUID = "0b9a8c7d-6e5f-4a3b-9c2d-1e0f9a8b7c6d"
OVIRT_VM = "{http://ovirt.org/vm/1.0}vm"


def domain(body: str = "", domain_type: str = "kvm") -> str:
    return (
        f"<domain type='{domain_type}'><name>p</name><uuid>{VM_UUID}</uuid>"
        f"<memory unit='MiB'>64</memory><os><type>hvm</type></os>{body}</domain>"
    )


def prepared_root(body: str = "", **kwargs: Any) -> ET.Element:
    kwargs.setdefault("domain_type", "qemu")
    return ET.fromstring(prepare_for_host(parse_domain(domain(body)), **kwargs).to_xml())


@pytest.mark.parametrize("domain_type", ["qemu", "kvm"])
def test_golden_engine_document(domain_type: str, golden: Callable[[str, str], None]) -> None:
    dom = parse_domain((DATA / "engine_vm.xml").read_text())
    golden(f"engine_vm.{domain_type}.xml", prepare_for_host(dom, domain_type=domain_type).to_xml())


@pytest.mark.parametrize("domain_type", ["qemu", "kvm"])
def test_prepared_engine_document_is_accepted_by_libvirt(
    domain_type: str, define: Callable[[str], Any]
) -> None:
    prepared = prepare_for_host(
        parse_domain((DATA / "engine_vm.xml").read_text()), domain_type=domain_type
    )
    out = prepared.to_xml()
    dom = define(out)
    assert dom.UUIDString() == prepared.uuid
    back = parse_domain(dom.XMLDesc(0))
    assert back.domain_type == domain_type
    assert back.metadata == prepared.metadata
    assert back.devices.has_guest_agent_channel


def test_domain_type_is_set() -> None:
    assert prepared_root(domain_type="qemu").get("type") == "qemu"
    assert prepared_root(domain_type="kvm").get("type") == "kvm"
    root = ET.fromstring(
        prepare_for_host(parse_domain(domain(domain_type="qemu")), domain_type="kvm").to_xml()
    )
    assert root.get("type") == "kvm"


def test_tcg_gets_a_translation_cache_limit() -> None:
    root = prepared_root("<features><acpi/></features>", tcg_cache_mib=32)
    cache = root.find("features/tcg/tb-cache")
    assert cache is not None and cache.text == "32" and cache.attrib == {"unit": "MiB"}
    assert root.find("features/acpi") is not None
    # an existing limit is replaced, not duplicated
    again = prepared_root("<features><tcg><tb-cache unit='GiB'>1</tb-cache></tcg></features>")
    caches = again.findall("features/tcg/tb-cache")
    assert len(caches) == 1 and caches[0].text == "16" and caches[0].get("unit") == "MiB"


def test_kvm_drops_tcg_features() -> None:
    root = prepared_root(
        "<features><acpi/><tcg><tb-cache>8</tb-cache></tcg></features>", domain_type="kvm"
    )
    assert root.find("features/tcg") is None
    assert root.find("features/acpi") is not None


@pytest.mark.parametrize("mode", ["host-passthrough", "host-model"])
def test_host_cpu_modes_become_plain_cpus_under_tcg(mode: str) -> None:
    root = prepared_root(
        f"<cpu mode='{mode}' check='partial' migratable='on'><model fallback='allow'/>"
        "<feature policy='require' name='vmx'/><cache mode='passthrough'/>"
        "<topology sockets='2' cores='1' threads='1'/>"
        "<numa><cell id='0' cpus='0-1' memory='65536' unit='KiB'/></numa></cpu>"
    )
    cpu = root.find("cpu")
    assert cpu is not None
    assert cpu.attrib == {}
    assert [child.tag for child in cpu] == ["topology", "numa"]


def test_a_bare_host_passthrough_cpu_is_removed_under_tcg() -> None:
    assert prepared_root("<cpu mode='host-passthrough'/>").find("cpu") is None


def test_named_cpu_models_are_kept_unchecked_under_tcg() -> None:
    root = prepared_root(
        "<cpu mode='custom' match='exact' check='full'>"
        "<model fallback='forbid'>Haswell-noTSX</model>"
        "<feature policy='require' name='f16c'/></cpu>"
    )
    cpu = root.find("cpu")
    assert cpu is not None and cpu.get("check") == "none" and cpu.get("match") == "exact"
    assert cpu.findtext("model") == "Haswell-noTSX"
    assert cpu.find("feature[@name='f16c']") is not None
    # no mode means custom
    bare = prepared_root("<cpu><model>Opteron_G2</model></cpu>").find("cpu")
    assert bare is not None and bare.get("check") == "none"


@pytest.mark.parametrize(
    "cpu",
    [
        "<cpu mode='maximum'/>",
        "<cpu><topology sockets='1' cores='2' threads='1'/></cpu>",
    ],
)
def test_tcg_safe_cpus_are_untouched(cpu: str) -> None:
    root = prepared_root(cpu)
    expected = ET.fromstring(cpu)
    found = root.find("cpu")
    assert found is not None and found.attrib == expected.attrib and len(found) == len(expected)


def test_kvm_keeps_the_engine_cpu() -> None:
    root = prepared_root("<cpu mode='host-passthrough' check='none'/>", domain_type="kvm")
    cpu = root.find("cpu")
    assert cpu is not None and cpu.get("mode") == "host-passthrough"


def test_the_guest_agent_channel_is_added_once() -> None:
    root = prepared_root(
        "<devices><channel type='spicevmc'><target type='virtio' name='s'/></channel>"
        "<memballoon model='none'/></devices>"
    )
    channels = root.findall("devices/channel")
    assert [c.find("target").get("name") for c in channels] == ["s", GUEST_AGENT_CHANNEL]  # type: ignore[union-attr]
    agent = channels[1]
    assert agent.get("type") == "unix"
    assert agent.find("source") is not None and agent.find("source").attrib == {"mode": "bind"}  # type: ignore[union-attr]
    assert agent.find("target").get("type") == "virtio"  # type: ignore[union-attr]
    twice = prepare_for_host(
        prepare_for_host(parse_domain(domain()), domain_type="qemu"), domain_type="qemu"
    )
    assert len(twice.root.findall("devices/channel")) == 1


def test_the_guest_agent_channel_can_be_left_out() -> None:
    assert prepared_root(agent_channel=False).find("devices/channel") is None


def test_metadata_element_is_ensured() -> None:
    root = prepared_root()
    assert root.find(f"metadata/{OVIRT_VM}") is not None
    kept = prepared_root(
        "<metadata><q:qos xmlns:q='http://ovirt.org/vm/tune/1.0'/>"
        "<v:vm xmlns:v='http://ovirt.org/vm/1.0'><v:startTime type='float'>3.5</v:startTime>"
        "</v:vm></metadata>"
    )
    assert kept.find("metadata/{http://ovirt.org/vm/tune/1.0}qos") is not None
    assert kept.findtext(f"metadata/{OVIRT_VM}/{{http://ovirt.org/vm/1.0}}startTime") == "3.5"


def test_emulator_and_machine_overrides() -> None:
    root = prepared_root(
        "<devices><emulator>/usr/libexec/qemu-kvm</emulator></devices>",
        emulator="/usr/bin/qemu-system-x86_64",
        machine="pc-i440fx-7.2",
    )
    assert [e.text for e in root.findall("devices/emulator")] == ["/usr/bin/qemu-system-x86_64"]
    assert root.find("os/type").get("machine") == "pc-i440fx-7.2"  # type: ignore[union-attr]
    added = prepared_root(emulator="/usr/bin/qemu-system-x86_64")
    assert added.findtext("devices/emulator") == "/usr/bin/qemu-system-x86_64"


def test_input_is_not_modified() -> None:
    source = (DATA / "engine_vm.xml").read_text()
    dom = parse_domain(source)
    before = dom.to_xml()
    prepare_for_host(dom, domain_type="qemu", emulator="/usr/bin/qemu-system-x86_64")
    assert dom.to_xml() == before


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"domain_type": "auto"}, "domain_type"),
        ({"domain_type": "xen"}, "domain_type"),
        ({"domain_type": "qemu", "tcg_cache_mib": 0}, "tcg_cache_mib"),
        ({"domain_type": "qemu", "tcg_cache_mib": True}, "tcg_cache_mib"),
        ({"domain_type": "qemu", "tcg_cache_mib": "16"}, "tcg_cache_mib"),
        ({"domain_type": "qemu", "emulator": "qemu-kvm"}, "emulator"),
        ({"domain_type": "qemu", "emulator": "/usr/../bin/qemu"}, "emulator"),
        ({"domain_type": "qemu", "machine": "pc'/><evil"}, "machine"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, Any], param: str) -> None:
    with pytest.raises(errors.InvalidParameter) as caught:
        prepare_for_host(parse_domain(domain()), **kwargs)
    assert caught.value.context.get("param") == param


def test_foreign_security_labels_are_dropped() -> None:
    from virthost.virt.domxml import parse_domain, prepare_for_host

    dom = parse_domain(
        "<domain type='kvm'><name>s</name><uuid>5f0b1f0e-9a55-4a4f-8b1d-1e0123456789</uuid>"
        "<memory>131072</memory><devices><disk type='file' device='disk'>"
        "<source file='/x.img'><seclabel model='selinux' relabel='no'/></source>"
        "<target dev='vda'/></disk></devices>"
        "<seclabel type='none' model='selinux'/><seclabel type='dynamic' model='dac'/></domain>"
    )
    xml = prepare_for_host(dom, domain_type="qemu", security_models=frozenset({"dac"})).to_xml()
    assert "selinux" not in xml
    assert 'model="dac"' in xml or "model='dac'" in xml
    kept = prepare_for_host(dom, domain_type="qemu").to_xml()
    assert kept.count("selinux") == 2


def test_tcg_gets_address_bits_for_max_memory() -> None:
    from virthost.virt.domxml import parse_domain, prepare_for_host

    dom = parse_domain(
        "<domain type='kvm'><name>m</name><uuid>5f0b1f0e-9a55-4a4f-8b1d-1e0123456780</uuid>"
        "<maxMemory slots='16' unit='TiB'>4</maxMemory><memory>131072</memory></domain>"
    )
    qemu = prepare_for_host(dom, domain_type="qemu").to_xml()
    assert 'bits="44"' in qemu
    assert "maxphysaddr" not in prepare_for_host(dom, domain_type="kvm").to_xml()
