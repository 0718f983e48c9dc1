"""Verbs that act on what the guest sees: balloon, file system freeze, display ticket, screen.

They share the plumbing of :mod:`virthost.virt.deviceops` (time-boxed guarded libvirt calls,
the live XML, hooks) but change no device, so they take no device lock and run during a
migration as in VDSM. Notes on each:

* VM.setBalloonTarget only sets the *target* (``setMemoryFlags(LIVE)``); the guest's balloon
  driver moves towards it over the next seconds and the sampled ``balloonInfo`` shows where it
  got. Below what the guest needs (about 96 MiB for the test guest) the guest OOM-kills its own
  processes, so the engine's policy, not this verb, must respect a floor.
* VM.freeze/thaw go through qemu-guest-agent; an agent that does not answer is
  NonResponsiveGuestAgent (19), an agent or hypervisor without the command is
  UnsupportedOperation (75), anything else the verb's own code (76/77), as in VDSM.
* VM.setTicket changes the password of the first graphics device in place (a copy of the live
  ``<graphics>`` with ``passwd``/``passwdValidTo``), never in the stored definition. QEMU only
  accepts a VNC password when the display was started with password authentication, which
  the engine's XML asks for with an already expired ``passwd``.
* VM.screenshot streams the image libvirt takes (PNG or PPM, as libvirt's QEMU gives it) and
  returns it base64-encoded; a VM without any screen gets UnsupportedOperation, not a fake
  picture. The size is bounded so a huge framebuffer cannot exhaust the daemon's memory.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import libvirt

from virthost.common import errors
from virthost.hooks import points
from virthost.virt import devops_xml as dx
from virthost.virt.deviceops import DomainAccess

log = logging.getLogger("virthost.virt.devices")

SCREENSHOT_MAX_BYTES = 64 * 1024 * 1024
_CHUNK = 256 * 1024
_UNSUPPORTED = {
    libvirt.VIR_ERR_NO_SUPPORT: errors.UnsupportedOperation,
    libvirt.VIR_ERR_OPERATION_UNSUPPORTED: errors.UnsupportedOperation,
}
_AGENT_ERRORS = {
    libvirt.VIR_ERR_AGENT_UNRESPONSIVE: errors.NonResponsiveGuestAgent,
    **_UNSUPPORTED,
}
_VALID_TO_FORMAT = "%Y-%m-%dT%H:%M:%S"  # libvirt's passwdValidTo, in UTC


class GuestOps:
    """VM.setBalloonTarget, VM.freeze/thaw, VM.setTicket and VM.screenshot."""

    def __init__(self, access: DomainAccess, *, now: Callable[[], float] = time.time) -> None:
        self._access = access
        self._now = now

    def set_balloon_target(self, vm_id: str, target_kib: int) -> None:
        """Ask the balloon to leave the guest ``target_kib`` KiB of memory."""
        if target_kib < 1:
            raise errors.BalloonError(f"target={target_kib}: not a positive amount of KiB")
        vm = self._access.virt.running_vm(vm_id)
        self._access.apply(
            vm,
            "setting the balloon target of",
            errors.BalloonError,
            lambda dom: dom.setMemoryFlags(target_kib, libvirt.VIR_DOMAIN_AFFECT_LIVE),
        )
        vm.balloon_target_kib = target_kib
        log.info("vm %s: balloon target %d KiB", vm.id, target_kib)

    def freeze(self, vm_id: str) -> None:
        vm = self._access.virt.running_vm(vm_id)
        frozen = self._access.apply(
            vm,
            "freezing the file systems of",
            errors.FreezeGuestFSFailed,
            lambda dom: dom.fsFreeze(),
            _AGENT_ERRORS,
        )
        log.info("vm %s: %s guest file systems frozen", vm.id, frozen)

    def thaw(self, vm_id: str) -> None:
        vm = self._access.virt.running_vm(vm_id)
        thawed = self._access.apply(
            vm,
            "thawing the file systems of",
            errors.ThawGuestFSFailed,
            lambda dom: dom.fsThaw(),
            _AGENT_ERRORS,
        )
        log.info("vm %s: %s guest file systems thawed", vm.id, thawed)

    def set_ticket(
        self,
        vm_id: str,
        password: str,
        ttl: int,
        existing_conn_action: str,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        """Set the display password, valid for ``ttl`` seconds (no expiry when ttl <= 0)."""
        access = self._access
        vm = access.virt.running_vm(vm_id)
        extra = hook_params(params or {})
        domain_xml = access.live_xml(vm)
        graphics = dx.parse_live(domain_xml).find("devices/graphics")
        if graphics is None:
            raise errors.SpiceTicketError(f"vm {vm.id} has no graphics device configured")
        valid_to = None
        if ttl > 0:
            valid_to = time.strftime(_VALID_TO_FORMAT, time.gmtime(self._now() + ttl))
        xml = dx.tostring(dx.with_ticket(graphics, password, valid_to, existing_conn_action))
        access.hook(points.BEFORE_VM_SET_TICKET, domain_xml, vm, before=True, extra=extra)
        access.apply(
            vm,
            "setting the display ticket of",
            errors.SpiceTicketError,
            lambda dom: dom.updateDeviceFlags(xml, libvirt.VIR_DOMAIN_AFFECT_LIVE),
        )
        access.hook(points.AFTER_VM_SET_TICKET, domain_xml, vm, before=False, extra=extra)
        log.info("vm %s: display ticket set (valid to %s UTC)", vm.id, valid_to or "forever")

    def screenshot(self, vm_id: str) -> dict[str, Any]:
        """The guest's screen: ``{"data": base64, "encoding": "base64", "mimeType": ...}``."""
        access = self._access
        vm = access.virt.running_vm(vm_id)
        if not dx.has_display(access.live_root(vm)):
            raise errors.UnsupportedOperation(f"vm {vm.id} has no display to take a screenshot of")
        mime, data = access.apply(
            vm,
            "taking a screenshot of",
            errors.VirtHostError,
            capture_screen,
            {**_UNSUPPORTED, libvirt.VIR_ERR_OPERATION_INVALID: errors.UnsupportedOperation},
        )
        return {
            "data": base64.b64encode(data).decode("ascii"),
            "encoding": "base64",
            "mimeType": mime,
        }


def capture_screen(dom: Any, limit: int = SCREENSHOT_MAX_BYTES) -> tuple[str, bytes]:
    """Take screen 0 of ``dom`` through a libvirt stream; (MIME type, image bytes)."""
    stream = dom.connect().newStream(0)
    try:
        mime = str(dom.screenshot(stream, 0, 0))
        chunks: list[bytes] = []
        size = 0
        while chunk := stream.recv(_CHUNK):
            if not isinstance(chunk, bytes):
                raise errors.VirtHostError(f"screenshot stream answered {chunk!r}")
            size += len(chunk)
            if size > limit:
                raise errors.VirtHostError(f"screenshot larger than {limit} bytes")
            chunks.append(chunk)
        stream.finish()
    except BaseException:
        try:
            stream.abort()
        except libvirt.libvirtError as e:
            log.debug("aborting the screenshot stream: %s", e)
        raise
    return mime, b"".join(chunks)


def hook_params(params: Mapping[str, Any]) -> dict[str, str]:
    """setTicket's ``params`` as hook environment values (scalars only)."""
    found: dict[str, str] = {}
    for name, value in params.items():
        if isinstance(value, bool):
            found[str(name)] = str(value).lower()
        elif isinstance(value, str | int | float):
            found[str(name)] = str(value)
        else:
            raise errors.InvalidParameter(
                f"params.{name}: hook parameters must be strings or numbers", param="params"
            )
    return found
