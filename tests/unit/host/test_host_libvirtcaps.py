"""Parsing libvirt's capabilities and domain capabilities documents."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from unit.host.host_fakes import data_text
from virthost.host import libvirtcaps

# A host whose x86_64 KVM domain lists its own machines (only the accelerated emulator knows
# the rhel types) next to an arch-wide list.
KVM_DOMAIN_MACHINES = """\
<capabilities>
  <host><uuid>0b7f4b48-3f2e-4a4e-9d29-6c1f0c7a0001</uuid>
    <cpu><arch>x86_64</arch><model>Skylake-Client-IBRS</model></cpu>
  </host>
  <guest>
    <os_type>hvm</os_type>
    <arch name='x86_64'>
      <machine>pc-i440fx-2.11</machine>
      <domain type='qemu'/>
      <domain type='kvm'>
        <machine>pc-i440fx-rhel7.6.0</machine>
        <machine canonical='pc-i440fx-rhel7.6.0'>pc</machine>
        <machine canonical='pc-q35-rhel8.6.0'>q35</machine>
      </domain>
    </arch>
  </guest>
</capabilities>
"""


def test_this_machines_capabilities() -> None:
    caps = libvirtcaps.parse_capabilities(data_text("libvirt_capabilities.xml"))
    assert caps.arch == "x86_64"
    assert caps.host_uuid == "1f352ef8-04a2-4af2-8399-fe2a90aaf814"
    assert caps.tsc_frequency == "2600000000" and caps.tsc_scaling is False
    machines = caps.emulated_machines("x86_64")
    assert "pc-q35-7.2" in machines and "q35" in machines and "pc" in machines
    assert len(machines) == len(set(machines))
    assert "i686" in caps.machines
    assert caps.emulated_machines("aarch64") == []


def test_kvm_domain_machines_win_and_canonical_names_are_added() -> None:
    caps = libvirtcaps.parse_capabilities(KVM_DOMAIN_MACHINES)
    assert caps.emulated_machines("x86_64") == [
        "pc-i440fx-rhel7.6.0",
        "pc",
        "q35",
        "pc-q35-rhel8.6.0",
    ]
    assert caps.tsc_frequency is None and caps.tsc_scaling is False


def test_bad_xml_raises() -> None:
    with pytest.raises(ET.ParseError):
        libvirtcaps.parse_capabilities("<capabilities>")


def test_this_machines_domain_capabilities() -> None:
    dom = libvirtcaps.parse_domain_capabilities(data_text("libvirt_domcapabilities.xml"))
    assert "pentium3" in dom.usable_models
    assert "Westmere" not in dom.usable_models  # usable='no' on this host
    assert "arch-capabilities" in dom.host_model_features
    assert "pni" not in dom.host_model_features  # policy='disable'


def test_cpu_flags_join_features_and_models() -> None:
    dom = libvirtcaps.DomainCpuCaps(
        usable_models=["Haswell-noTSX", "Westmere"],
        host_model_features=["vme", "arch-capabilities"],
    )
    flags = libvirtcaps.cpu_flags(("fpu", "vme"), dom)
    assert flags == "fpu,vme,arch-capabilities,model_Haswell-noTSX,model_Westmere"
    assert libvirtcaps.cpu_flags(("fpu",), None) == "fpu"


@pytest.mark.parametrize(
    ("number", "text"), [(9000000, "9.0.0"), (7002022, "7.2.22"), (10010, "0.10.10")]
)
def test_version_string(number: int, text: str) -> None:
    assert libvirtcaps.version_string(number) == text
