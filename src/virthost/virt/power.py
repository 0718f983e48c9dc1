"""Graceful power-down: the guest agent first, then ACPI, then (when forced) destroy.

Runs in a worker, since waiting for a guest takes seconds to minutes. Each method gets
``timeout`` seconds to bring the VM Down (the STOPPED event does that); when none succeeds and
the caller did not force it, the VM goes back to Up and the failure is logged.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import libvirt

from virthost.common import errors
from virthost.virt import vmstatus
from virthost.virt.connection import LibvirtConnection
from virthost.virt.vm import Vm

log = logging.getLogger("virthost.virt.power")

AGENT = (
    "guest agent",
    libvirt.VIR_DOMAIN_SHUTDOWN_GUEST_AGENT,
    libvirt.VIR_DOMAIN_REBOOT_GUEST_AGENT,
)
ACPI = (
    "ACPI",
    libvirt.VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN,
    libvirt.VIR_DOMAIN_REBOOT_ACPI_POWER_BTN,
)


class PowerDown:
    def __init__(self, libvirt_conn: LibvirtConnection, default_timeout: float = 30.0) -> None:
        self._libvirt = libvirt_conn
        self._default_timeout = default_timeout

    def run(self, vm: Vm, *, reboot: bool, timeout: float, force: bool) -> bool:
        methods = [AGENT, ACPI] if vm.guest_agent_connected else [ACPI]
        for name, shutdown_flag, reboot_flag in methods:
            if not self._request(vm, name, reboot_flag if reboot else shutdown_flag, reboot):
                continue
            if reboot:
                return True
            if self._wait_down(vm, timeout):
                log.info("vm %s: down after %s shutdown", vm.id, name)
                return True
            log.info("vm %s: still running %g s after %s shutdown", vm.id, timeout, name)
        if reboot:
            return False
        if force:
            log.info("vm %s: forcing it off", vm.id)
            self._call(vm, "forcing off", lambda dom: dom.destroy())
            return self._wait_down(vm, timeout)
        log.warning("vm %s did not shut down", vm.id)
        with vm.lock:
            vm.stop_reason = None
        if vm.status == vmstatus.POWERING_DOWN:
            vm.set_status(vmstatus.UP)
        return False

    def _request(self, vm: Vm, name: str, flag: int, reboot: bool) -> bool:
        action = "reboot" if reboot else "shutdown"
        try:
            if reboot:
                self._call(vm, f"{name} {action}", lambda dom: dom.reboot(flag))
            else:
                self._call(vm, f"{name} {action}", lambda dom: dom.shutdownFlags(flag))
        except errors.VirtHostError as e:
            log.info("vm %s: %s %s failed: %s", vm.id, name, action, e)
            return False
        return True

    def _call(self, vm: Vm, what: str, func: Any) -> Any:
        return self._libvirt.call(
            lambda conn: func(conn.lookupByUUIDString(vm.id)), f"{what} of vm {vm.id}"
        )

    @staticmethod
    def _wait_down(vm: Vm, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if vm.is_down:
                return True
            time.sleep(0.2)
        return vm.is_down
