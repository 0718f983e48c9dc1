"""Disks backed by storage volumes: which disks of a domain name a volume, and how the domain
says where a prepared volume is.

A VM's disk names a volume by four ids, VDSM's "PDIV" (pool, domain, image, volume). An
engine's domain XML says it in two ways, and simple parameters in a third; all three end up as
the same ``<ovirt-vm:device devtype="disk" name="<target>">`` metadata entry, which is the
record the VM code keeps from then on (libvirt stores it with the domain, so it survives
restarts of the daemon):

* the metadata entry itself (``poolID``, ``domainID``, ``imageID``, ``volumeID``);
* a ``<source file>`` under the repository, ``<repository>/<pool>/<domain>/images/<img>/<vol>``
  (the pool links VDSM's clients use);
* a drive of simple parameters with the four ids (see :mod:`.simple`), written as metadata.

Once the volume is prepared, :func:`apply_prepared` points the disk at the real file, sets the
format the volume has, drops an empty ``<backingStore/>`` (which would tell QEMU the image has
no backing chain, hiding every layer below the leaf: libvirt reads the chain from the images
when the element is absent) and records the chain in the metadata as VDSM does
(``volumeChain/volumeChainNode`` with ``domainID, imageID, leaseOffset, leasePath, path,
volumeID``). Nothing here touches storage or libvirt.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from virthost.common import errors, validate
from virthost.virt.domxml.metadata import DeviceMetadata, MetadataNode, VmMetadata
from virthost.virt.domxml.model import DomainXml

DISK_DEVTYPE = "disk"
_ID_KEYS = ("poolID", "domainID", "imageID", "volumeID")
_CHAIN_KEYS = ("domainID", "imageID", "leaseOffset", "leasePath", "path", "volumeID")


@dataclass(frozen=True)
class VolumeRef:
    """A volume by its four ids, each a validated canonical UUID."""

    pool: str
    domain: str
    image: str
    volume: str

    @classmethod
    def from_wire(cls, value: Any, name: str, pool: str | None = None) -> VolumeRef:
        """From ``{poolID, domainID, imageID, volumeID}``; ``pool`` fills a missing poolID."""
        if not isinstance(value, Mapping):
            raise errors.InvalidParameter(f"{name}={value!r}: not a volume record", param=name)
        raw_pool = value.get("poolID") or pool
        if raw_pool is None:
            raise errors.MissingParameter(f"{name}.poolID", param=f"{name}.poolID")
        ids = [raw_pool, value.get("domainID"), value.get("imageID"), value.get("volumeID")]
        for key, item in zip(_ID_KEYS, ids, strict=True):
            if item is None or item == "":
                raise errors.MissingParameter(f"{name}.{key}", param=f"{name}.{key}")
        checked = [
            validate.uuid(item, f"{name}.{key}") for key, item in zip(_ID_KEYS, ids, strict=True)
        ]
        return cls(*checked)

    def with_volume(self, volume: str) -> VolumeRef:
        return VolumeRef(self.pool, self.domain, self.image, validate.uuid(volume, "volumeID"))

    def to_wire(self) -> dict[str, str]:
        return {
            "poolID": self.pool,
            "domainID": self.domain,
            "imageID": self.image,
            "volumeID": self.volume,
        }


@dataclass(frozen=True)
class ChainNode:
    """One volume of a prepared chain, as Image.prepare's ``imgVolumesInfo`` lists it."""

    domain: str
    image: str
    volume: str
    path: str
    lease_path: str
    lease_offset: int

    @classmethod
    def from_info(cls, info: Mapping[str, Any]) -> ChainNode:
        return cls(
            domain=str(info["domainID"]),
            image=str(info["imageID"]),
            volume=str(info["volumeID"]),
            path=str(info["path"]),
            lease_path=str(info["leasePath"]),
            lease_offset=int(info["leaseOffset"]),
        )


@dataclass(frozen=True)
class PreparedVolume:
    """A volume ready for QEMU: its file, its qemu format, its chain (base first)."""

    ref: VolumeRef
    path: str
    format: str  # "qcow2" or "raw"
    disk_type: str  # "file" (or "block" on block domains)
    chain: tuple[ChainNode, ...]


@dataclass(frozen=True)
class VolumeDisk:
    """A disk of the domain (by target, such as ``vda``), the volume it uses, and the path its
    ``<source>`` gives now (None when it has none yet)."""

    target: str
    ref: VolumeRef
    source: str | None = None


# --- finding them ----------------------------------------------------------------------------


def volume_disks(domain: DomainXml, repository: str) -> list[VolumeDisk]:
    """The disks that name a volume, by metadata or by a source path under ``repository``."""
    found: list[VolumeDisk] = []
    for disk in domain.devices.disks:
        if disk.device != "disk" or not disk.target_dev:
            continue
        entry = domain.metadata.device(devtype=DISK_DEVTYPE, name=disk.target_dev)
        ref = ref_of_entry(entry, disk.target_dev) if entry is not None else None
        if ref is None and disk.path:
            ref = ref_of_repository_path(disk.path, repository)
        if ref is not None:
            found.append(VolumeDisk(disk.target_dev, ref, disk.path))
    return found


def under(path: str, directory: str) -> bool:
    """Whether normalised ``path`` lies inside ``directory``."""
    return os.path.normpath(path).startswith(os.path.normpath(directory) + os.sep)


def ref_of_entry(entry: DeviceMetadata, target: str) -> VolumeRef | None:
    """The volume of a disk's metadata entry; None when it names none (a plain path disk)."""
    values = {key: entry.get(key) for key in _ID_KEYS}
    if all(value in (None, "") for value in values.values()):
        return None
    return VolumeRef.from_wire(values, f"metadata of disk {target}")


def ref_of_repository_path(path: str, repository: str) -> VolumeRef | None:
    """``<repository>/<pool>/<domain>/images/<img>/<vol>`` as ids; None for any other path."""
    root = os.path.normpath(repository)
    normal = os.path.normpath(path)
    if os.path.dirname(normal) == normal or not normal.startswith(root + os.sep):
        return None
    parts = normal[len(root) + 1 :].split(os.sep)
    if len(parts) != 5 or parts[2] != "images":
        return None
    pool, sd, _, img, vol = parts
    try:
        return VolumeRef(*(validate.uuid(p, "path") for p in (pool, sd, img, vol)))
    except errors.InvalidParameter:
        return None  # e.g. mnt/<connection>/...: a mount path, not a pool link


def disk_of_image(metadata: VmMetadata, domain: str, image: str) -> tuple[str, VolumeRef] | None:
    """The disk (target, current volume) whose metadata names ``image`` of ``domain``."""
    for entry in metadata.devices:
        target = entry.attrs.get("name")
        if entry.attrs.get("devtype") != DISK_DEVTYPE or not target:
            continue
        ref = ref_of_entry(entry, target)
        if ref is not None and ref.domain == domain and ref.image == image:
            return target, ref
    return None


def chain_volumes(metadata: VmMetadata, target: str) -> list[str]:
    """The volume ids of the disk's recorded chain, base first."""
    entry = metadata.device(devtype=DISK_DEVTYPE, name=target)
    if entry is None:
        return []
    return [str(node.get("volumeID")) for node in entry.volume_chain()]


# --- recording them ---------------------------------------------------------------------------


def apply_prepared(domain: DomainXml, target: str, prepared: PreparedVolume) -> None:
    """Point disk ``target`` at the prepared volume and record the volume in the metadata."""
    domain.set_disk_source(target, prepared.path, prepared.disk_type)
    disk = next(d for d in domain.root.iterfind("devices/disk") if _target(d) == target)
    driver = disk.find("driver")
    if driver is None:
        driver = disk.makeelement("driver", {"name": "qemu"})
        disk.insert(0, driver)
    driver.set("type", prepared.format)
    for store in disk.findall("backingStore"):
        if len(store) == 0 and not store.attrib:
            disk.remove(store)
    record_volume(domain.metadata, target, prepared.ref, prepared.chain)


def record_volume(
    metadata: VmMetadata, target: str, ref: VolumeRef, chain: Sequence[ChainNode]
) -> None:
    """Set the disk's ids and chain (when known) in its metadata entry (made when missing)."""
    entry = metadata.device(devtype=DISK_DEVTYPE, name=target)
    if entry is None:
        entry = DeviceMetadata({"devtype": DISK_DEVTYPE, "name": target})
        metadata.devices.append(entry)
    for key, value in ref.to_wire().items():
        _set_value(entry, key, value)
    if chain:
        _set_node(entry, MetadataNode("volumeChain", children=[_chain_node(n) for n in chain]))


def drop_chain_volumes(metadata: VmMetadata, target: str, volumes: Sequence[str]) -> None:
    """Remove ``volumes`` from the disk's recorded chain (after a merge took them out)."""
    entry = metadata.device(devtype=DISK_DEVTYPE, name=target)
    chain = None if entry is None else entry.child("volumeChain")
    if chain is None:
        return
    gone = set(volumes)
    chain.children = [n for n in chain.children if str(n.get("volumeID")) not in gone]


def set_drive_volume(metadata: VmMetadata, target: str, volume: str) -> None:
    """Make ``volume`` the disk's current (leaf) volume in its metadata entry."""
    entry = metadata.device(devtype=DISK_DEVTYPE, name=target)
    if entry is None:
        raise errors.InvalidParameter(f"disk {target} has no volume metadata", param="drive")
    _set_value(entry, "volumeID", validate.uuid(volume, "volumeID"))


def _chain_node(node: ChainNode) -> MetadataNode:
    values: dict[str, str | int] = {
        "domainID": node.domain,
        "imageID": node.image,
        "leaseOffset": node.lease_offset,
        "leasePath": node.lease_path,
        "path": node.path,
        "volumeID": node.volume,
    }
    return MetadataNode(
        "volumeChainNode", children=[MetadataNode(key, values[key]) for key in _CHAIN_KEYS]
    )


def _set_value(entry: DeviceMetadata, key: str, value: str) -> None:
    node = entry.child(key)
    if node is None:
        entry.values.append(MetadataNode(key, value))
    else:
        node.value = value
        node.children = []


def _set_node(entry: DeviceMetadata, new: MetadataNode) -> None:
    for index, node in enumerate(entry.values):
        if node.tag == new.tag:
            entry.values[index] = new
            return
    entry.values.append(new)


def _target(disk: Any) -> str | None:
    target = disk.find("target")
    return None if target is None else target.get("dev")
