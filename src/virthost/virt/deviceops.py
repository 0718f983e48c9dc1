"""Changing a running VM's devices: media, disk and NIC hot(un)plug, and VM.getInfo.

The device verbs share one shape, kept in :class:`DomainAccess` so each verb reads as its
steps: read the live XML (libvirt's, never a cached copy: the guest's devices are what libvirt
says they are), find or build the device element, pass its XML through the ``before_*`` hook
(which may rewrite it), give it to libvirt, run the ``after_*`` hook, and answer with the VM's
definition as it is now.

Why the details are as they are:

* Every libvirt call is time-boxed through :meth:`VirtService.domain_call`, and every libvirt
  failure becomes the verb's own VDSM error (ChangeDiskFailed 41, HotplugDiskFailed 45...)
  carrying libvirt's message, inside the call. Converting there matters: left alone, some
  libvirt errors (a missing medium is a "system error") look like a broken connection and
  would make the connection layer reconnect and run the change a second time.
* Changes go to the live domain and, when the domain is persistent and (for changes to an
  existing device) its stored definition has the device too, to that definition, so a
  restart of the VM keeps what the engine did.
* Hot-unplug only *asks* the guest to let go of the device. The verb waits, polling the live
  XML, until the device is gone (bounded, VDSM's 30 s), so the engine's next step never
  races a device that is still there.
* One device change at a time per VM (VDSM serialises them too), and none while the VM
  migrates: the destination was built from the source's devices.
"""

from __future__ import annotations

import contextlib
import threading
import time
import weakref
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

import libvirt

from virthost.common import errors
from virthost.common.timebox import TimedOut
from virthost.hooks import points
from virthost.virt import devops_xml as dx
from virthost.virt import vmstatus
from virthost.virt.connection import LibvirtError
from virthost.virt.devops_info import vm_definition
from virthost.virt.vm import Vm
from virthost.virt.vmhooks import DomxmlHooks

UNPLUG_TIMEOUT = 30.0
POLL_INTERVAL = 0.5
ErrorType = type[errors.VirtHostError]

_LIVE: int = libvirt.VIR_DOMAIN_AFFECT_LIVE
_CONFIG: int = libvirt.VIR_DOMAIN_AFFECT_CONFIG
_UNPLUG_HOOKS = {
    "disk": (points.BEFORE_DISK_HOTUNPLUG, points.AFTER_DISK_HOTUNPLUG),
    "nic": (points.BEFORE_NIC_HOTUNPLUG, points.AFTER_NIC_HOTUNPLUG),
}
_MIGRATING = frozenset({vmstatus.MIGRATION_SOURCE, vmstatus.MIGRATION_DESTINATION})


class VirtAccess(Protocol):
    """What the device verbs need from the VM service (VirtService provides it)."""

    @property
    def hooks(self) -> DomxmlHooks | None: ...

    def get_vm(self, vm_id: str) -> Vm: ...

    def running_vm(self, vm_id: str) -> Vm: ...

    def domain_call(self, vm: Vm, what: str, func: Callable[[Any], Any]) -> Any: ...


class DomainAccess:
    """The steps the device verbs share: live XML, guarded libvirt calls, hooks, locking."""

    def __init__(self, virt: VirtAccess) -> None:
        self.virt = virt
        self._locks: weakref.WeakKeyDictionary[Vm, threading.Lock] = weakref.WeakKeyDictionary()
        self._locks_guard = threading.Lock()

    @contextlib.contextmanager
    def changing(self, vm: Vm) -> Iterator[None]:
        """Hold the VM's device lock; MigrationInProgress (51) while it migrates."""
        if vm.status in _MIGRATING:
            raise errors.MigrationInProgress(f"vm {vm.id} is in status {vm.status}")
        with self._locks_guard:
            lock = self._locks.setdefault(vm, threading.Lock())
        with lock:
            yield

    def live_xml(self, vm: Vm) -> str:
        """libvirt's live XML of the VM, also kept as the VM's last known XML."""
        xml = str(self.virt.domain_call(vm, "reading the XML of", lambda dom: dom.XMLDesc(0)))
        with vm.lock:
            vm.domain_xml = xml
        return xml

    def live_root(self, vm: Vm) -> ET.Element:
        return dx.parse_live(self.live_xml(vm))

    def apply(
        self,
        vm: Vm,
        what: str,
        error: ErrorType,
        func: Callable[[Any], Any],
        by_code: Mapping[int, ErrorType] | None = None,
    ) -> Any:
        """``func(virDomain)`` time-boxed; any failure becomes ``error`` with libvirt's words.

        ``by_code`` picks another error for some libvirt error codes (the agent is not
        responding...). A domain libvirt no longer has is NoSuchVM (1), as in VDSM.
        """

        def guarded(dom: Any) -> Any:
            try:
                return func(dom)
            except libvirt.libvirtError as e:
                code = e.get_error_code()
                if code == libvirt.VIR_ERR_NO_DOMAIN:
                    raise errors.NoSuchVM(f"{vm.id}: no libvirt domain") from None
                chosen = (by_code or {}).get(code, error)
                raise chosen(e.get_error_message() or str(e)) from None

        try:
            return self.virt.domain_call(vm, what, guarded)
        except (LibvirtError, TimedOut) as e:
            raise error(e.detail or e.wire_message) from None

    def hook(
        self,
        point: str,
        xml: str,
        vm: Vm,
        *,
        before: bool,
        extra: Mapping[str, str] | None = None,
    ) -> str:
        """Run ``point``'s scripts on ``xml``; a failing before_* hook stops the verb."""
        hooks = self.virt.hooks
        if hooks is None:
            return xml
        custom = {**vm.custom, **(extra or {})}
        return hooks.run_domxml(point, xml, custom=custom, vm_id=vm.id, raise_errors=before)

    def definition(self, vm: Vm) -> dict[str, Any]:
        """The VM's definition from its live XML (the last known one once it is gone)."""
        xml = vm.domain_xml
        if not vm.is_down:
            with contextlib.suppress(errors.NoSuchVM, LibvirtError, TimedOut):
                xml = self.live_xml(vm)
        return vm_definition(vm, xml)


def change_flags(dom: Any, tag: str, key: str | None) -> int:
    """LIVE, plus CONFIG when the stored definition has the device ``key`` too."""
    if key is None or not dom.isPersistent():
        return _LIVE
    stored = dx.parse_live(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    return _LIVE | _CONFIG if dx.has_device(stored, tag, key) else _LIVE


def plug_flags(dom: Any) -> int:
    """LIVE, plus CONFIG for a persistent domain (the device survives a restart)."""
    return _LIVE | _CONFIG if dom.isPersistent() else _LIVE


class DeviceOps:
    """VM.changeCD/changeFloppy, VM.hot(un)plugDisk/Nic and VM.getInfo."""

    def __init__(
        self,
        access: DomainAccess,
        *,
        unplug_timeout: float = UNPLUG_TIMEOUT,
        poll_interval: float = POLL_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._access = access
        self._unplug_timeout = unplug_timeout
        self._poll_interval = poll_interval
        self._clock = clock
        self._sleep = sleep

    # --- media -------------------------------------------------------------------------

    def change_media(self, vm_id: str, device: str, drive_spec: object) -> dict[str, Any]:
        """Insert ``drive_spec``'s medium into the cdrom/floppy drive; an empty path ejects."""
        if device not in dx.MEDIA_DEVICES:
            raise ValueError(f"not a media drive: {device!r}")
        request = dx.media_request(drive_spec)
        access = self._access
        vm = access.virt.running_vm(vm_id)
        with access.changing(vm):
            drive = dx.find_media(access.live_root(vm), device, request.target)
            if drive is None:
                named = f" {request.target}" if request.target else ""
                raise errors.ChangeDiskFailed(f"vm {vm.id} has no {device} drive{named}")
            target = dx.target_dev(drive)
            xml = dx.tostring(dx.with_medium(drive, request.path))
            flags = libvirt.VIR_DOMAIN_DEVICE_MODIFY_FORCE  # even if the guest locked the tray

            def update(dom: Any) -> None:
                dom.updateDeviceFlags(xml, change_flags(dom, "disk", target) | flags)

            access.apply(vm, f"changing the {device} of", errors.ChangeDiskFailed, update)
        return access.definition(vm)

    # --- disks -------------------------------------------------------------------------

    def hotplug_disk(self, vm_id: str, params: object) -> dict[str, Any]:
        access = self._access
        vm = self._vm_of(vm_id, params)
        disk = dx.device_from_params(params, "disk", "drive", plug=True)
        with access.changing(vm):
            live = access.live_root(vm)
            target = dx.assign_target(disk, live)
            if dx.has_device(live, "disk", target):
                raise errors.HotplugDiskFailed(f"vm {vm.id} has a disk {target} already")
            self._plug(vm, disk, "disk", errors.HotplugDiskFailed)
        return access.definition(vm)

    _PLUG_HOOKS = {
        "disk": (points.BEFORE_DISK_HOTPLUG, points.AFTER_DISK_HOTPLUG),
        "NIC": (points.BEFORE_NIC_HOTPLUG, points.AFTER_NIC_HOTPLUG),
    }

    def _plug(self, vm: Vm, device: Any, kind: str, error: type[errors.VirtHostError]) -> None:
        """Hooks, then attach (live, and to the definition when persistent), then hooks."""
        access = self._access
        before, after = self._PLUG_HOOKS[kind]
        xml = access.hook(before, dx.tostring(device), vm, before=True)
        access.apply(
            vm,
            f"plugging a {kind} into",
            error,
            lambda dom: dom.attachDeviceFlags(xml, plug_flags(dom)),
        )
        access.hook(after, xml, vm, before=False)

    def hotunplug_disk(self, vm_id: str, params: object) -> dict[str, Any]:
        vm = self._vm_of(vm_id, params)
        selector = dx.device_from_params(params, "disk", "drive", plug=False)
        with self._access.changing(vm):
            disk = dx.find_disk(self._access.live_root(vm), selector)
            if disk is None:
                raise errors.HotunplugDiskFailed(f"vm {vm.id} has no such disk")
            self._unplug(vm, disk, "disk", dx.target_dev(disk), errors.HotunplugDiskFailed)
        return self._access.definition(vm)

    # --- NICs --------------------------------------------------------------------------

    def hotplug_nic(self, vm_id: str, params: object) -> dict[str, Any]:
        access = self._access
        vm = self._vm_of(vm_id, params)
        nic = dx.device_from_params(params, "interface", "nic", plug=True)
        mac = dx.mac_of(nic)
        with access.changing(vm):
            if mac is not None and dx.has_device(access.live_root(vm), "interface", mac):
                raise errors.HotplugNicFailed(f"vm {vm.id} has a NIC with MAC {mac} already")
            self._plug(vm, nic, "NIC", errors.HotplugNicFailed)
        return access.definition(vm)

    def hotunplug_nic(self, vm_id: str, params: object) -> dict[str, Any]:
        vm = self._vm_of(vm_id, params)
        selector = dx.device_from_params(params, "interface", "nic", plug=False)
        with self._access.changing(vm):
            nic = dx.find_interface(self._access.live_root(vm), selector)
            if nic is None:
                raise errors.HotunplugNicFailed(f"vm {vm.id} has no such NIC")
            self._unplug(vm, nic, "interface", dx.mac_of(nic), errors.HotunplugNicFailed)
        return self._access.definition(vm)

    # --- VM.getInfo --------------------------------------------------------------------

    def info(self, vm_id: str) -> dict[str, Any]:
        return self._access.definition(self._access.virt.get_vm(vm_id))

    # --- shared ------------------------------------------------------------------------

    def _vm_of(self, vm_id: str, params: object) -> Vm:
        vm = self._access.virt.running_vm(vm_id)
        repeated = params.get("vmId") if isinstance(params, Mapping) else None
        if repeated is not None and str(repeated).lower() != vm.id:
            raise errors.InvalidParameter(
                f"params.vmId {repeated!r} differs from vmID {vm.id}", param="params.vmId"
            )
        return vm

    def _unplug(
        self, vm: Vm, device: ET.Element, tag: str, key: str | None, error: ErrorType
    ) -> None:
        """Ask libvirt to detach ``device`` and wait until the guest let it go."""
        if key is None:
            raise error(f"vm {vm.id}: the {tag} has no {'target' if tag == 'disk' else 'MAC'}")
        kind = "disk" if tag == "disk" else "nic"
        before, after = _UNPLUG_HOOKS[kind]
        access = self._access
        xml = access.hook(before, dx.tostring(device), vm, before=True)
        access.apply(
            vm,
            f"unplugging a {kind} from",
            error,
            lambda dom: dom.detachDeviceFlags(xml, change_flags(dom, tag, key)),
        )
        deadline = self._clock() + self._unplug_timeout
        while dx.has_device(access.live_root(vm), tag, key):
            if self._clock() >= deadline:
                raise error(
                    f"vm {vm.id}: the guest did not release {tag} {key} "
                    f"within {self._unplug_timeout:g} s"
                )
            self._sleep(self._poll_interval)
        access.hook(after, xml, vm, before=False)
