"""Fit an engine's domain XML vector to this host the way a prepared oVirt host would be.

The vectors in ../shared/vectors/vdsm-domain-xml are what engines sent to other hosts. Before an
engine sends ``VM.create`` to a host, that host has connected and prepared the VM's storage
(volumes under /rhev/data-center exist; block volumes are device nodes the qemu user may open),
its management bridge exists, and its installer has configured libvirt. Those resources are
named in the document with the other host's paths and addresses, so a test replaces exactly
them and nothing else:

* identity: a fresh uuid (everywhere the document repeats the VM's id) and a fresh name;
* storage: each disk source points at a real image (see :class:`HostVolumes`);
* addresses: spice listen addresses, which were the other host's own IP;
* libvirt's host configuration this machine lacks (see :func:`fit_spice_tls`).

Everything else (domain type, CPU model, machine type, emulator path, the guest agent channel,
network filters, display networks, security labels) is the daemon's job and stays as sent, so
that a test fails when the daemon does not handle it.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import libvirt

VECTORS_DIR = Path(__file__).resolve().parents[3].parent / "shared" / "vectors" / "vdsm-domain-xml"
UUID_PLACEHOLDER = "{vm_uuid}"
QEMU_CONF = Path("/etc/libvirt/qemu.conf")
# VDSM's packaging creates this directory for the virtio-serial channel sockets engines name.
CHANNELS_DIR = Path("/var/lib/libvirt/qemu/channels")
IMAGE_SIZE = "64M"
# The host address of a bridge created here (TEST-NET-1, RFC 5737: never routed anywhere).
BRIDGE_ADDRESS = "192.0.2.1"
_UUID_RE = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_ELEMENT_START = re.compile(r"<(?![?!])\s*([A-Za-z_][\w.:-]*)")


def whole_documents(directory: Path = VECTORS_DIR) -> list[Path]:
    """The vectors that are whole ``<domain>`` documents (templates included), by name."""
    return sorted(p for p in directory.glob("*.xml") if _first_element(p.read_text()) == "domain")


def _first_element(text: str) -> str | None:
    match = _ELEMENT_START.search(text)
    return match.group(1) if match else None


def disk_fragments(path: Path) -> list[ET.Element]:
    """The ``<disk>`` elements of a file holding only a sequence of them (no root element)."""
    return list(ET.fromstring(f"<devices>{path.read_text()}</devices>"))


@dataclass(frozen=True)
class Owner:
    """The user and group QEMU runs as (libvirt's DAC base label)."""

    uid: int
    gid: int


def qemu_owner(conn: libvirt.virConnect) -> Owner:
    caps = ET.fromstring(conn.getCapabilities())
    for model in caps.iterfind("host/secmodel"):
        if model.findtext("model") != "dac":
            continue
        for label in model.iterfind("baselabel"):
            if label.get("type") in ("qemu", "kvm") and label.text:
                uid, gid = (int(part.lstrip("+")) for part in label.text.split(":"))
                return Owner(uid, gid)
    raise RuntimeError("libvirt reports no DAC base label for qemu")


@dataclass
class HostVolumes:
    """Images standing in for the VM's prepared volumes; :meth:`cleanup` removes them all.

    File volumes are qemu-img images in a world-traversable temporary directory; block volumes
    are loop devices over raw files (device-mapper, hence LVM activation, does not work here).
    Like VDSM's storage preparation and udev rules do for its volumes, each image is made
    readable and writable by the qemu user, so that disks whose ``<seclabel relabel='no'>``
    forbids libvirt to relabel them can still be opened.
    """

    owner: Owner
    root: Path = field(
        default_factory=lambda: Path(tempfile.mkdtemp(prefix="virthost-vectors-", dir="/tmp"))
    )
    loops: dict[str, Path] = field(default_factory=dict)  # device -> backing file
    _loop_modes: dict[str, os.stat_result] = field(default_factory=dict)
    _count: int = 0

    def __post_init__(self) -> None:
        self.root.chmod(0o777)

    def _next(self, suffix: str) -> Path:
        self._count += 1
        return self.root / f"volume{self._count}.{suffix}"

    def file_volume(self, fmt: str) -> Path:
        path = self._next(fmt)
        run("qemu-img", "create", "-q", "-f", fmt, str(path), IMAGE_SIZE)
        os.chown(path, self.owner.uid, self.owner.gid)
        path.chmod(0o660)
        return path

    def block_volume(self, fmt: str) -> str:
        backing = self._next("lun")
        run("qemu-img", "create", "-q", "-f", "raw", str(backing), IMAGE_SIZE)
        device = run("losetup", "-f", "--show", str(backing)).strip()
        self.loops[device] = backing
        self._loop_modes[device] = os.stat(device)
        os.chown(device, self.owner.uid, self.owner.gid)
        os.chmod(device, 0o660)
        if fmt != "raw":  # a qcow2 volume written straight onto the device, as on a block domain
            run("qemu-img", "create", "-q", "-f", fmt, device, IMAGE_SIZE)
        return device

    def detach(self, device: str) -> None:
        """Give the loop device its owner back and detach it (a no-op when already gone)."""
        backing = self.loops.pop(device, None)
        before = self._loop_modes.pop(device, None)
        if backing is None:
            return
        if before is not None:
            with contextlib.suppress(OSError):
                os.chown(device, before.st_uid, before.st_gid)
                os.chmod(device, before.st_mode & 0o7777)
        subprocess.run(["losetup", "-d", device], check=False, capture_output=True)

    def cleanup(self) -> None:
        for device in list(self.loops):
            self.detach(device)
        shutil.rmtree(self.root, ignore_errors=True)


def loops_backed_by(backing: Path) -> list[str]:
    """Loop devices still attached to ``backing`` (a detached but open device stays listed)."""
    out = run("losetup", "-j", str(backing))
    return [line.split(":", 1)[0] for line in out.splitlines() if line.strip()]


def run(*cmd: str) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: rc={done.returncode}: {done.stderr.strip()}")
    return done.stdout


# --- the document --------------------------------------------------------------------------


def vector_ids(text: str) -> set[str]:
    """The uuids by which the document names its VM: ``<uuid>`` and the SMBIOS system uuid.

    In the ``domain.xml`` template ``<uuid>`` is the placeholder, but the SMBIOS entry and the
    channel socket paths still carry the id of the VM it was taken from.
    """
    root = ET.fromstring(text.replace(UUID_PLACEHOLDER, "00000000-0000-0000-0000-000000000000"))
    ids = {(root.findtext("uuid") or "").strip()}
    for entry in root.iterfind("sysinfo/system/entry"):
        if entry.get("name") == "uuid":
            ids.add((entry.text or "").strip())
    return {i.lower() for i in ids if _UUID_RE.fullmatch(i) and set(i) != set("0-")}


def with_identity(text: str, vm_id: str, name: str) -> ET.Element:
    """The document as the engine would send it for a new VM ``vm_id`` called ``name``.

    The VM's id appears in ``<uuid>``, in the SMBIOS system uuid (libvirt refuses a mismatch),
    in the channel socket paths the engine derives from it and in the engine's device strings
    inside custom properties; all of them become ``vm_id``.
    """
    for old in vector_ids(text):
        text = re.sub(re.escape(old), vm_id, text, flags=re.IGNORECASE)
    root = ET.fromstring(text.replace(UUID_PLACEHOLDER, vm_id))
    name_element = root.find("name")
    assert name_element is not None, "vector without <name>"
    name_element.text = name
    return root


@dataclass
class PreparedDisk:
    target: str
    device: str
    type: str
    source: str | None  # None: an empty cdrom


def point_disks(root: ET.Element, volumes: HostVolumes) -> list[PreparedDisk]:
    """Point every disk with a source at a fresh image of the vector's format (what VDSM's
    prepareImage gives: a path under /rhev, a file or a block device). Empty cdroms stay empty.
    """
    prepared: list[PreparedDisk] = []
    for disk in root.iterfind("devices/disk"):
        kind = disk.get("type", "file")
        device = disk.get("device", "disk")
        target = disk.find("target")
        target_dev = "" if target is None else target.get("dev", "")
        driver = disk.find("driver")
        fmt = "raw" if driver is None else driver.get("type", "raw")
        source = disk.find("source")
        attr = {"file": "file", "block": "dev"}.get(kind)
        if attr is None:
            raise AssertionError(f"disk {target_dev}: type {kind!r} has no stand-in here")
        path = None if source is None else source.get(attr)
        if not path:
            prepared.append(PreparedDisk(target_dev, device, kind, None))
            continue
        assert source is not None
        new = str(volumes.file_volume(fmt)) if kind == "file" else volumes.block_volume(fmt)
        source.set(attr, new)
        prepared.append(PreparedDisk(target_dev, device, kind, new))
    return prepared


def point_graphics(root: ET.Element, address: str = "127.0.0.1") -> None:
    """Listen addresses were the engine's idea of the *other* host's own address; make them
    this host's. (For ``type='network'`` listens libvirt resolves the address from the network
    when the VM starts, whatever the document says.)"""
    for graphics in root.iterfind("devices/graphics"):
        if "listen" in graphics.attrib:
            graphics.set("listen", address)
        for listen in graphics.iterfind("listen"):
            if "address" in listen.attrib:
                listen.set("address", address)


def host_has_spice_tls(conf: Path = QEMU_CONF) -> bool:
    """Whether this host's libvirt serves spice over TLS (``spice_tls = 1`` in qemu.conf)."""
    try:
        text = conf.read_text()
    except OSError:
        return False
    return re.search(r"^\s*spice_tls\s*=\s*1\b", text, flags=re.MULTILINE) is not None


def fit_spice_tls(root: ET.Element) -> bool:
    """Drop spice's TLS port and secure channels when this host's libvirt has no spice TLS.

    An oVirt host's installer sets ``spice_tls = 1`` and the certificate directory in
    qemu.conf; libvirt refuses ``tlsPort`` and ``mode='secure'`` channels without it ("Auto
    allocation of spice TLS port requested but spice TLS is disabled in qemu.conf"), and the
    setting is only read when libvirtd starts. So on a host not set up that way the TLS part of
    the display, and only it, is left out. True when something was changed.
    """
    if host_has_spice_tls():
        return False
    changed = False
    for graphics in root.iterfind("devices/graphics"):
        if graphics.get("type") != "spice":
            continue
        for attr in ("tlsPort", "defaultMode"):
            changed |= graphics.attrib.pop(attr, None) is not None
        for channel in graphics.findall("channel"):
            if channel.get("mode") == "secure":
                graphics.remove(channel)
                changed = True
    return changed


def bridges_named(root: ET.Element) -> set[str]:
    return {
        source.get("bridge", "")
        for source in root.iterfind("devices/interface[@type='bridge']/source")
        if source.get("bridge")
    }


# --- host resources for the whole run ----------------------------------------------------------


@contextlib.contextmanager
def linux_bridges(names: set[str], address: str = BRIDGE_ADDRESS) -> Iterator[set[str]]:
    """The engine's bridges (``ovirtmgmt``): created in the root namespace when missing, as a
    host's network setup would have them, and deleted afterwards only if created here.

    A created bridge gets ``address`` (a /32, so no route but the local one) standing in for
    the host address a management network carries: a spice ``<listen type='network'>`` is
    resolved by libvirt to the address of the network's bridge. Without one, libvirt picks
    the IPv6 link-local address, which stays tentative on a bridge without ports, and QEMU
    then cannot bind spice to it.
    """
    created: set[str] = set()
    try:
        for name in sorted(names):
            if not Path("/sys/class/net", name).exists():
                run("ip", "link", "add", name, "type", "bridge")
                created.add(name)
                run("ip", "address", "add", f"{address}/32", "dev", name)
                run("ip", "link", "set", name, "up")
        yield created
    finally:
        for name in created:
            subprocess.run(["ip", "link", "del", name], check=False, capture_output=True)


@contextlib.contextmanager
def channels_dir(owner: Owner) -> Iterator[Path]:
    """The directory of the channel sockets the engine names (an oVirt host's packaging makes
    it, writable by the qemu group); removed afterwards only if created here."""
    created = not CHANNELS_DIR.exists()
    if created:
        CHANNELS_DIR.mkdir()
        CHANNELS_DIR.chmod(0o775)
        os.chown(CHANNELS_DIR, owner.uid, owner.gid)
    try:
        yield CHANNELS_DIR
    finally:
        if created:
            shutil.rmtree(CHANNELS_DIR, ignore_errors=True)
