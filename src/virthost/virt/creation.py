"""Starting a VM: the work VM.create hands to a creation worker.

VM.create answers at once (WaitForLaunch); a worker of the creation executor, whose size
bounds how many VMs start in parallel, then prepares the domain XML for this host, runs the
``before_vm_start`` hooks (which may rewrite it), defines the domain (persistent, so its XML
and our metadata survive restarts of the daemon and of libvirtd) and starts it.

Disks that name storage volumes are prepared first (:class:`VmVolumes`), before anything is
defined: the domain XML then points at the real files. A memory image to restore from may be
a file or a volume, prepared only for the restore.

On any failure the domain is undefined again, the prepared volumes are torn down and the VM
goes Down with LIBVIRT_START_FAILED and libvirt's (or the hook's, or the storage's) message:
nothing is left behind but the Down VM, which the engine clears with VM.destroy.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import libvirt

from virthost.common import errors
from virthost.virt import hostenv, vmstatus
from virthost.virt.connection import LibvirtConnection
from virthost.virt.domxml import DomainXml, prepare_for_host
from virthost.virt.memvolumes import MemoryTarget, MemoryVolumes
from virthost.virt.storagedrives import VmVolumes
from virthost.virt.vm import Vm
from virthost.virt.vmhooks import DomxmlHooks, run_vm_hook
from virthost.virt.vmstatus import ExitReason

log = logging.getLogger("virthost.virt.creation")


@dataclass(frozen=True)
class CreationSettings:
    domain_type: str = "qemu"  # resolved: kvm or qemu
    tcg_cache_mib: int = 16
    start_timeout: float = 120.0
    emulator: str = "/usr/bin/qemu-system-x86_64"


def host_machine(machine: str | None) -> str | None:
    """A machine type this host's QEMU has, for one an engine sent (None: keep it).

    Engines send their distribution's versioned types (``pc-i440fx-rhel7.6.0``,
    ``pc-q35-rhel8.6.0``); upstream QEMU has the same two families under their generic names.
    """
    if not machine or "rhel" not in machine:
        return None
    return "q35" if "q35" in machine else "pc"


def host_emulator(domain: DomainXml, default: str) -> str | None:
    """The emulator to use when the one the XML names does not exist here (None: keep it)."""
    emulator = domain.root.findtext("devices/emulator")
    if emulator and os.path.isabs(emulator) and os.path.exists(emulator):
        return None
    return default


class VmStarter:
    def __init__(
        self,
        libvirt_conn: LibvirtConnection,
        settings: CreationSettings,
        hooks: DomxmlHooks | None = None,
        volumes: VmVolumes | None = None,
    ) -> None:
        self._libvirt = libvirt_conn
        self._settings = settings
        self._hooks = hooks
        self._volumes = volumes
        self._security_models: frozenset[str] | None = None

    def _host_security_models(self) -> frozenset[str] | None:
        if self._security_models is None:
            try:
                self._security_models = self._libvirt.call(
                    hostenv.security_models, "reading security models"
                )
            except errors.VirtHostError as e:
                log.warning("cannot read the host's security models: %s", e)
        return self._security_models

    def start(self, vm: Vm, domain: DomainXml, restore_from: MemoryTarget | None = None) -> None:
        """Run in a creation worker: define and start the domain, or leave the VM Down.

        With ``restore_from`` (a memory image written by VM.hibernate, in a file or a volume)
        the guest resumes where it was saved instead of booting.
        """
        try:
            if self._volumes is not None:
                self._volumes.prepare_disks(vm, domain)
            xml = self._prepare(vm, domain, "before_vm_dehibernate" if restore_from else None)
            with vm.start_stop_lock:
                if vm.is_down:  # destroyed while waiting for a worker
                    self._release(vm)
                    return
                if isinstance(restore_from, MemoryVolumes):
                    self._restore_from_volumes(vm, xml, restore_from)
                elif restore_from:
                    self._define_and_restore(vm, xml, restore_from)
                else:
                    self._define_and_start(vm, xml)
        except errors.VirtHostError as e:
            self._failed(vm, e.detail or e.wire_message)
        except Exception as e:
            log.exception("vm %s: unexpected failure while starting", vm.id)
            self._failed(vm, f"unexpected error: {e}")

    def _prepare(self, vm: Vm, domain: DomainXml, extra_hook: str | None = None) -> str:
        prepared = prepare_for_host(
            domain,
            domain_type=self._settings.domain_type,
            tcg_cache_mib=self._settings.tcg_cache_mib,
            emulator=host_emulator(domain, self._settings.emulator),
            machine=host_machine(domain.os.machine),
            security_models=self._host_security_models(),
        )
        xml = prepared.to_xml()
        for point in ("before_vm_start", extra_hook):
            if point:
                xml = run_vm_hook(self._hooks, point, vm, xml, raise_errors=True)
        return xml

    def _restore_from_volumes(self, vm: Vm, xml: str, memory: MemoryVolumes) -> None:
        if self._volumes is None:
            raise errors.UnsupportedOperation("restoring from volumes needs storage")
        with self._volumes.borrowed(vm, memory.refs()) as prepared:
            self._define_and_restore(vm, xml, prepared[0].path)

    def _release(self, vm: Vm) -> None:
        if self._volumes is not None:
            self._volumes.release(vm)

    def _define_and_restore(self, vm: Vm, xml: str, path: str) -> None:
        def define_and_restore(conn: Any) -> str:
            for network in hostenv.display_networks(xml):
                hostenv.ensure_network(conn, network)
            dom = conn.defineXML(xml)
            try:
                # the image carries the exact (ABI-stable) definition it was saved with
                conn.restoreFlags(path, None, libvirt.VIR_DOMAIN_SAVE_RUNNING)
            except libvirt.libvirtError:
                _undefine(dom)
                raise
            return str(conn.lookupByUUIDString(vm.id).XMLDesc(0))

        vm.domain_xml = self._libvirt.call(
            define_and_restore, f"restoring vm {vm.id}", self._settings.start_timeout
        )
        log.info("vm %s: restored from %s", vm.id, path)
        if vm.status in (vmstatus.WAIT_FOR_LAUNCH, vmstatus.RESTORING_STATE):
            vm.set_status(vmstatus.UP)
        run_vm_hook(self._hooks, "after_vm_dehibernate", vm, raise_errors=False)

    def _define_and_start(self, vm: Vm, xml: str) -> None:
        flags = libvirt.VIR_DOMAIN_START_PAUSED if vm.launch_paused else 0

        def define_and_start(conn: Any) -> str:
            for network in hostenv.display_networks(xml):
                hostenv.ensure_network(conn, network)
            dom = conn.defineXML(xml)
            try:
                dom.createWithFlags(flags)
            except libvirt.libvirtError:
                _undefine(dom)
                raise
            return str(dom.XMLDesc(0))

        vm.domain_xml = self._libvirt.call(
            define_and_start, f"starting vm {vm.id}", self._settings.start_timeout
        )
        log.info("vm %s: domain started%s", vm.id, " paused" if vm.launch_paused else "")
        if vm.status == vmstatus.WAIT_FOR_LAUNCH:  # the event may not have arrived yet
            vm.set_status(vmstatus.PAUSED if vm.launch_paused else vmstatus.POWERING_UP)
        run_vm_hook(self._hooks, "after_vm_start", vm, raise_errors=False)

    def _failed(self, vm: Vm, message: str) -> None:
        log.error("vm %s: cannot start: %s", vm.id, message)
        self._undefine_leftover(vm)
        self._release(vm)
        vm.go_down(ExitReason.LIBVIRT_START_FAILED, message)

    def _undefine_leftover(self, vm: Vm) -> None:
        def undefine(conn: Any) -> None:
            try:
                dom = conn.lookupByUUIDString(vm.id)
            except libvirt.libvirtError:
                return
            if not dom.isActive():
                _undefine(dom)

        try:
            self._libvirt.call(undefine, f"cleaning up vm {vm.id}")
        except errors.VirtHostError as e:
            log.warning("vm %s: cleaning up after a failed start: %s", vm.id, e)


def _undefine(dom: Any) -> None:
    flags = (
        libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
        | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
        | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
    )
    try:
        dom.undefineFlags(flags)
    except libvirt.libvirtError as e:
        code = e.get_error_code()
        if code == libvirt.VIR_ERR_NO_DOMAIN:
            return
        if code not in (libvirt.VIR_ERR_INVALID_ARG, libvirt.VIR_ERR_NO_SUPPORT):
            raise
        dom.undefine()  # a driver without managed save or NVRAM support


undefine_domain = _undefine
