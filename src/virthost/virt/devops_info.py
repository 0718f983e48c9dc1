"""VM.getInfo and the answers of the device verbs: a VDSM-style VM definition.

The engine reads a VM's configuration from VDSM as a flat record (``vmId``, ``memSize``,
``smp``, ``display``...) with a ``devices`` list of small dicts (``{"type": "disk",
"device": "cdrom", "path": ...}``), the legacy "VM conf" it still uses to show device state
after a change. virthost keeps no such conf: libvirt's live XML is the truth, so the record is
derived from it on each call, and what the XML does not say is left out rather than guessed.

Values follow VDSM's conventions where the engine depends on them: ``smp`` and ports are
strings, ``memSize`` is MiB, qcow2 is ``cow``, the SPICE display is ``qxl``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from virthost.common import errors
from virthost.virt.domxml import xmlutil
from virthost.virt.vm import Vm

_FORMATS = {"qcow2": "cow", "raw": "raw"}
_DISPLAYS = {"spice": "qxl", "vnc": "vnc"}


def vm_definition(vm: Vm, xml: str) -> dict[str, Any]:
    """The VM as the engine's getInfo expects it, from ``xml`` (the live or last known XML)."""
    info: dict[str, Any] = {
        "vmId": vm.id,
        "vmName": vm.name,
        **vm.status_report(),
        "vmType": "kvm",
        "custom": dict(vm.custom),
        "launchPaused": str(vm.launch_paused).lower(),
        "startTime": vm.start_time,
        "guestAgentConnected": vm.guest_agent_connected,
    }
    if not xml:
        return info
    try:
        root = xmlutil.parse(xml, "domain XML")
    except errors.VirtHostError:
        return info
    info.update(_domain(root))
    devices_element = root.find("devices")
    devices = [] if devices_element is None else list(devices_element)
    info["devices"] = [_device(child) for child in devices if child.tag != "emulator"]
    graphics = [child for child in devices if child.tag == "graphics"]
    info["displayInfo"] = [_display_info(g) for g in graphics]
    if graphics:
        first = graphics[0]
        info["display"] = _DISPLAYS.get(first.get("type") or "", first.get("type") or "")
        info["displayIp"] = _listen_address(first)
        info["displayPort"] = first.get("port", "-1")
        info["displaySecurePort"] = first.get("tlsPort", "-1")
    return info


def _domain(root: ET.Element) -> dict[str, Any]:
    found: dict[str, Any] = {"kvmEnable": str(root.get("type") == "kvm").lower()}
    memory = xmlutil.memory_kib(root.find("memory"))
    if memory is not None:
        found["memSize"] = memory // 1024
    current = xmlutil.memory_kib(root.find("currentMemory"))
    if current is not None:
        found["balloonTarget"] = str(current)
    vcpu = root.find("vcpu")
    if vcpu is not None:
        maximum = xmlutil.to_int(vcpu.text) or 1
        found["smp"] = str(xmlutil.to_int(vcpu.get("current")) or maximum)
        found["maxVCpus"] = str(maximum)
    os_type = root.find("os/type")
    if os_type is not None and os_type.get("machine"):
        found["emulatedMachine"] = os_type.get("machine")
    found["acpiEnable"] = str(root.find("features/acpi") is not None).lower()
    return found


def _device(element: ET.Element) -> dict[str, Any]:
    reader = _READERS.get(element.tag)
    device = reader(element) if reader is not None else _generic(element)
    alias = element.find("alias")
    if alias is not None and alias.get("name"):
        device["alias"] = alias.get("name")
    address = element.find("address")
    if address is not None:
        device["address"] = dict(address.attrib)
    return device


def _disk(disk: ET.Element) -> dict[str, Any]:
    source = disk.find("source")
    target = disk.find("target")
    driver = disk.find("driver")
    serial = disk.find("serial")
    found: dict[str, Any] = {
        "type": "disk",
        "device": disk.get("device", "disk"),
        "diskType": disk.get("type", "file"),
        "path": "" if source is None else source.get("file") or source.get("dev") or "",
        "readonly": disk.find("readonly") is not None,
        "shared": disk.find("shareable") is not None,
    }
    if target is not None:
        found["name"] = target.get("dev", "")
        found["iface"] = target.get("bus", "")
    if driver is not None and driver.get("type"):
        found["format"] = _FORMATS.get(driver.get("type") or "", driver.get("type"))
    if serial is not None and serial.text:
        found["serial"] = serial.text
    return found


def _interface(nic: ET.Element) -> dict[str, Any]:
    found: dict[str, Any] = {"type": "interface", "device": nic.get("type", "")}
    mac = nic.find("mac")
    if mac is not None:
        found["macAddr"] = mac.get("address", "")
    model = nic.find("model")
    if model is not None:
        found["nicModel"] = model.get("type", "")
    source = nic.find("source")
    if source is not None:
        network = source.get("bridge") or source.get("network") or source.get("dev")
        if network:
            found["network"] = network
    target = nic.find("target")
    if target is not None and target.get("dev"):
        found["name"] = target.get("dev")
    link = nic.find("link")
    found["linkActive"] = link is None or link.get("state") != "down"
    return found


def _graphics(graphics: ET.Element) -> dict[str, Any]:
    found: dict[str, Any] = {"type": "graphics", "device": graphics.get("type", "")}
    for attribute, key in (("port", "port"), ("tlsPort", "tlsPort")):
        if graphics.get(attribute) is not None:
            found[key] = graphics.get(attribute)
    return found


def _balloon(balloon: ET.Element) -> dict[str, Any]:
    return {
        "type": "balloon",
        "device": "memballoon",
        "specParams": {"model": balloon.get("model", "none")},
    }


def _channel(channel: ET.Element) -> dict[str, Any]:
    target = channel.find("target")
    found: dict[str, Any] = {"type": "channel", "device": channel.get("type", "")}
    if target is not None and target.get("name"):
        found["name"] = target.get("name")
    return found


def _generic(element: ET.Element) -> dict[str, Any]:
    """Any other device: its kind and what libvirt calls its type or model."""
    model = element.find("model")
    kind = element.get("type") or element.get("model")
    if kind is None and model is not None:
        kind = model.get("type")
    found: dict[str, Any] = {"type": element.tag, "device": kind or element.tag}
    if element.tag == "controller" and element.get("index") is not None:
        found["index"] = element.get("index")
    return found


_READERS = {
    "disk": _disk,
    "interface": _interface,
    "graphics": _graphics,
    "memballoon": _balloon,
    "channel": _channel,
}


def _display_info(graphics: ET.Element) -> dict[str, Any]:
    return {
        "type": graphics.get("type", ""),
        "port": graphics.get("port", "-1"),
        "tlsPort": graphics.get("tlsPort", "-1"),
        "ipAddress": _listen_address(graphics),
    }


def _listen_address(graphics: ET.Element) -> str:
    listen = graphics.find("listen")
    if listen is not None and listen.get("address"):
        return listen.get("address") or "0"
    return graphics.get("listen") or "0"
