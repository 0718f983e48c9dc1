"""What libvirt's capabilities documents say about the host, parsed with xml.etree.

Two documents matter for ``Host.getCapabilities``:

* ``virConnectGetCapabilities`` (``virsh capabilities``): the machine types QEMU can emulate
  per guest architecture (``emulatedMachines``; the engine refuses a host lacking the cluster's
  machine type) and the TSC frequency (``tscFrequency``, needed for migratable high-performance
  VMs).
* ``virConnectGetDomainCapabilities`` (``virsh domcapabilities``): which named CPU models the
  hypervisor can run on this host. The engine derives the host's CPU type from ``cpuFlags``
  entries ``model_<Name>``, so each usable model becomes such a flag; the features libvirt
  requires for ``host-model`` are added too because they include bits (such as the
  ``arch-capabilities`` family) that /proc/cpuinfo does not list.

Both parsers are pure functions over the XML text; fetching the text is the caller's business
(and may block, so it is time-boxed there).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field


@dataclass(frozen=True)
class LibvirtHostCaps:
    """The parts of the capabilities document we report."""

    host_uuid: str | None
    arch: str | None
    cpu_model: str | None
    tsc_frequency: str | None
    tsc_scaling: bool
    machines: dict[str, list[str]] = field(default_factory=dict)

    def emulated_machines(self, arch: str) -> list[str]:
        return list(self.machines.get(arch, []))


@dataclass(frozen=True)
class DomainCpuCaps:
    """CPU models usable on this host and the features host-model requires."""

    usable_models: list[str]
    host_model_features: list[str]


def _machine_names(parent: ET.Element) -> list[str]:
    """Machine types under ``parent``, plus the canonical name each alias points to."""
    names: list[str] = []
    for machine in parent.findall("machine"):
        for name in (machine.text, machine.get("canonical")):
            if name and name.strip() and name.strip() not in names:
                names.append(name.strip())
    return names


def _guest_machines(root: ET.Element) -> dict[str, list[str]]:
    machines: dict[str, list[str]] = {}
    for arch in root.findall("./guest/arch"):
        name = arch.get("name")
        if not name:
            continue
        # A <domain type='kvm'> element may carry its own machine list (when only the
        # accelerated emulator knows them); prefer it, as that is what KVM guests can use.
        kvm_machines: list[str] = []
        for domain in arch.findall("domain"):
            if domain.get("type") == "kvm":
                kvm_machines = _machine_names(domain)
        found = kvm_machines or _machine_names(arch)
        known = machines.setdefault(name, [])
        known.extend(m for m in found if m not in known)
    return machines


def parse_capabilities(xml_text: str) -> LibvirtHostCaps:
    """Parse ``virConnectGetCapabilities`` output (raises ``ET.ParseError`` on bad XML)."""
    root = ET.fromstring(xml_text)
    tsc = root.find("./host/cpu/counter[@name='tsc']")
    return LibvirtHostCaps(
        host_uuid=root.findtext("./host/uuid"),
        arch=root.findtext("./host/cpu/arch"),
        cpu_model=root.findtext("./host/cpu/model"),
        tsc_frequency=tsc.get("frequency") if tsc is not None else None,
        tsc_scaling=tsc is not None and tsc.get("scaling") == "yes",
        machines=_guest_machines(root),
    )


def parse_domain_capabilities(xml_text: str) -> DomainCpuCaps:
    """Parse ``virConnectGetDomainCapabilities`` output for its CPU section."""
    root = ET.fromstring(xml_text)
    usable: list[str] = []
    features: list[str] = []
    for mode in root.findall("./cpu/mode"):
        if mode.get("supported") != "yes":
            continue
        if mode.get("name") == "custom":
            for model in mode.findall("model"):
                name = (model.text or "").strip()
                if name and model.get("usable") == "yes" and name not in usable:
                    usable.append(name)
        elif mode.get("name") == "host-model":
            for feature in mode.findall("feature"):
                feature_name = feature.get("name")
                if feature.get("policy") != "require" or not feature_name:
                    continue
                if feature_name not in features:
                    features.append(feature_name)
    return DomainCpuCaps(usable_models=usable, host_model_features=features)


def cpu_flags(cpuinfo_flags: list[str] | tuple[str, ...], domcaps: DomainCpuCaps | None) -> str:
    """VDSM's ``cpuFlags``: cpuinfo flags and host-model features (deduplicated, in order),
    then one ``model_<Name>`` per usable CPU model, joined by commas."""
    flags: list[str] = []
    seen: set[str] = set()
    extra_features = domcaps.host_model_features if domcaps else []
    for flag in [*cpuinfo_flags, *extra_features]:
        if flag not in seen:
            seen.add(flag)
            flags.append(flag)
    models = [f"model_{m}" for m in (domcaps.usable_models if domcaps else [])]
    return ",".join(flags + models)


def version_string(number: int) -> str:
    """libvirt's packed version (major * 1,000,000 + minor * 1,000 + micro) as ``"9.0.0"``."""
    major, rest = divmod(number, 1_000_000)
    minor, micro = divmod(rest, 1_000)
    return f"{major}.{minor}.{micro}"
