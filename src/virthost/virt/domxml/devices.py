"""Typed views of the ``<devices>`` a VM's life depends on, read from the domain tree.

Each class is named after its libvirt element and declares where each field lives
(``xml_field("source/@file", "source/@dev")``), in the style of virt-manager's ``virtinst``:
reading is one generic function, so a new field is one line. The views are frozen snapshots
taken on each access of :attr:`DomainXml.devices`; the tree stays the single source of truth
and everything not modelled here (addresses, seclabels, iotune, controllers, video...) is
simply left in it, untouched.

What is modelled is what the VM code needs: disk targets, paths and serials to prepare storage
and report disk stats; NIC MACs, aliases and tap names for network stats and metadata lookup;
graphics ports for ``displayInfo``; the guest agent channel; the balloon's stats period; and
console/serial log files.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from virthost.virt.domxml.xmlutil import from_element, to_int, xml_field, yes_no

GUEST_AGENT_CHANNEL = "org.qemu.guest_agent.0"


def _nonempty(text: str | None) -> str | None:
    return text if text else None


@dataclass(frozen=True, kw_only=True)
class Disk:
    """``<disk type= device=>``: a file, block device or network volume the guest sees."""

    device: str = xml_field("@device", convert=lambda t: t or "disk")
    type: str | None = xml_field("@type")
    path: str | None = xml_field(
        "source/@file", "source/@dev", "source/@dir", "source/@volume", convert=_nonempty
    )
    protocol: str | None = xml_field("source/@protocol")
    network_name: str | None = xml_field("source/@name")
    startup_policy: str | None = xml_field("source/@startupPolicy")
    target_dev: str | None = xml_field("target/@dev")
    target_bus: str | None = xml_field("target/@bus")
    format: str | None = xml_field("driver/@type")
    cache: str | None = xml_field("driver/@cache")
    io: str | None = xml_field("driver/@io")
    error_policy: str | None = xml_field("driver/@error_policy")
    readonly: bool = xml_field("readonly", present=True)
    shareable: bool = xml_field("shareable", present=True)
    serial: str | None = xml_field("serial")
    boot_order: int | None = xml_field("boot/@order", convert=to_int)
    alias: str | None = xml_field("alias/@name")


@dataclass(frozen=True, kw_only=True)
class Interface:
    """``<interface type=>``: bridge, network, user, direct (macvtap), vhostuser..."""

    type: str | None = xml_field("@type")
    mac: str | None = xml_field("mac/@address")
    source_bridge: str | None = xml_field("source/@bridge")
    source_network: str | None = xml_field("source/@network")
    source_dev: str | None = xml_field("source/@dev")
    model: str | None = xml_field("model/@type")
    target_dev: str | None = xml_field("target/@dev")
    link_state: str | None = xml_field("link/@state")
    filter: str | None = xml_field("filterref/@filter")
    alias: str | None = xml_field("alias/@name")


@dataclass(frozen=True, kw_only=True)
class Graphics:
    """``<graphics type='vnc|spice'>``; ports are -1 or absent until libvirt assigns them."""

    type: str | None = xml_field("@type")
    port: int | None = xml_field("@port", convert=to_int)
    tls_port: int | None = xml_field("@tlsPort", convert=to_int)
    autoport: bool | None = xml_field("@autoport", convert=yes_no)
    listen_type: str | None = xml_field("listen/@type")
    listen_address: str | None = xml_field("listen/@address", "@listen")
    listen_network: str | None = xml_field("listen/@network")


@dataclass(frozen=True, kw_only=True)
class Channel:
    """``<channel>``: virtio-serial ports such as the qemu-guest-agent's."""

    type: str | None = xml_field("@type")
    target_type: str | None = xml_field("target/@type")
    target_name: str | None = xml_field("target/@name")
    source_mode: str | None = xml_field("source/@mode")
    source_path: str | None = xml_field("source/@path")
    state: str | None = xml_field("target/@state")
    alias: str | None = xml_field("alias/@name")


@dataclass(frozen=True, kw_only=True)
class Balloon:
    """``<memballoon model=>``; ``model='none'`` means no balloon device."""

    model: str | None = xml_field("@model")
    stats_period: int | None = xml_field("stats/@period", convert=to_int)
    alias: str | None = xml_field("alias/@name")


@dataclass(frozen=True, kw_only=True)
class CharDevice:
    """``<serial>`` or ``<console>`` (``kind``); ``type='file'`` logs to ``source_path``."""

    kind: str
    type: str | None = xml_field("@type")
    source_path: str | None = xml_field("source/@path")
    append: bool | None = xml_field("source/@append", convert=yes_no)
    target_type: str | None = xml_field("target/@type")
    target_port: int | None = xml_field("target/@port", convert=to_int)
    alias: str | None = xml_field("alias/@name")


@dataclass(frozen=True, kw_only=True)
class Devices:
    """A snapshot of the modelled devices, in document order."""

    emulator: str | None = None
    disks: tuple[Disk, ...] = ()
    interfaces: tuple[Interface, ...] = ()
    graphics: tuple[Graphics, ...] = ()
    channels: tuple[Channel, ...] = ()
    balloon: Balloon | None = None
    serials: tuple[CharDevice, ...] = ()
    consoles: tuple[CharDevice, ...] = ()

    @property
    def has_guest_agent_channel(self) -> bool:
        return any(c.target_name == GUEST_AGENT_CHANNEL for c in self.channels)

    def disk(self, target_dev: str) -> Disk | None:
        return next((d for d in self.disks if d.target_dev == target_dev), None)

    def interface(self, mac: str) -> Interface | None:
        mac = mac.lower()
        return next((i for i in self.interfaces if (i.mac or "").lower() == mac), None)


def read_disk(element: ET.Element) -> Disk:
    return from_element(Disk, element)


def read_devices(devices: ET.Element | None) -> Devices:
    """The view of a ``<devices>`` element (an empty view when there is none)."""
    if devices is None:
        return Devices()
    balloon = devices.find("memballoon")
    emulator = devices.find("emulator")
    return Devices(
        emulator=None if emulator is None else (emulator.text or "").strip() or None,
        disks=tuple(read_disk(e) for e in devices.findall("disk")),
        interfaces=tuple(from_element(Interface, e) for e in devices.findall("interface")),
        graphics=tuple(from_element(Graphics, e) for e in devices.findall("graphics")),
        channels=tuple(from_element(Channel, e) for e in devices.findall("channel")),
        balloon=None if balloon is None else from_element(Balloon, balloon),
        serials=tuple(
            from_element(CharDevice, e, kind="serial") for e in devices.findall("serial")
        ),
        consoles=tuple(
            from_element(CharDevice, e, kind="console") for e in devices.findall("console")
        ),
    )
