"""Rewriting an engine's domain XML for this host, before it is defined in libvirt.

The engine writes XML for a KVM host. virthost also runs where KVM is unusable (nested
containers, CI machines) by running guests under QEMU's TCG emulator, as VDSM's
``fake_kvm_support`` did; the caller decides which (``auto`` is resolved before calling), and
:func:`prepare_for_host` makes the document fit:

* ``<domain type>`` becomes ``kvm`` or ``qemu``.
* Under TCG, ``<features><tcg><tb-cache unit='MiB'>N</tb-cache></tcg>`` caps QEMU's translation
  cache (its 1 GiB default lets every guest's RSS grow that far); under KVM any ``<tcg>`` goes,
  as libvirt refuses TCG features for KVM domains.
* Under TCG the guest CPU must be one TCG can emulate. ``host-passthrough`` needs KVM (libvirt:
  "not supported by hypervisor") and ``host-model`` describes the *host's* CPU, so both are
  reduced to a plain ``<cpu>`` keeping only topology, NUMA cells and cache layout (QEMU's default
  model). A named model (``Haswell-noTSX``) stays, since QEMU runs it with whatever features it
  can emulate, but with ``check='none'``: with ``check='full'`` libvirt refuses to start a guest
  missing any required feature, which under TCG is most of them. ``mode='maximum'`` is kept.
* The qemu-guest-agent virtio channel ``org.qemu.guest_agent.0`` is added when missing (libvirt
  picks the socket path), since virthost's guest monitoring and graceful shutdown use it.
* The ``ovirt-vm`` metadata element exists afterwards, so recovery can tell the VM is ours.

Optionally ``emulator`` and ``machine`` replace the engine's (an engine for RHEL hosts writes
``/usr/libexec/qemu-kvm`` and ``pc-i440fx-rhel7.x`` machine types other distributions lack).

Pure: the input is not modified and libvirt is not contacted.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from virthost.common import errors, validate
from virthost.virt.domxml import xmlutil
from virthost.virt.domxml.devices import GUEST_AGENT_CHANNEL
from virthost.virt.domxml.metadata import find_vm_element, write_metadata
from virthost.virt.domxml.model import DomainXml
from virthost.virt.domxml.params import absolute_path

DOMAIN_TYPES = ("kvm", "qemu")
MAX_TCG_CACHE_MIB = 65536
# <cpu> children that name or tune a CPU model; topology, numa and cache stay.
_CPU_MODEL_CHILDREN = ("model", "vendor", "feature")
_CPU_MODEL_ATTRS = ("mode", "match", "check", "migratable")
_HOST_CPU_MODES = ("host-passthrough", "host-model")


def prepare_for_host(
    dom: DomainXml,
    *,
    domain_type: str,
    tcg_cache_mib: int = 16,
    agent_channel: bool = True,
    emulator: str | None = None,
    machine: str | None = None,
    security_models: frozenset[str] | None = None,
) -> DomainXml:
    """A copy of ``dom`` ready to define on this host (see the module docstring)."""
    if domain_type not in DOMAIN_TYPES:
        raise errors.InvalidParameter(
            f"domain_type={domain_type!r}: must be one of {', '.join(DOMAIN_TYPES)}",
            param="domain_type",
        )
    if (
        isinstance(tcg_cache_mib, bool)
        or not isinstance(tcg_cache_mib, int)
        or not 1 <= tcg_cache_mib <= MAX_TCG_CACHE_MIB
    ):
        raise errors.InvalidParameter(
            f"tcg_cache_mib={tcg_cache_mib!r}: not 1..{MAX_TCG_CACHE_MIB}", param="tcg_cache_mib"
        )
    prepared = dom.copy()
    root = prepared.root
    prepared.domain_type = domain_type
    if domain_type == "qemu":
        _set_tcg_cache(root, tcg_cache_mib)
        _make_cpu_tcg_safe(root)
        _widen_address_space(root)
    else:
        _drop_tcg_features(root)
    if emulator is not None:
        _set_emulator(_devices(root), absolute_path(emulator, "emulator"))
    if machine is not None:
        xmlutil.ensure_child(xmlutil.ensure_child(root, "os"), "type").set(
            "machine", validate.safe_name(machine, "machine")
        )
    if security_models is not None:
        _drop_foreign_seclabels(root, security_models)
    if agent_channel and not prepared.devices.has_guest_agent_channel:
        _add_agent_channel(_devices(root))
    if find_vm_element(root) is None:
        write_metadata(root, prepared.metadata)
    return prepared


def _set_tcg_cache(root: ET.Element, mib: int) -> None:
    features = xmlutil.ensure_child(root, "features")
    tcg = features.find("tcg")
    if tcg is None:
        tcg = ET.Element("tcg")
        ET.SubElement(tcg, "tb-cache")
        xmlutil.insert_child(features, len(features), tcg)
    cache = xmlutil.ensure_child(tcg, "tb-cache")
    cache.text = str(mib)
    cache.attrib.clear()
    cache.set("unit", "MiB")


def _drop_tcg_features(root: ET.Element) -> None:
    features = root.find("features")
    if features is not None:
        for tcg in features.findall("tcg"):
            features.remove(tcg)


def _make_cpu_tcg_safe(root: ET.Element) -> None:
    cpu = root.find("cpu")
    if cpu is None:
        return
    mode = cpu.get("mode", "custom")
    if mode in _HOST_CPU_MODES:
        for attr in _CPU_MODEL_ATTRS:
            cpu.attrib.pop(attr, None)
        for child in list(cpu):
            # cache/maxphysaddr mode='passthrough' are only valid with host-passthrough
            passthrough = (
                child.tag in ("cache", "maxphysaddr") and child.get("mode") == "passthrough"
            )
            if child.tag in _CPU_MODEL_CHILDREN or passthrough:
                cpu.remove(child)
        if len(cpu) == 0 and not cpu.attrib:
            root.remove(cpu)
    elif mode == "custom" and cpu.find("model") is not None:
        cpu.set("check", "none")


def _widen_address_space(root: ET.Element) -> None:
    """Give a TCG guest the physical address bits its ``<maxMemory>`` needs.

    Distribution machine types take the host's address width; upstream ``pc``/``q35`` under
    TCG emulate 40 bits, too few for an engine's memory hot-plug ceiling (often terabytes).
    """
    limit = xmlutil.memory_kib(root.find("maxMemory"))
    if not limit:
        return
    cpu = root.find("cpu")
    if cpu is not None and cpu.find("maxphysaddr") is not None:
        return
    needed = (2 * limit * 1024 + 64 * 1024**3).bit_length()
    bits = min(52, max(40, needed))
    if cpu is None:
        cpu = ET.Element("cpu")
        position = len(root)
        for index, child in enumerate(root):
            if child.tag in ("devices", "clock", "on_poweroff", "features"):
                position = min(position, index)
        xmlutil.insert_child(root, position, cpu)
    physaddr = ET.Element("maxphysaddr", mode="emulate", bits=str(bits))
    xmlutil.insert_child(cpu, len(cpu), physaddr)


def _drop_foreign_seclabels(root: ET.Element, models: frozenset[str]) -> None:
    """Drop ``<seclabel>`` elements for security drivers this host does not run (SELinux on
    a host without it): libvirt refuses the whole domain otherwise."""
    for parent in root.iter():
        for label in list(parent.findall("seclabel")):
            model = label.get("model")
            if model and model not in models:
                parent.remove(label)


def _devices(root: ET.Element) -> ET.Element:
    return xmlutil.ensure_child(root, "devices")


def _set_emulator(devices: ET.Element, path: str) -> None:
    element = devices.find("emulator")
    if element is None:
        element = ET.Element("emulator")
        xmlutil.insert_child(devices, 0, element)
    element.text = path


def _add_agent_channel(devices: ET.Element) -> None:
    channel = ET.Element("channel", type="unix")
    xmlutil.sub(channel, "source", mode="bind")
    xmlutil.sub(channel, "target", type="virtio", name=GUEST_AGENT_CHANNEL)
    position = len(devices)
    for index, child in enumerate(devices):
        if child.tag == "channel":
            position = index + 1
    xmlutil.insert_child(devices, position, channel)
