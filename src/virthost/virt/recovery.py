"""Recovering the VMs after the daemon (re)starts: libvirt is the source of truth.

Every domain carrying our metadata element becomes a VM again, with the status read from
libvirt and what the metadata kept (start time, custom properties, launch flags); nothing is
done to the domains themselves, so running guests are not disturbed. A domain that stopped
while the daemon was down is reported Down with the reason libvirt gives. Domains without our
metadata were not created by us and are left alone.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import libvirt

from virthost.virt import lifecycle, vmstatus
from virthost.virt.connection import LibvirtConnection
from virthost.virt.domxml import parse_domain
from virthost.virt.vmstatus import ExitReason

log = logging.getLogger("virthost.virt.recovery")

OVIRT_VM_NS = "http://ovirt.org/vm/1.0"
AGENT_CONNECTED = "name='org.qemu.guest_agent.0' state='connected'"

_SHUTOFF_REASONS = {
    libvirt.VIR_DOMAIN_SHUTOFF_SHUTDOWN: ExitReason.USER_SHUTDOWN,
    libvirt.VIR_DOMAIN_SHUTOFF_SAVED: ExitReason.SAVE_STATE_SUCCEEDED,
    libvirt.VIR_DOMAIN_SHUTOFF_MIGRATED: ExitReason.MIGRATION_SUCCEEDED,
    libvirt.VIR_DOMAIN_SHUTOFF_FROM_SNAPSHOT: ExitReason.SUCCESS,
}


@dataclass(frozen=True)
class FoundDomain:
    uuid: str
    name: str
    xml: str
    state: int
    reason: int


def shutoff_reason(reason: int) -> ExitReason:
    """Why an inactive domain stopped, from libvirt's shut-off reason."""
    return _SHUTOFF_REASONS.get(reason, ExitReason.LOST_QEMU_CONNECTION)


def list_domains(conn: Any) -> list[FoundDomain]:
    found = []
    for dom in conn.listAllDomains(0):
        try:
            state, reason = dom.state()
            found.append(FoundDomain(dom.UUIDString(), dom.name(), dom.XMLDesc(0), state, reason))
        except libvirt.libvirtError as e:  # it went away while we looked
            log.info("skipping a domain that vanished during recovery: %s", e)
    return found


def recover(service: Any, libvirt_conn: LibvirtConnection) -> int:
    """Rebuild ``service.vms`` from libvirt; returns how many VMs were recovered."""
    domains = libvirt_conn.call(list_domains, "listing domains for recovery")
    recovered = 0
    for found in domains:
        if OVIRT_VM_NS not in found.xml:
            log.info("domain %s (%s) is external; left alone", found.uuid, found.name)
            continue
        if service.vms.find(found.uuid) is not None:
            continue
        try:
            domain = parse_domain(found.xml)
        except Exception as e:
            log.warning("domain %s: cannot read its XML (%s); left alone", found.uuid, e)
            continue
        vm = service.new_vm(found.uuid, found.name, status=vmstatus.WAIT_FOR_LAUNCH)
        vm.domain_xml = found.xml
        vm.custom = {str(k): str(v) for k, v in domain.metadata.custom.items()}
        vm.launch_paused = bool(domain.metadata.launch_paused)
        vm.destroy_on_reboot = bool(domain.metadata.destroy_on_reboot)
        if domain.metadata.start_time:
            vm.start_time = float(domain.metadata.start_time)
        vm.guest_agent_connected = AGENT_CONNECTED in found.xml
        service.vms.add(vm)
        if found.state == libvirt.VIR_DOMAIN_SHUTOFF:
            reason = shutoff_reason(found.reason)
            vm.go_down(reason, f"{vmstatus.EXIT_MESSAGES[reason]} (while the daemon was down)")
        else:
            status = lifecycle.status_of_domain_state(
                found.state, found.reason, vm.guest_agent_connected
            )
            vm.set_status(status)
        recovered += 1
        log.info("recovered vm %s (%s): %s", vm.id, vm.name, vm.status)
    return recovered


def recover_with_retries(
    service: Any, libvirt_conn: LibvirtConnection, interval: float = 5.0
) -> int:
    """Keep trying until libvirt answers (the daemon answers 99 meanwhile)."""
    while True:
        try:
            return recover(service, libvirt_conn)
        except Exception as e:
            log.warning("recovery failed (%s); retrying in %g s", e, interval)
            time.sleep(interval)
