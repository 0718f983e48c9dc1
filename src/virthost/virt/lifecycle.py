"""From libvirt's lifecycle and agent events to VDSM's VM statuses and exit reasons.

Pure translation: given a VM and an event, change the VM's status. Runs on the libvirt event
thread, so it only touches memory.
"""

from __future__ import annotations

import logging

import libvirt

from virthost.virt import vmstatus
from virthost.virt.vm import Vm
from virthost.virt.vmstatus import ExitReason

log = logging.getLogger("virthost.virt.lifecycle")

E = libvirt

EVENT_NAMES = {
    E.VIR_DOMAIN_EVENT_DEFINED: "defined",
    E.VIR_DOMAIN_EVENT_UNDEFINED: "undefined",
    E.VIR_DOMAIN_EVENT_STARTED: "started",
    E.VIR_DOMAIN_EVENT_SUSPENDED: "suspended",
    E.VIR_DOMAIN_EVENT_RESUMED: "resumed",
    E.VIR_DOMAIN_EVENT_STOPPED: "stopped",
    E.VIR_DOMAIN_EVENT_SHUTDOWN: "shutdown",
    E.VIR_DOMAIN_EVENT_PMSUSPENDED: "pmsuspended",
    E.VIR_DOMAIN_EVENT_CRASHED: "crashed",
}

_PAUSE_CODES = {
    E.VIR_DOMAIN_EVENT_SUSPENDED_IOERROR: "EIO",
    E.VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY: "POSTCOPY",
}


def _stopped_reason(vm: Vm, detail: int) -> ExitReason:
    if vm.stop_reason is not None:
        return vm.stop_reason
    if detail == E.VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN:
        return ExitReason.USER_SHUTDOWN
    if detail == E.VIR_DOMAIN_EVENT_STOPPED_SAVED:
        return ExitReason.SAVE_STATE_SUCCEEDED
    if detail == E.VIR_DOMAIN_EVENT_STOPPED_MIGRATED:
        return ExitReason.MIGRATION_SUCCEEDED
    if detail == E.VIR_DOMAIN_EVENT_STOPPED_FROM_SNAPSHOT:
        return ExitReason.SUCCESS
    if detail == E.VIR_DOMAIN_EVENT_STOPPED_DESTROYED:
        # somebody else (virsh destroy, a killed qemu reported as such) ended it
        return ExitReason.LOST_QEMU_CONNECTION
    return ExitReason.LOST_QEMU_CONNECTION  # CRASHED, FAILED: qemu died under us


def on_lifecycle(vm: Vm, event: int, detail: int) -> None:
    name = EVENT_NAMES.get(event, str(event))
    log.debug("vm %s: lifecycle %s detail %d", vm.id, name, detail)
    if event == E.VIR_DOMAIN_EVENT_STARTED:
        if vm.status in (vmstatus.WAIT_FOR_LAUNCH, vmstatus.RESTORING_STATE):
            if detail == E.VIR_DOMAIN_EVENT_STARTED_RESTORED or vm.guest_agent_connected:
                vm.set_status(vmstatus.UP)
            else:
                vm.set_status(vmstatus.POWERING_UP)
    elif event == E.VIR_DOMAIN_EVENT_SUSPENDED:
        vm.pause_code = _PAUSE_CODES.get(detail, "NOERR")
        if vm.status != vmstatus.SAVING_STATE:
            vm.set_status(vmstatus.PAUSED)
    elif event == E.VIR_DOMAIN_EVENT_RESUMED:
        vm.pause_code = "NOERR"
        booting = vm.status in (vmstatus.WAIT_FOR_LAUNCH, vmstatus.POWERING_UP)
        waiting_for_agent = booting and not vm.guest_agent_connected
        vm.set_status(vmstatus.POWERING_UP if waiting_for_agent else vmstatus.UP)
    elif event == E.VIR_DOMAIN_EVENT_PMSUSPENDED:
        vm.set_status(vmstatus.PAUSED)
    elif event == E.VIR_DOMAIN_EVENT_SHUTDOWN:
        if not vm.is_down:
            vm.set_status(vmstatus.POWERING_DOWN)
    elif event == E.VIR_DOMAIN_EVENT_STOPPED:
        reason = _stopped_reason(vm, detail)
        vm.guest_agent_connected = False
        vm.go_down(reason)
    elif event == E.VIR_DOMAIN_EVENT_CRASHED:
        log.warning("vm %s: guest crashed (detail %d)", vm.id, detail)


def on_agent(vm: Vm, state: int) -> None:
    connected = state == E.VIR_CONNECT_DOMAIN_EVENT_AGENT_LIFECYCLE_STATE_CONNECTED
    vm.guest_agent_connected = connected
    log.info("vm %s: guest agent %s", vm.id, "connected" if connected else "disconnected")
    if connected and vm.status == vmstatus.POWERING_UP:
        vm.set_status(vmstatus.UP)


def status_of_domain_state(state: int, reason: int, agent: bool) -> str:
    """The status of a running domain as read from libvirt (recovery, resynchronisation)."""
    if state in (E.VIR_DOMAIN_RUNNING,):
        return vmstatus.UP if agent else vmstatus.POWERING_UP
    if state in (E.VIR_DOMAIN_PAUSED, E.VIR_DOMAIN_PMSUSPENDED):
        return vmstatus.PAUSED
    if state == E.VIR_DOMAIN_SHUTDOWN:
        return vmstatus.POWERING_DOWN
    return vmstatus.DOWN
