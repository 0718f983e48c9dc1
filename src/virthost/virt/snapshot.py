"""VM.snapshot: a live, disk-only external snapshot onto leaf volumes the engine created.

The engine first creates, for each disk, a new COW volume whose parent is the disk's current
leaf (Volume.create with a parent). VM.snapshot then makes the running guest write to those
volumes instead:

1. each new volume is prepared (its chain resolved and checked: its parent must be the disk's
   current leaf, or the guest would lose what was written since) and held by the VM;
2. the guest's file systems are frozen through the guest agent, unless ``frozen`` says the
   engine froze them already, so the snapshot is consistent; a guest without an agent is
   snapshotted unfrozen, as VDSM does, and the answer's ``quiesce`` says which it was;
3. libvirt switches the disks with ``snapshotCreateXML`` and the flags DISK_ONLY (memory
   stays), REUSE_EXT (the volumes exist: libvirt must not create or format them) and
   NO_METADATA (the chain lives in our storage metadata, not in libvirt snapshot objects);
4. the file systems are thawed, whatever happened in step 3;
5. each disk's ``volumeID`` and ``volumeChain`` in the VM's ``ovirt-vm`` metadata become the
   new leaf and chain, in the live and the persistent definition, so VM.getStats, dumpxmls
   and a recovery after a restart of the daemon all see the new chain.

A failure before step 3 leaves the guest as it was and the new volumes torn down again.
Memory snapshots (``snapMemory``) are not supported yet (UnsupportedOperation, 75).
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import libvirt

from virthost.common import errors, validate
from virthost.virt.deviceops import DomainAccess
from virthost.virt.domxml import METADATA_KEY, METADATA_URI, VmMetadata, metadata_xml, parse_domain
from virthost.virt.domxml.volumes import (
    PreparedVolume,
    VolumeRef,
    disk_of_image,
    record_volume,
)
from virthost.virt.domxml.xmlutil import sub, tostring
from virthost.virt.storagedrives import VmVolumes
from virthost.virt.vm import Vm

log = logging.getLogger("virthost.virt.snapshot")

SNAPSHOT_FLAGS = (
    libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY
    | libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_REUSE_EXT
    | libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA
)
METADATA_FLAGS = libvirt.VIR_DOMAIN_AFFECT_LIVE | libvirt.VIR_DOMAIN_AFFECT_CONFIG


@dataclass(frozen=True)
class SnapshotDisk:
    """One disk to snapshot: its target, the volume it uses now, the volume to switch to."""

    target: str
    current: VolumeRef
    new: VolumeRef


def plan(metadata: VmMetadata, snap_drives: Any) -> list[SnapshotDisk]:
    """The disks ``snapDrives`` names, checked against the VM's metadata."""
    if isinstance(snap_drives, str | bytes) or not isinstance(snap_drives, Sequence):
        raise errors.InvalidParameter("snapDrives must be a list", param="snapDrives")
    disks: list[SnapshotDisk] = []
    for index, item in enumerate(snap_drives):
        name = f"snapDrives[{index}]"
        if not isinstance(item, Mapping):
            raise errors.InvalidParameter(f"{name} must be an object", param=name)
        sd = validate.uuid(item.get("domainID"), f"{name}.domainID")
        img = validate.uuid(item.get("imageID"), f"{name}.imageID")
        new_vol = validate.uuid(item.get("volumeID"), f"{name}.volumeID")
        found = disk_of_image(metadata, sd, img)
        if found is None:
            raise errors.SnapshotFailed(f"{name}: the VM has no disk of image {img} on domain {sd}")
        target, current = found
        base = item.get("baseVolumeID")
        if base is not None and validate.uuid(base, f"{name}.baseVolumeID") != current.volume:
            raise errors.SnapshotFailed(
                f"{name}: disk {target} uses volume {current.volume}, not {base}"
            )
        if new_vol == current.volume:
            raise errors.SnapshotFailed(f"{name}: disk {target} already uses volume {new_vol}")
        if any(d.target == target for d in disks):
            raise errors.InvalidParameter(f"{name}: disk {target} named twice", param=name)
        disks.append(SnapshotDisk(target, current, current.with_volume(new_vol)))
    if not disks:
        raise errors.InvalidParameter("snapDrives is empty", param="snapDrives")
    return disks


def snapshot_xml(live: ET.Element, switched: Mapping[str, PreparedVolume]) -> str:
    """``<domainsnapshot>`` switching the disks in ``switched``; every other disk is left."""
    root = ET.Element("domainsnapshot")
    disks = sub(root, "disks")
    for disk in live.iterfind("devices/disk"):
        target = disk.find("target")
        name = None if target is None else target.get("dev")
        if not name:
            continue
        volume = switched.get(name)
        if volume is None:
            sub(disks, "disk", name=name, snapshot="no")
            continue
        element = sub(disks, "disk", name=name, snapshot="external", type=volume.disk_type)
        sub(element, "driver", type=volume.format)
        sub(element, "source", **{"file" if volume.disk_type == "file" else "dev": volume.path})
    return tostring(root)


class LiveSnapshot:
    """VM.snapshot for the VM service."""

    def __init__(self, access: DomainAccess, volumes: VmVolumes) -> None:
        self._access = access
        self._volumes = volumes

    def take(self, vm: Vm, snap_drives: Any, frozen: bool) -> dict[str, Any]:
        with self._access.changing(vm):
            live = parse_domain(self._access.live_xml(vm))
            disks = plan(live.metadata, snap_drives)
            prepared = self._prepare(vm, disks)
            try:
                quiesced = self._snapshot(vm, live.root, prepared, frozen)
            except BaseException:
                for disk in disks:
                    self._volumes.forget(vm, disk.new)
                raise
            for disk in disks:
                volume = prepared[disk.target]
                record_volume(live.metadata, disk.target, disk.new, volume.chain)
            self._write_metadata(vm, live.metadata)
            self._access.live_xml(vm)  # the VM's known XML now shows the new chain
        log.info(
            "vm %s: snapshot of %s (quiesced: %s)",
            vm.id,
            ", ".join(f"{d.target}->{d.new.volume}" for d in disks),
            quiesced,
        )
        return {"quiesce": quiesced}

    def _prepare(self, vm: Vm, disks: list[SnapshotDisk]) -> dict[str, PreparedVolume]:
        prepared: dict[str, PreparedVolume] = {}
        try:
            for disk in disks:
                volume = self._volumes.prepare_more(vm, disk.new)
                prepared[disk.target] = volume
                parent = volume.chain[-2].volume if len(volume.chain) > 1 else None
                if parent != disk.current.volume:
                    raise errors.SnapshotFailed(
                        f"volume {disk.new.volume} is based on {parent}, "
                        f"not on the disk's current volume {disk.current.volume}"
                    )
        except BaseException:
            for disk in disks:
                self._volumes.forget(vm, disk.new)
            raise
        return prepared

    def _snapshot(
        self, vm: Vm, live: ET.Element, prepared: Mapping[str, PreparedVolume], frozen: bool
    ) -> bool:
        xml = snapshot_xml(live, prepared)
        froze = False if frozen else self._freeze(vm)
        try:
            self._access.apply(
                vm,
                "taking a snapshot of",
                errors.SnapshotFailed,
                lambda dom: dom.snapshotCreateXML(xml, SNAPSHOT_FLAGS),
            )
        finally:
            if froze:
                self._thaw(vm)
        return frozen or froze

    def _freeze(self, vm: Vm) -> bool:
        try:
            self._access.apply(
                vm, "freezing", errors.FreezeGuestFSFailed, lambda dom: dom.fsFreeze()
            )
        except errors.VirtHostError as e:
            log.warning("vm %s: snapshot without freezing the guest: %s", vm.id, e)
            return False
        return True

    def _thaw(self, vm: Vm) -> None:
        try:
            self._access.apply(vm, "thawing", errors.ThawGuestFSFailed, lambda dom: dom.fsThaw())
        except errors.VirtHostError as e:
            log.error("vm %s: cannot thaw the guest after the snapshot: %s", vm.id, e)

    def _write_metadata(self, vm: Vm, metadata: VmMetadata) -> None:
        write_metadata_live(self._access, vm, metadata, errors.SnapshotFailed)


def write_metadata_live(
    access: DomainAccess, vm: Vm, metadata: VmMetadata, error: type[errors.VirtHostError]
) -> None:
    """Replace the VM's ``ovirt-vm`` metadata in its live and persistent definitions."""
    text = metadata_xml(metadata)
    access.apply(
        vm,
        "updating the metadata of",
        error,
        lambda dom: dom.setMetadata(
            libvirt.VIR_DOMAIN_METADATA_ELEMENT, text, METADATA_KEY, METADATA_URI, METADATA_FLAGS
        ),
    )
