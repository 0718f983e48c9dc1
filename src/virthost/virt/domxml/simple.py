"""Building a domain from VDSM-style simple parameters, for people and test scripts.

The engine sends complete domain XML; a person trying virthost out, or a test booting the tiny
guest, would rather say ``{"vmId": ..., "vmName": "tiny", "memSize": 256, "drives": [...],
"kernel": ...}``. :func:`build_from_params` turns such parameters, in the spirit of VDSM's legacy
``VM.create`` keys, into the same :class:`DomainXml` an engine's XML parses to, so everything
after it (``prepare_for_host``, define, start) is shared.

Every value is checked before it reaches the tree (UUID, safe names, absolute normalised paths,
MAC addresses, numbers in range) and the tree is built with ElementTree only, so no parameter
can add markup. The result is deterministic: a generated MAC derives from the VM's UUID and the
NIC's index, so the same parameters always give the same XML.

A drive names a file by ``path`` or a storage volume by ``poolID``, ``domainID``, ``imageID``
and ``volumeID``; the latter gets no ``<source>`` here but the disk metadata entry an engine
would send (:mod:`.volumes`), and preparing the volume fills in the path before the start.

Defaults: 256 MiB, 1 vCPU, machine ``pc``, no display, a virtio balloon reporting stats every
5 s, a serial console on a pty (or appended to ``consoleLog``). The domain type is ``kvm``, as
in an engine's XML; ``prepare_for_host`` switches it to ``qemu`` where the host runs TCG and
adds the guest agent channel. Unknown keys are ignored, as VDSM does.
"""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

from virthost.common import errors, validate
from virthost.virt.domxml import params as p
from virthost.virt.domxml.metadata import VmMetadata, write_metadata
from virthost.virt.domxml.model import DomainXml
from virthost.virt.domxml.volumes import VolumeRef, record_volume
from virthost.virt.domxml.xmlutil import check_name, sub

DEFAULT_EMULATOR = "/usr/bin/qemu-system-x86_64"
DEFAULT_MACHINE = "pc"
DEFAULT_MEM_MIB = 256
MAX_MEM_MIB = 16 * 1024 * 1024
MAX_VCPUS = 255
BALLOON_STATS_PERIOD = 5
GENERATED_MAC_PREFIX = "56:6f"  # locally administered, unicast

_DISK_BUSES = ("virtio", "ide", "sata")
_TARGET_PREFIX = {"virtio": "vd", "ide": "hd", "sata": "sd"}
_MAX_IDE_DEVICES = 4  # two IDE buses with two units each
_NIC_MODELS = ("virtio", "e1000", "rtl8139")
_DISPLAYS = ("none", "vnc", "spice")


def build_from_params(params: Mapping[str, Any]) -> DomainXml:
    """A domain from simple parameters; MissingParameter/InvalidParameter name the culprit."""
    params = p.mapping(params, "vmParams")
    vm_id = validate.uuid(p.required(params, "vmId"), "vmId")
    vm_name = validate.safe_name(p.required(params, "vmName"), "vmName")
    mem_mib = p.integer(
        _opt(params, "memSize", DEFAULT_MEM_MIB), "memSize", minimum=1, maximum=MAX_MEM_MIB
    )
    vcpus = p.integer(_opt(params, "smp", 1), "smp", minimum=1, maximum=MAX_VCPUS)
    machine = validate.safe_name(_opt(params, "machine", DEFAULT_MACHINE), "machine")
    emulator = p.absolute_path(_opt(params, "emulator", DEFAULT_EMULATOR), "emulator")

    root = ET.Element("domain", type="kvm")
    sub(root, "name", vm_name)
    sub(root, "uuid", vm_id)
    sub(root, "memory", str(mem_mib), unit="MiB")
    sub(root, "currentMemory", str(mem_mib), unit="MiB")
    sub(root, "vcpu", str(vcpus))
    _os(sub(root, "os"), params, machine)
    sub(sub(root, "features"), "acpi")
    sub(root, "clock", offset="utc")
    sub(root, "on_poweroff", "destroy")
    sub(root, "on_reboot", "restart")
    sub(root, "on_crash", "destroy")

    devices = sub(root, "devices")
    sub(devices, "emulator", emulator)
    volume_drives = _drives(devices, p.sequence(_opt(params, "drives", []), "drives"))
    sub(devices, "controller", type="usb", model="none")
    _nics(devices, p.sequence(_opt(params, "nics", []), "nics"), vm_id)
    _console(devices, params.get("consoleLog"))
    _display(devices, _opt(params, "display", "none"))
    _balloon(devices, _opt(params, "balloon", "virtio"))

    metadata = VmMetadata(
        launch_paused=p.boolean(_opt(params, "launchPaused", False), "launchPaused"),
        custom={
            check_name(key, f"custom.{key}"): value
            for key, value in p.string_dict(_opt(params, "custom", {}), "custom").items()
        },
    )
    for target, ref in volume_drives:
        record_volume(metadata, target, ref, ())
    write_metadata(root, metadata)
    ET.indent(root, space="  ")
    return DomainXml(root)


def _opt(params: Mapping[str, Any], key: str, default: Any) -> Any:
    """``params[key]``, or ``default`` when it is absent or null."""
    value = params.get(key)
    return default if value is None else value


def _os(os_element: ET.Element, params: Mapping[str, Any], machine: str) -> None:
    sub(os_element, "type", "hvm", arch="x86_64", machine=machine)
    kernel = params.get("kernel")
    for key in ("initrd", "kernelArgs"):
        if params.get(key) is not None and kernel is None:
            raise errors.InvalidParameter(f"{key} needs kernel (direct kernel boot)", param=key)
    if kernel is None:
        sub(os_element, "boot", dev="hd")
        return
    sub(os_element, "kernel", p.absolute_path(kernel, "kernel"))
    if params.get("initrd") is not None:
        sub(os_element, "initrd", p.absolute_path(params["initrd"], "initrd"))
    if params.get("kernelArgs") is not None:
        sub(os_element, "cmdline", p.text(params["kernelArgs"], "kernelArgs"))


def _drives(devices: ET.Element, drives: list[Any]) -> list[tuple[str, VolumeRef]]:
    """Add the drives; returns the (target, volume) of those given by storage ids.

    A drive naming a volume (``poolID``, ``domainID``, ``imageID``, ``volumeID``) has no path
    yet: preparing the volume gives it one before the domain is defined.
    """
    used: dict[str, int] = {}
    volumes: list[tuple[str, VolumeRef]] = []
    for index, raw in enumerate(drives):
        name = f"drives[{index}]"
        drive = p.mapping(raw, name)
        device = p.choice(_opt(drive, "device", "disk"), f"{name}.device", ("disk", "cdrom"))
        default_bus = "virtio" if device == "disk" else "ide"
        bus = p.choice(_opt(drive, "iface", default_bus), f"{name}.iface", _DISK_BUSES)
        if device == "cdrom" and bus == "virtio":
            raise errors.InvalidParameter(f"{name}.iface: a cdrom cannot be virtio", param=name)
        fmt = p.choice(_opt(drive, "format", "raw"), f"{name}.format", ("raw", "qcow2"))
        readonly = p.boolean(_opt(drive, "readonly", device == "cdrom"), f"{name}.readonly")
        path = drive.get("path")
        ref = _volume_of(drive, name) if device == "disk" else None
        if ref is not None:
            if path is not None:
                raise errors.InvalidParameter(
                    f"{name}: give a path or storage ids, not both", param=f"{name}.path"
                )
        elif device == "disk" or path not in (None, ""):
            path = p.absolute_path(p.required(drive, "path", f"{name}.path"), f"{name}.path")
        block = isinstance(path, str) and path.startswith("/dev/")

        disk = sub(devices, "disk", type="block" if block else "file", device=device)
        sub(disk, "driver", name="qemu", type=fmt)
        if isinstance(path, str) and path:
            sub(disk, "source", **{"dev" if block else "file": path})
        target = _target(bus, used, name)
        sub(disk, "target", dev=target, bus=bus)
        if readonly:
            sub(disk, "readonly")
        if ref is not None:
            volumes.append((target, ref))
    return volumes


def _volume_of(drive: Mapping[str, Any], name: str) -> VolumeRef | None:
    if all(drive.get(key) is None for key in ("domainID", "imageID", "volumeID")):
        return None
    return VolumeRef.from_wire(drive, name)


def _target(bus: str, used: dict[str, int], name: str) -> str:
    count = used.get(bus, 0)
    if bus == "ide" and count >= _MAX_IDE_DEVICES:
        raise errors.InvalidParameter(f"{name}: at most {_MAX_IDE_DEVICES} IDE drives", param=name)
    used[bus] = count + 1
    return _TARGET_PREFIX[bus] + _drive_letters(count)


def _drive_letters(index: int) -> str:
    """0 -> a, 25 -> z, 26 -> aa: the Linux block device naming libvirt follows."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("a") + rest) + letters
    return letters


def _nics(devices: ET.Element, nics: list[Any], vm_id: str) -> None:
    for index, raw in enumerate(nics):
        name = f"nics[{index}]"
        nic = p.mapping(raw, name)
        sources = [key for key in ("bridge", "network") if nic.get(key) is not None]
        kind = nic.get("type")
        if kind == "user":
            sources.append("type")
        elif kind not in (None, *sources):
            raise errors.InvalidParameter(
                f"{name}.type={kind!r}: must be 'user' or match the source given", param=name
            )
        if len(sources) != 1:
            raise errors.InvalidParameter(
                f"{name}: needs exactly one of bridge, network or type 'user'", param=name
            )
        if nic.get("macAddr") is None:
            mac = _generated_mac(vm_id, index)
        else:
            mac = p.mac_address(nic["macAddr"], f"{name}.macAddr")
        model = p.choice(_opt(nic, "nicModel", "virtio"), f"{name}.nicModel", _NIC_MODELS)

        source = sources[0]
        interface = sub(devices, "interface", type="user" if source == "type" else source)
        sub(interface, "mac", address=mac)
        if source != "type":
            sub(
                interface, "source", **{source: validate.safe_name(nic[source], f"{name}.{source}")}
            )
        sub(interface, "model", type=model)


def _generated_mac(vm_id: str, index: int) -> str:
    digest = hashlib.sha256(f"{vm_id}/{index}".encode()).digest()
    return ":".join([GENERATED_MAC_PREFIX, *(f"{b:02x}" for b in digest[:4])])


def _console(devices: ET.Element, console_log: object) -> None:
    if console_log is None:
        sub(sub(devices, "serial", type="pty"), "target", port="0")
        sub(sub(devices, "console", type="pty"), "target", type="serial", port="0")
        return
    path = p.absolute_path(console_log, "consoleLog")
    for tag in ("serial", "console"):
        element = sub(devices, tag, type="file")
        sub(element, "source", path=path, append="on")
        if tag == "serial":
            sub(element, "target", port="0")
        else:
            sub(element, "target", type="serial", port="0")


def _display(devices: ET.Element, display: object) -> None:
    kind = p.choice(display, "display", _DISPLAYS)
    if kind != "none":
        # like the engine: password authentication on, with an expired password, so that
        # VM.setTicket can open the display later (QEMU cannot turn it on at run time)
        sub(
            devices,
            "graphics",
            type=kind,
            autoport="yes",
            passwd="*****",
            passwdValidTo="1970-01-01T00:00:01",
        )


def _balloon(devices: ET.Element, balloon: object) -> None:
    model = p.choice(balloon, "balloon", ("virtio", "none"))
    element = sub(devices, "memballoon", model=model)
    if model == "virtio":
        sub(element, "stats", period=str(BALLOON_STATS_PERIOD))
