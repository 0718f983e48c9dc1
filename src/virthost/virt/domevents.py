"""Routing libvirt's domain events to our VMs.

Registered again on every new libvirt connection (after libvirtd restarts), so events keep
flowing. Events of domains we do not manage are ignored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import libvirt

from virthost.virt import lifecycle
from virthost.virt.container import VmContainer
from virthost.virt.vm import Vm

log = logging.getLogger("virthost.virt.events")


class DomainEvents:
    def __init__(
        self,
        vms: VmContainer,
        on_reboot: Callable[[Vm], None] | None = None,
    ) -> None:
        self._vms = vms
        self._on_reboot = on_reboot

    def register(self, conn: Any) -> None:
        """on_connect listener of the libvirt connection."""
        conn.domainEventRegisterAny(
            None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._lifecycle, None
        )
        conn.domainEventRegisterAny(
            None, libvirt.VIR_DOMAIN_EVENT_ID_AGENT_LIFECYCLE, self._agent, None
        )
        conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_REBOOT, self._reboot, None)
        log.info("domain events registered")

    def _vm(self, dom: Any) -> Vm | None:
        try:
            return self._vms.find(dom.UUIDString())
        except libvirt.libvirtError:
            return None

    def _lifecycle(self, _conn: Any, dom: Any, event: int, detail: int, _opaque: Any) -> None:
        vm = self._vm(dom)
        if vm is not None:
            lifecycle.on_lifecycle(vm, event, detail)

    def _agent(self, _conn: Any, dom: Any, state: int, _reason: int, _opaque: Any) -> None:
        vm = self._vm(dom)
        if vm is not None:
            lifecycle.on_agent(vm, state)

    def _reboot(self, _conn: Any, dom: Any, _opaque: Any) -> None:
        vm = self._vm(dom)
        if vm is not None:
            log.info("vm %s: guest rebooted", vm.id)
            if self._on_reboot is not None:
                self._on_reboot(vm)
