"""The VM namespace: translates VM.* verbs into calls of the VM service.

Device and guest verbs (media, hot-plug, balloon, freeze, ticket, screenshot, getInfo) go to
:class:`~virthost.virt.deviceops.DeviceOps` and :class:`~virthost.virt.devops_guest.GuestOps`,
which work on the service's VMs through its public accessors.
"""

from __future__ import annotations

from typing import Any

from virthost.common import errors
from virthost.virt.deviceops import DeviceOps, DomainAccess
from virthost.virt.devops_guest import GuestOps
from virthost.virt.service import VirtService


def as_int(value: Any, name: str) -> int:
    """The schema's IntOrString: a number or decimal text (VDSM's clients send both)."""
    try:
        return int(value)
    except (TypeError, ValueError):
        raise errors.InvalidParameter(f"{name} must be a whole number, got {value!r}") from None


def as_bool(value: Any) -> bool:
    """The schema's BoolOrString: true/false or their text."""
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


class VmApi:
    def __init__(self, virt: VirtService) -> None:
        self._virt = virt
        access = DomainAccess(virt)
        self._devices = DeviceOps(access)
        self._guest = GuestOps(access)

    def runs_inline(self, verb: str) -> bool:
        """getStats runs on the reactor unless stats hooks have to run for it."""
        if verb == "getStats":
            return not self._virt.stats_hooks_installed(one_vm=True)
        return True

    def create(self, vmID: str, vmParams: dict[str, Any]) -> dict[str, Any]:
        return self._virt.create(vmID, vmParams)

    def destroy(self, vmID: str, gracefulAttempts: Any = 1) -> None:
        self._virt.destroy(vmID, as_int(gracefulAttempts, "gracefulAttempts"))

    def shutdown(
        self,
        vmID: str,
        delay: Any = None,
        message: str | None = None,
        reboot: Any = False,
        timeout: Any = None,
        force: Any = False,
    ) -> None:
        self._virt.shutdown(
            vmID,
            delay=float(as_int(delay, "delay")) if delay is not None else 0.0,
            message=message or "",
            reboot=as_bool(reboot),
            timeout=float(as_int(timeout, "timeout")) if timeout is not None else None,
            force=as_bool(force),
        )

    def hibernate(self, vmID: str, hibernationVolHandle: Any) -> None:
        self._virt.hibernate(vmID, hibernationVolHandle)

    def pause(self, vmID: str) -> None:
        self._virt.pause(vmID)

    def cont(self, vmID: str) -> None:
        self._virt.cont(vmID)

    def reset(self, vmID: str) -> None:
        self._virt.reset(vmID)

    def snapshot(
        self,
        vmID: str,
        snapDrives: list[dict[str, Any]],
        snapMemory: str | None = None,
        frozen: Any = False,
        jobUUID: str | None = None,
        timeout: Any = 30,
        freeze_timeout: Any = 8,
    ) -> dict[str, Any]:
        """Runs to its end within the call (a disk-only snapshot takes well under a second);
        ``jobUUID``, ``timeout`` and ``freeze_timeout`` are accepted for VDSM's clients."""
        return self._virt.snapshot(vmID, snapDrives, snapMemory, as_bool(frozen))

    def merge(
        self,
        vmID: str,
        drive: dict[str, Any],
        baseVolUUID: str,
        topVolUUID: str,
        bandwidth: Any = 0,
        jobUUID: str | None = None,
    ) -> None:
        self._virt.merge(
            vmID, drive, baseVolUUID, topVolUUID, as_int(bandwidth, "bandwidth"), jobUUID
        )

    def getStats(self, vmID: str) -> list[dict[str, Any]]:
        return self._virt.get_stats(vmID)

    def setDestroyOnReboot(self, vmID: str) -> None:
        self._virt.set_destroy_on_reboot(vmID)

    # --- devices and guest (virthost.virt.deviceops, devops_guest) -----------------------

    def getInfo(self, vmID: str) -> dict[str, Any]:
        return self._devices.info(vmID)

    def changeCD(self, vmID: str, driveSpec: Any) -> dict[str, Any]:
        return self._devices.change_media(vmID, "cdrom", driveSpec)

    def changeFloppy(self, vmID: str, driveSpec: Any) -> dict[str, Any]:
        return self._devices.change_media(vmID, "floppy", driveSpec)

    def hotplugDisk(self, vmID: str, params: dict[str, Any]) -> dict[str, Any]:
        return self._devices.hotplug_disk(vmID, params)

    def hotunplugDisk(self, vmID: str, params: dict[str, Any]) -> dict[str, Any]:
        return self._devices.hotunplug_disk(vmID, params)

    def hotplugNic(self, vmID: str, params: dict[str, Any]) -> dict[str, Any]:
        return self._devices.hotplug_nic(vmID, params)

    def hotunplugNic(self, vmID: str, params: dict[str, Any]) -> dict[str, Any]:
        return self._devices.hotunplug_nic(vmID, params)

    def setBalloonTarget(self, vmID: str, target: Any) -> None:
        self._guest.set_balloon_target(vmID, as_int(target, "target"))

    def freeze(self, vmID: str) -> None:
        self._guest.freeze(vmID)

    def thaw(self, vmID: str) -> None:
        self._guest.thaw(vmID)

    def setTicket(
        self,
        vmID: str,
        password: str,
        ttl: Any,
        existingConnAction: str,
        params: dict[str, Any] | None = None,
    ) -> None:
        self._guest.set_ticket(vmID, password, as_int(ttl, "ttl"), existingConnAction, params)

    def screenshot(self, vmID: str) -> dict[str, Any]:
        return self._guest.screenshot(vmID)
