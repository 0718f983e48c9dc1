"""Device XML for the VM device verbs: what the engine sends in, what libvirt gets.

The device verbs (VM.changeCD, VM.hotplugDisk, VM.hotplugNic, VM.setTicket...) take a device
either as engine-style XML (``<hotplug><devices><disk>...</disk></devices></hotplug>``) or as
a small VDSM-style dict (``{"path": ..., "iface": "virtio"}``). Both end up here as one
ElementTree element, so the service code handles a single form.

Three rules, for the same reasons as in :mod:`virthost.virt.domxml`:

* Wire values reach XML only through ElementTree (which escapes them) after being checked
  (absolute normalised paths, MAC addresses, target names, ``ua-`` aliases); no string is
  ever formatted into markup.
* Live devices are found by comparing values (alias, target, MAC), never with an XPath built
  from wire values.
* A changed or removed device is given to libvirt as a *copy of the live element* (with one
  thing changed: the medium, the password): libvirt matches it on target, bus, alias, MAC and
  address, and everything the request did not mention must stay as it is.

Nothing here talks to libvirt.
"""

from __future__ import annotations

import copy
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass

from virthost.common import errors, validate
from virthost.virt.domxml import params as p
from virthost.virt.domxml import xmlutil

# bus -> the prefix of libvirt's target names on it (the guest kernel names disks itself)
DISK_BUSES = {"virtio": "vd", "scsi": "sd", "sata": "sd", "usb": "sd", "ide": "hd", "fdc": "fd"}
# VDSM calls qcow2 "cow"
DISK_FORMATS = {"raw": "raw", "qcow2": "qcow2", "cow": "qcow2"}
# VDSM calls virtio "pv"
NIC_MODELS = {"virtio": "virtio", "pv": "virtio", "e1000": "e1000", "rtl8139": "rtl8139"}
MEDIA_DEVICES = ("cdrom", "floppy")
VOLUME_KEYS = ("domainID", "imageID", "volumeID", "poolID")
CONNECTED_ACTIONS = ("disconnect", "fail", "keep")

_TARGET = re.compile(r"(vd|sd|hd|fd)[a-z]{1,3}")
_USER_ALIAS = re.compile(r"ua-[A-Za-z0-9_.-]{1,120}")
_SERIAL_MAX = 20  # what virtio-blk passes to the guest
_WRAPPERS = ("hotplug", "hotunplug", "domain")


# --- requests from the wire --------------------------------------------------------------


def device_from_xml(xml: object, tag: str) -> ET.Element:
    """The single ``<tag>`` element in an engine's hotplug XML (or a bare ``<tag>``)."""
    if not isinstance(xml, str):
        raise errors.InvalidParameter("params.xml: not a string", param="xml")
    try:
        root = xmlutil.parse(xml, "device XML")
    except errors.CannotCreateVM as e:
        raise errors.InvalidParameter(f"params.xml: {e.detail}", param="xml") from None
    if root.tag == tag:
        found = [root]
    elif root.tag in _WRAPPERS:
        found = root.findall(f"devices/{tag}")
    else:
        raise errors.InvalidParameter(
            f"params.xml: root element <{root.tag}> is none of <{tag}>, <hotplug>, <hotunplug>",
            param="xml",
        )
    if len(found) != 1:
        raise errors.InvalidParameter(
            f"params.xml must hold exactly one <{tag}> device, found {len(found)}", param="xml"
        )
    element = found[0]
    element.tail = None
    return element


def device_from_params(params: object, tag: str, key: str, *, plug: bool) -> ET.Element:
    """The device of a hot(un)plug request: ``params.xml`` or the dict ``params[key]``."""
    request = p.mapping(params, "params")
    if request.get("xml") is not None:
        return device_from_xml(request["xml"], tag)
    spec = request.get(key)
    if spec is None:
        raise errors.MissingParameter(f"params.xml or params.{key}", param="params")
    spec = p.mapping(spec, f"params.{key}")
    if tag == "disk":
        return disk_from_drive(spec) if plug else _disk_selector(spec)
    return nic_from_dict(spec) if plug else _nic_selector(spec)


def disk_from_drive(drive: Mapping[str, object]) -> ET.Element:
    """``<disk>`` from a VDSM-style drive dict: path, format, iface, target, readonly..."""
    path = validate.absolute_path(p.required(drive, "path", "drive.path"), "drive.path")
    iface = p.choice(_opt(drive, "iface", "virtio"), "drive.iface", tuple(DISK_BUSES))
    fmt = DISK_FORMATS[p.choice(_opt(drive, "format", "raw"), "drive.format", tuple(DISK_FORMATS))]
    readonly = p.boolean(_opt(drive, "readonly", False), "drive.readonly")
    block = path.startswith("/dev/")
    disk = ET.Element("disk", type="block" if block else "file", device="disk")
    xmlutil.sub(disk, "driver", name="qemu", type=fmt)
    xmlutil.sub(disk, "source", **{"dev" if block else "file": path})
    target = _target_of(drive)
    if target is not None:
        xmlutil.sub(disk, "target", dev=target, bus=iface)
    else:
        xmlutil.sub(disk, "target", bus=iface)  # named by assign_target
    if drive.get("serial") is not None:
        xmlutil.sub(
            disk, "serial", validate.safe_name(drive["serial"], "drive.serial", _SERIAL_MAX)
        )
    if readonly:
        xmlutil.sub(disk, "readonly")
    _add_alias(disk, drive, "drive.alias")
    return disk


def nic_from_dict(nic: Mapping[str, object]) -> ET.Element:
    """``<interface>`` from a VDSM-style NIC dict: macAddr, bridge/network/user, nicModel."""
    mac = p.mac_address(p.required(nic, "macAddr", "nic.macAddr"), "nic.macAddr")
    model = NIC_MODELS[p.choice(_opt(nic, "nicModel", "virtio"), "nic.nicModel", tuple(NIC_MODELS))]
    sources = [key for key in ("bridge", "network") if nic.get(key) is not None]
    kind = nic.get("type")
    if kind == "user":
        sources.append("user")
    elif kind not in (None, "interface", *sources):
        raise errors.InvalidParameter(
            f"nic.type={kind!r}: must be 'user' or match the source given", param="nic.type"
        )
    if len(sources) != 1:
        raise errors.InvalidParameter(
            "nic: needs exactly one of bridge, network or type 'user'", param="nic"
        )
    source = sources[0]
    interface = ET.Element("interface", type=source)
    xmlutil.sub(interface, "mac", address=mac)
    if source != "user":
        name = validate.safe_name(nic[source], f"nic.{source}")
        xmlutil.sub(interface, "source", **{source: name})
    xmlutil.sub(interface, "model", type=model)
    if nic.get("linkActive") is not None:
        up = p.boolean(nic["linkActive"], "nic.linkActive")
        xmlutil.sub(interface, "link", state="up" if up else "down")
    _add_alias(interface, nic, "nic.alias")
    return interface


def _disk_selector(drive: Mapping[str, object]) -> ET.Element:
    """A ``<disk>`` naming an existing disk by alias, target or path (hot-unplug)."""
    disk = ET.Element("disk")
    target = _target_of(drive)
    if target is not None:
        xmlutil.sub(disk, "target", dev=target)
    if drive.get("path") is not None:
        xmlutil.sub(disk, "source", file=validate.absolute_path(drive["path"], "drive.path"))
    _add_alias(disk, drive, "drive.alias")
    return disk


def _nic_selector(nic: Mapping[str, object]) -> ET.Element:
    """An ``<interface>`` naming an existing NIC by alias or MAC (hot-unplug)."""
    interface = ET.Element("interface")
    if nic.get("macAddr") is not None:
        xmlutil.sub(interface, "mac", address=p.mac_address(nic["macAddr"], "nic.macAddr"))
    _add_alias(interface, nic, "nic.alias")
    return interface


@dataclass(frozen=True)
class MediaRequest:
    """VM.changeCD/changeFloppy: the new medium (None ejects) and which drive, if named."""

    path: str | None
    target: str | None = None


def media_request(spec: object) -> MediaRequest:
    """A DriveSpec: a path string, or a dict with ``path`` (and ``iface``/``index``)."""
    if isinstance(spec, str):
        return MediaRequest(_medium_path(spec))
    if not isinstance(spec, Mapping):
        raise errors.InvalidParameter("driveSpec: not a path or an object", param="driveSpec")
    if spec.get("path") is None:
        if any(spec.get(key) for key in VOLUME_KEYS):
            raise errors.UnsupportedOperation(
                "driveSpec names a storage volume; only plain paths are supported for media"
            )
        raise errors.MissingParameter("driveSpec.path", param="driveSpec.path")
    target = None
    if spec.get("iface") is not None and spec.get("index") is not None:
        bus = p.choice(spec["iface"], "driveSpec.iface", tuple(DISK_BUSES))
        index = p.integer(spec["index"], "driveSpec.index", minimum=0, maximum=701)
        target = DISK_BUSES[bus] + drive_letters(index)
    return MediaRequest(_medium_path(spec["path"]), target)


def _medium_path(value: object) -> str | None:
    if value == "":
        return None
    return validate.absolute_path(value, "driveSpec.path")


def _target_of(spec: Mapping[str, object]) -> str | None:
    value = spec.get("target", spec.get("name"))
    if value is None:
        return None
    if not isinstance(value, str) or not _TARGET.fullmatch(value):
        raise errors.InvalidParameter(
            f"drive target {value!r}: not a disk name like vdb or sdc", param="drive.target"
        )
    return value


def _add_alias(element: ET.Element, spec: Mapping[str, object], name: str) -> None:
    alias = spec.get("alias")
    if alias is None:
        return
    if not isinstance(alias, str) or not _USER_ALIAS.fullmatch(alias):
        raise errors.InvalidParameter(
            f"{name}={alias!r}: user aliases look like ua-<id> (letters, digits, '._-')",
            param=name,
        )
    xmlutil.sub(element, "alias", name=alias)


def _opt(spec: Mapping[str, object], key: str, default: str | bool) -> object:
    value = spec.get(key)
    return default if value is None else value


# --- the live domain ---------------------------------------------------------------------


def drive_letters(index: int) -> str:
    """0 -> a, 25 -> z, 26 -> aa (the Linux block device naming libvirt follows)."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("a") + rest) + letters
    return letters


def assign_target(disk: ET.Element, live: ET.Element) -> str:
    """Give ``disk`` the first free name on its bus (when it has none); return the name."""
    target = disk.find("target")
    if target is None:
        raise errors.InvalidParameter("the disk has no <target>", param="xml")
    name = target.get("dev")
    if name:
        return name
    bus = target.get("bus") or "virtio"
    if bus not in DISK_BUSES:
        raise errors.InvalidParameter(f"disk bus {bus!r} is not supported", param="xml")
    used = {target_dev(d) for d in live.iterfind("devices/disk")}
    index = 0
    while DISK_BUSES[bus] + drive_letters(index) in used:
        index += 1
    name = DISK_BUSES[bus] + drive_letters(index)
    target.set("dev", name)
    return name


def target_dev(disk: ET.Element) -> str | None:
    target = disk.find("target")
    return None if target is None else target.get("dev")


def alias_of(device: ET.Element) -> str | None:
    alias = device.find("alias")
    return None if alias is None else alias.get("name")


def mac_of(interface: ET.Element) -> str | None:
    mac = interface.find("mac")
    address = None if mac is None else mac.get("address")
    return None if address is None else address.lower()


def source_path(disk: ET.Element) -> str | None:
    source = disk.find("source")
    if source is None:
        return None
    return source.get("file") or source.get("dev")


def find_disk(live: ET.Element, selector: ET.Element) -> ET.Element | None:
    """The live disk ``selector`` means: by alias, else target, else source path."""
    disks = live.findall("devices/disk")
    alias, target, path = alias_of(selector), target_dev(selector), source_path(selector)
    if alias:
        return next((d for d in disks if alias_of(d) == alias), None)
    if target:
        return next((d for d in disks if target_dev(d) == target), None)
    if path:
        return next((d for d in disks if source_path(d) == path), None)
    raise errors.InvalidParameter("the disk is named by none of alias, target, path", param="xml")


def find_interface(live: ET.Element, selector: ET.Element) -> ET.Element | None:
    """The live NIC ``selector`` means: by alias, else MAC address."""
    nics = live.findall("devices/interface")
    alias, mac = alias_of(selector), mac_of(selector)
    if alias:
        return next((n for n in nics if alias_of(n) == alias), None)
    if mac:
        return next((n for n in nics if mac_of(n) == mac), None)
    raise errors.InvalidParameter("the NIC is named by neither alias nor MAC", param="xml")


def find_media(live: ET.Element, device: str, target: str | None) -> ET.Element | None:
    """The first ``cdrom``/``floppy`` drive, or the one at ``target``."""
    for disk in live.iterfind("devices/disk"):
        if disk.get("device") == device and (target is None or target_dev(disk) == target):
            return disk
    return None


def has_device(live: ET.Element, tag: str, key: str) -> bool:
    """Whether a disk with target ``key`` (or NIC with MAC ``key``) is in ``live``."""
    if tag == "disk":
        return any(target_dev(d) == key for d in live.iterfind("devices/disk"))
    return any(mac_of(n) == key for n in live.iterfind("devices/interface"))


def with_medium(live_disk: ET.Element, path: str | None) -> ET.Element:
    """A copy of the live cdrom/floppy with ``path`` as its medium (no medium: None)."""
    disk = copy.deepcopy(live_disk)
    disk.tail = None
    for child in list(disk):
        if child.tag in ("source", "backingStore"):
            disk.remove(child)
    if path is not None:
        block = path.startswith("/dev/")
        disk.set("type", "block" if block else "file")
        driver = disk.find("driver")
        index = 0 if driver is None else list(disk).index(driver) + 1
        disk.insert(index, ET.Element("source", {"dev" if block else "file": path}))
    return disk


def with_ticket(
    live_graphics: ET.Element, password: str, valid_to: str | None, connected: str
) -> ET.Element:
    """A copy of the live ``<graphics>`` with a new password valid until ``valid_to`` (UTC)."""
    graphics = copy.deepcopy(live_graphics)
    graphics.tail = None
    graphics.set("passwd", xmlutil.check_text(password, "password"))
    if valid_to is None:
        graphics.attrib.pop("passwdValidTo", None)
    else:
        graphics.set("passwdValidTo", valid_to)
    if connected not in CONNECTED_ACTIONS:
        raise errors.InvalidParameter(
            f"existingConnAction={connected!r}: must be one of {', '.join(CONNECTED_ACTIONS)}",
            param="existingConnAction",
        )
    # VNC knows only 'keep'; SPICE can also disconnect or refuse connected clients.
    if graphics.get("type") == "spice":
        graphics.set("connected", connected)
    return graphics


def has_display(live: ET.Element) -> bool:
    """Whether the guest has a screen: a graphics device or a video card."""
    if live.find("devices/graphics") is not None:
        return True
    for video in live.iterfind("devices/video"):
        model = video.find("model")
        if model is None or model.get("type") != "none":
            return True
    return False


def tostring(element: ET.Element) -> str:
    return xmlutil.tostring(element)


def parse_live(xml: str) -> ET.Element:
    """libvirt's XMLDesc output (trusted, but refused all the same if it has a DTD)."""
    return xmlutil.parse(xml, "live domain XML")
