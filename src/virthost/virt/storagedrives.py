"""Storage for VMs: preparing the volumes a VM's disks name, and knowing which a VM holds.

Two parts, split by what they know:

* :class:`DrivePreparer` (implemented by :class:`StorageDrives` over the ImageStore and the
  connected pool) knows storage: it finds the disks of a domain that name a volume, prepares a
  volume (Image.prepare: the chain is resolved and checked, an ILLEGAL volume is refused with
  the storage error, 227) and tears it down again. It keeps no state.
* :class:`VmVolumes` knows VMs: which volumes each VM holds prepared, so that they are torn down
  exactly once, when the VM is down or failed to start, whatever path led there.

Why the ledger needs no file of its own: every volume a VM holds is also written in the VM's
``ovirt-vm`` metadata (a disk's ``volumeID`` and ``volumeChain``), which libvirt keeps with the
domain. A VM recovered after a restart of the daemon has no ledger entry; the first time its
volumes are asked for they are read back from that metadata. On file domains a prepared
volume holds nothing (Image.prepare only checks), so recovery has nothing to redo: the running
guest keeps its files open, and the teardown at the end is the same as for any VM.

The ledger is keyed by the :class:`Vm` object, not its id: a VM hibernated and restored with
the same id is a new object, and a late teardown of the old one cannot release what the new
one prepared.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import weakref
from collections.abc import Iterator
from typing import Any, Protocol

from virthost.common import errors
from virthost.storage import errors as se
from virthost.virt.domxml import DomainXml, parse_domain
from virthost.virt.domxml.volumes import (
    ChainNode,
    PreparedVolume,
    VolumeDisk,
    VolumeRef,
    apply_prepared,
    under,
    volume_disks,
)
from virthost.virt.vm import Vm

log = logging.getLogger("virthost.virt.storage")

# VDSM's volume formats (Volume.getInfo's "format") and the qemu formats they are.
_QEMU_FORMATS = {"COW": "qcow2", "RAW": "raw"}
ILLEGAL = "ILLEGAL"


class VolumeStore(Protocol):
    """The volume verbs VMs use (:class:`~virthost.storage.images.ImageStore` has them)."""

    def prepare_image(
        self, sd: Any, img: Any, vol: Any, allow_illegal: bool = False
    ) -> dict[str, Any]: ...

    def teardown_image(self, sd: Any, img: Any, vol: Any = None) -> None: ...

    def volume_info(self, sd: Any, img: Any, vol: Any) -> dict[str, Any]: ...

    def set_legality(self, sd: Any, img: Any, vol: Any, legality: Any) -> None: ...


class PoolMembership(Protocol):
    """Checks that a pool is connected and holds the domains (StoragePools.member)."""

    def member(self, sp_uuid: Any, *sd_uuids: Any) -> object: ...


class DrivePreparer(Protocol):
    """Storage as the VM code sees it."""

    def disks(self, domain: DomainXml) -> list[VolumeDisk]:
        """The disks of ``domain`` that name a volume."""
        ...

    def prepared_elsewhere(self, disk: VolumeDisk) -> bool:
        """Whether the disk is to be used as its XML gives it, without preparing."""
        ...

    def prepare(self, ref: VolumeRef) -> PreparedVolume:
        """Make the volume usable and say where it is (storage errors as they are)."""
        ...

    def teardown(self, ref: VolumeRef) -> None: ...

    def retire(self, ref: VolumeRef) -> None:
        """Mark a volume a merge took out of the chain: ILLEGAL, for the engine to delete."""
        ...


class StorageDrives:
    """The :class:`DrivePreparer` over the ImageStore and the connected pool."""

    def __init__(self, store: VolumeStore, pools: PoolMembership, repository: str) -> None:
        self._store = store
        self._pools = pools
        self._repository = repository

    def disks(self, domain: DomainXml) -> list[VolumeDisk]:
        return volume_disks(domain, self._repository)

    def prepared_elsewhere(self, disk: VolumeDisk) -> bool:
        """A disk whose pool this host is not connected to, and whose XML already gives a path
        outside the pool repository, is used as given (with a warning): whoever sent it
        prepared that path. An engine connects the pool before it starts VMs there, so its
        disks are always prepared here; without a path, or with a pool link path, the pool
        error stands."""
        if disk.source is None or under(disk.source, self._repository):
            return False
        try:
            self._pools.member(disk.ref.pool, disk.ref.domain)
        except se.StorageException as e:
            log.warning(
                "disk %s names volume %s but %s: using its path %s as given",
                disk.target, disk.ref.volume, e, disk.source,
            )  # fmt: skip
            return True
        return False

    def prepare(self, ref: VolumeRef) -> PreparedVolume:
        self._pools.member(ref.pool, ref.domain)
        prepared = self._store.prepare_image(ref.domain, ref.image, ref.volume)
        info = self._store.volume_info(ref.domain, ref.image, ref.volume)
        volume_format = _QEMU_FORMATS.get(str(info.get("format")))
        if volume_format is None:
            raise errors.InvalidParameter(
                f"volume {ref.volume} has format {info.get('format')!r}", param="volumeID"
            )
        return PreparedVolume(
            ref=ref,
            path=str(prepared["path"]),
            format=volume_format,
            disk_type=str(prepared["info"].get("type", "file")),
            chain=tuple(ChainNode.from_info(item) for item in prepared["imgVolumesInfo"]),
        )

    def teardown(self, ref: VolumeRef) -> None:
        self._store.teardown_image(ref.domain, ref.image, ref.volume)

    def retire(self, ref: VolumeRef) -> None:
        self._store.set_legality(ref.domain, ref.image, ref.volume, ILLEGAL)


class VmVolumes:
    """Which volumes each VM holds prepared; prepares them for a start, releases them once."""

    def __init__(self, preparer: DrivePreparer) -> None:
        self._preparer = preparer
        self._lock = threading.Lock()
        # VM -> its volumes; an empty list once released, so a recovered VM is read once only
        self._held: weakref.WeakKeyDictionary[Vm, list[VolumeRef]] = weakref.WeakKeyDictionary()

    @property
    def preparer(self) -> DrivePreparer:
        return self._preparer

    def prepare_disks(self, vm: Vm, domain: DomainXml) -> list[VolumeRef]:
        """Prepare every volume ``domain``'s disks name and point the disks at them.

        All or nothing: when one volume cannot be prepared, those prepared before it are torn
        down again and the error propagates (the VM does not start).
        """
        prepared: list[VolumeRef] = []
        try:
            for disk in self._preparer.disks(domain):
                if self._preparer.prepared_elsewhere(disk):
                    continue
                try:
                    volume = self._preparer.prepare(disk.ref)
                except errors.VirtHostError as e:  # say which disk; keep the error's code
                    e.detail = f"disk {disk.target}, volume {disk.ref.volume}: {e.wire_message}"
                    raise
                prepared.append(disk.ref)
                apply_prepared(domain, disk.target, volume)
                log.info("vm %s: disk %s is volume %s", vm.id, disk.target, volume.path)
        except BaseException:
            self._teardown_all(vm, prepared)
            raise
        with self._lock:
            self._held[vm] = list(prepared)
        return prepared

    def prepare_more(self, vm: Vm, ref: VolumeRef) -> PreparedVolume:
        """Prepare one more volume for a running VM (a snapshot's new leaf) and hold it."""
        volume = self._preparer.prepare(ref)
        with self._lock:
            held = self._held_locked(vm)
            if ref not in held:
                held.append(ref)
        return volume

    def forget(self, vm: Vm, ref: VolumeRef) -> None:
        """Stop holding ``ref`` (a merge took it out of the chain) and tear it down."""
        with self._lock:
            held = self._held_locked(vm)
            if ref not in held:
                return
            held.remove(ref)
        self._teardown_all(vm, [ref])

    def swap(self, vm: Vm, old: VolumeRef, new: VolumeRef) -> None:
        """Hold ``new`` (already prepared as part of ``old``'s chain) instead of ``old``."""
        with self._lock:
            held = self._held_locked(vm)
            if new not in held:
                held.append(new)
        self.forget(vm, old)

    def held(self, vm: Vm) -> list[VolumeRef]:
        """The volumes ``vm`` holds (read from its metadata the first time after recovery)."""
        with self._lock:
            return list(self._held_locked(vm))

    def release(self, vm: Vm) -> None:
        """Tear down every volume ``vm`` holds; later calls do nothing. Never raises."""
        with self._lock:
            refs = self._held_locked(vm)
            self._held[vm] = []
        if refs:
            self._teardown_all(vm, refs)
            log.info("vm %s: %d volumes torn down", vm.id, len(refs))

    def lend(self, vm: Vm, refs: list[VolumeRef]) -> list[PreparedVolume]:
        """Volumes prepared for one operation (hibernation memory), not held by the VM; the
        caller gives them back with :meth:`give_back`. All or nothing."""
        volumes: list[PreparedVolume] = []
        try:
            for ref in refs:
                volumes.append(self._preparer.prepare(ref))
        except BaseException:
            self._teardown_all(vm, refs[: len(volumes)])
            raise
        return volumes

    def give_back(self, vm: Vm, refs: list[VolumeRef]) -> None:
        self._teardown_all(vm, refs)

    @contextlib.contextmanager
    def borrowed(self, vm: Vm, refs: list[VolumeRef]) -> Iterator[list[PreparedVolume]]:
        """:meth:`lend` for the duration of a ``with`` block."""
        volumes = self.lend(vm, refs)
        try:
            yield volumes
        finally:
            self.give_back(vm, refs)

    def _held_locked(self, vm: Vm) -> list[VolumeRef]:
        held = self._held.get(vm)
        if held is None:
            held = self._held[vm] = self._recorded(vm)
        return held

    def _recorded(self, vm: Vm) -> list[VolumeRef]:
        """The volumes a VM's metadata names (a VM recovered after a restart)."""
        if not vm.domain_xml:
            return []
        try:
            return [disk.ref for disk in self._preparer.disks(parse_domain(vm.domain_xml))]
        except errors.VirtHostError as e:
            log.warning("vm %s: cannot read its volumes from its metadata: %s", vm.id, e)
            return []

    def _teardown_all(self, vm: Vm, refs: list[VolumeRef]) -> None:
        for ref in reversed(refs):
            try:
                self._preparer.teardown(ref)
            except Exception as e:  # a teardown failure must not stop the others
                log.warning("vm %s: cannot tear down volume %s: %s", vm.id, ref.volume, e)
