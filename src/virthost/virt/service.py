"""The VM service: the verbs of the VM namespace and the VM lists of the Host namespace.

It owns the container of VMs and wires the parts: creation workers (VmStarter), the libvirt
event routing (DomainEvents), statistics (BulkStatsSampler) and power-down sequences. Every
libvirt call goes through the time-boxed connection; verbs that wait for a guest (shutdown)
return at once and continue in a worker.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import libvirt

from virthost.common import errors, validate
from virthost.common.executor import Executor
from virthost.common.scheduler import Scheduler
from virthost.rpc.events import EventBus, event_name
from virthost.virt import hostenv, lifecycle, vmstatus
from virthost.virt.connection import LibvirtConnection
from virthost.virt.container import VmContainer
from virthost.virt.creation import CreationSettings, VmStarter, undefine_domain
from virthost.virt.deviceops import DomainAccess
from virthost.virt.domevents import DomainEvents
from virthost.virt.domxml import DomainXml, build_from_params, parse_domain
from virthost.virt.livemerge import JobRunner, LiveMerge
from virthost.virt.memvolumes import MemoryVolumes, memory_target, restore_source
from virthost.virt.power import PowerDown
from virthost.virt.recovery import AGENT_CONNECTED, list_domains, shutoff_reason
from virthost.virt.sampling import BulkStatsSampler
from virthost.virt.snapshot import LiveSnapshot
from virthost.virt.storagedrives import DrivePreparer, VmVolumes
from virthost.virt.vm import Vm
from virthost.virt.vmhooks import DomxmlHooks, run_vm_hook
from virthost.virt.vmstatus import ExitReason

log = logging.getLogger("virthost.virt")


def resolve_domain_type(configured: str) -> str:
    """``auto`` becomes kvm when the daemon can use /dev/kvm, else qemu (TCG)."""
    if configured in ("kvm", "qemu"):
        return configured
    if configured != "auto":
        raise errors.InvalidConfiguration(f"[virt] domain_type: {configured!r}")
    return "kvm" if os.access("/dev/kvm", os.R_OK | os.W_OK) else "qemu"


@dataclass(frozen=True)
class VirtSettings:
    domain_type: str = "qemu"
    tcg_cache_mib: int = 16
    guest_wait_timeout: float = 60.0
    user_shutdown_timeout: float = 30.0
    destroy_timeout: float = 60.0


class VirtService:
    def __init__(
        self,
        libvirt_conn: LibvirtConnection,
        events: EventBus,
        scheduler: Scheduler,
        creation_executor: Executor,
        work_executor: Executor,
        settings: VirtSettings,
        hooks: DomxmlHooks | None = None,
        drives: DrivePreparer | None = None,
        run_job: JobRunner | None = None,
    ) -> None:
        """``drives`` gives VMs storage volumes (without it, disks are plain paths only);
        ``run_job`` runs VM jobs such as merges where Host.getJobs sees them (default: a
        worker of ``work_executor``)."""
        self.vms = VmContainer()
        self._libvirt = libvirt_conn
        self._events = events
        self._scheduler = scheduler
        self._creation = creation_executor
        self._work = work_executor
        self._settings = settings
        self._hooks = hooks
        self.volumes = VmVolumes(drives) if drives is not None else None
        self._starter = VmStarter(
            libvirt_conn,
            CreationSettings(settings.domain_type, settings.tcg_cache_mib),
            hooks,
            self.volumes,
        )
        self._snapshots: LiveSnapshot | None = None
        self._merges: LiveMerge | None = None
        if self.volumes is not None:
            access = DomainAccess(self)
            self._snapshots = LiveSnapshot(access, self.volumes)
            self._merges = LiveMerge(access, self.volumes, run_job or self._run_job)
        self._power = PowerDown(libvirt_conn, settings.user_shutdown_timeout)
        self.sampler = BulkStatsSampler(libvirt_conn, self.vms)
        self._domain_events = DomainEvents(self.vms, on_reboot=self._guest_rebooted)
        libvirt_conn.add_listeners(on_connect=self._connected)

    # --- libvirt connection -------------------------------------------------------------

    def _connected(self, conn: Any) -> None:
        """Every (re)connection: events again, and what was missed meanwhile caught up."""
        self._domain_events.register(conn)
        hostenv.ensure_nwfilter(conn)
        if len(self.vms):
            try:
                self._work.dispatch(self._resync, timeout=120.0)
            except errors.VirtHostError as e:
                log.warning("cannot resynchronise VM statuses now: %s", e)

    def _resync(self) -> None:
        found = {d.uuid: d for d in self._libvirt.call(list_domains, "resynchronising VMs")}
        for vm in self.vms.all():
            if vm.is_down or vm.status in (vmstatus.WAIT_FOR_LAUNCH, vmstatus.RESTORING_STATE):
                continue
            domain = found.get(vm.id)
            if domain is None:
                vm.go_down(ExitReason.LIBVIRT_DOMAIN_MISSING)
            elif domain.state == libvirt.VIR_DOMAIN_SHUTOFF:
                vm.go_down(vm.stop_reason or shutoff_reason(domain.reason))
            else:
                agent = AGENT_CONNECTED in domain.xml
                vm.guest_agent_connected = agent
                vm.set_status(lifecycle.status_of_domain_state(domain.state, domain.reason, agent))
        log.info("VM statuses resynchronised with libvirt")

    # --- helpers -----------------------------------------------------------------------

    def new_vm(self, vm_id: str, name: str, status: str = vmstatus.WAIT_FOR_LAUNCH) -> Vm:
        return Vm(vm_id, name, on_status=self._status_changed, status=status)

    def _status_changed(self, vm: Vm) -> None:
        self._events.publish(event_name("virt", "VM_status", vm.id), {vm.id: vm.status_report()})
        if vm.is_down:
            self._release_volumes(vm)
        if vm.status == vmstatus.POWERING_UP:
            self._scheduler.schedule(self._settings.guest_wait_timeout, lambda: self._assume_up(vm))

    def _release_volumes(self, vm: Vm) -> None:
        """A Down VM holds no storage: its volumes are torn down in a worker (off the libvirt
        event thread that reports most Down transitions)."""
        volumes = self.volumes
        if volumes is None:
            return
        try:
            self._work.dispatch(lambda: volumes.release(vm), timeout=120.0)
        except Exception as e:
            log.warning("vm %s: cannot queue the teardown of its volumes: %s", vm.id, e)

    def _run_job(self, job_id: str, description: str, work: Callable[[], None]) -> None:
        def run() -> None:
            try:
                work()
            except Exception:
                log.exception("job %s (%s) failed", job_id, description)

        self._work.dispatch(run)

    @staticmethod
    def _assume_up(vm: Vm) -> None:
        """No guest agent within the wait: the guest is taken as Up, as VDSM does."""
        if vm.status == vmstatus.POWERING_UP:
            vm.set_status(vmstatus.UP)

    @property
    def hooks(self) -> DomxmlHooks | None:
        return self._hooks

    @property
    def libvirt(self) -> LibvirtConnection:
        return self._libvirt

    def get_vm(self, vm_id: str) -> Vm:
        """The VM (NoSuchVM, code 1, when unknown; the id is validated first)."""
        return self.vms.get(validate.uuid(vm_id, "vmID"))

    def running_vm(self, vm_id: str) -> Vm:
        """The VM, which must not be Down (VMIsDown, code 6)."""
        vm = self.get_vm(vm_id)
        if vm.is_down:
            raise errors.VMIsDown(vm_id)
        return vm

    def domain_call(self, vm: Vm, what: str, func: Callable[[Any], Any]) -> Any:
        """Run ``func(virDomain)`` for ``vm``, time-boxed; NoSuchVM if libvirt lost it."""

        def call(conn: Any) -> Any:
            try:
                dom = conn.lookupByUUIDString(vm.id)
            except libvirt.libvirtError as e:
                if e.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                    raise errors.NoSuchVM(f"{vm.id}: no libvirt domain") from None
                raise
            return func(dom)

        return self._libvirt.call(call, f"{what} vm {vm.id}")

    # --- VM.create ---------------------------------------------------------------------

    def create(self, vm_id: str, params: Mapping[str, Any]) -> dict[str, Any]:
        vm_id = validate.uuid(vm_id, "vmID")
        domain = self._domain_from_params(vm_id, params)
        restore_from = restore_source(params)
        if isinstance(restore_from, MemoryVolumes) and self.volumes is None:
            raise errors.UnsupportedOperation("restoring from volumes needs storage")
        initial = vmstatus.RESTORING_STATE if restore_from else vmstatus.WAIT_FOR_LAUNCH
        vm = self.new_vm(vm_id, domain.name, initial)
        vm.launch_paused = validate.flag(params.get("launchPaused", domain.metadata.launch_paused))
        vm.custom = {str(k): str(v) for k, v in domain.metadata.custom.items()}
        vm.destroy_on_reboot = bool(domain.metadata.destroy_on_reboot)
        domain.metadata.launch_paused = vm.launch_paused
        domain.metadata.start_time = vm.start_time
        self._refuse_existing_domain(vm_id)
        self.vms.add(vm)
        try:
            self._creation.dispatch(
                lambda: self._starter.start(vm, domain, restore_from), timeout=600.0
            )
        except errors.VirtHostError:
            self.vms.remove(vm_id)
            raise
        log.info("vm %s (%s): creation queued", vm_id, domain.name)
        return {"vmId": vm_id, "vmName": domain.name, **vm.status_report()}

    @staticmethod
    def _domain_from_params(vm_id: str, params: Mapping[str, Any]) -> DomainXml:
        if not isinstance(params, Mapping):
            raise errors.InvalidParameter("vmParams must be an object")
        if "xml" in params:
            if not isinstance(params["xml"], str):
                raise errors.InvalidParameter("vmParams.xml must be a string")
            domain = parse_domain(params["xml"])
        else:
            domain = build_from_params({**params, "vmId": params.get("vmId", vm_id)})
        if domain.uuid != vm_id:
            raise errors.InvalidParameter(
                f"vmID {vm_id} differs from the domain's uuid {domain.uuid}"
            )
        return domain

    def _refuse_existing_domain(self, vm_id: str) -> None:
        if self.vms.find(vm_id) is not None:
            raise errors.VMExists(vm_id)

        def active(conn: Any) -> bool:
            try:
                return bool(conn.lookupByUUIDString(vm_id).isActive())
            except libvirt.libvirtError:
                return False

        if self._libvirt.call(active, f"looking up vm {vm_id}"):
            raise errors.VMExists(f"{vm_id} runs already (not created by this daemon)")

    # --- power -------------------------------------------------------------------------

    def destroy(self, vm_id: str, graceful_attempts: int = 1) -> None:
        vm = self.get_vm(vm_id)
        with vm.lock:
            if vm.stop_reason is None:
                vm.stop_reason = ExitReason.ADMIN_SHUTDOWN
        if vm.domain_xml:
            self._domxml_hook(vm, "before_vm_destroy", raise_errors=False)

        def kill(conn: Any) -> None:
            try:
                dom = conn.lookupByUUIDString(vm.id)
            except libvirt.libvirtError:
                return  # already gone
            if dom.isActive():
                for _ in range(max(graceful_attempts, 0)):
                    try:
                        dom.destroyFlags(libvirt.VIR_DOMAIN_DESTROY_GRACEFUL)
                        break
                    except libvirt.libvirtError as e:
                        log.info("vm %s: graceful destroy failed: %s", vm.id, e)
                if dom.isActive():
                    dom.destroy()
            undefine_domain(dom)

        with vm.start_stop_lock:  # waits for a start in progress to finish
            try:
                self._libvirt.call(kill, f"destroying vm {vm.id}", self._settings.destroy_timeout)
            except errors.VirtHostError as e:
                raise _VmDestroyFailed(f"{vm.id}: {e.detail or e.wire_message}") from None
            vm.go_down(vm.stop_reason or ExitReason.ADMIN_SHUTDOWN)
        self.vms.remove(vm.id)
        self.sampler.forget(vm.id)
        if vm.domain_xml:
            self._domxml_hook(vm, "after_vm_destroy", raise_errors=False)
        log.info("vm %s destroyed", vm.id)

    def shutdown(
        self,
        vm_id: str,
        delay: float = 30.0,
        message: str = "",
        reboot: bool = False,
        timeout: float | None = None,
        force: bool = False,
    ) -> None:
        """Power the guest down gracefully, in a worker; returns at once.

        ``delay`` and ``message`` are for guest agents that can warn the guest's users first
        (VDSM's legacy agent); qemu-guest-agent cannot, so they are only logged.
        """
        vm = self.running_vm(vm_id)
        limit = self._settings.user_shutdown_timeout if timeout is None else float(timeout)
        if not reboot:
            with vm.lock:
                vm.stop_reason = ExitReason.ADMIN_SHUTDOWN
            vm.set_status(vmstatus.POWERING_DOWN)
        log.info("vm %s: %s requested (%s)", vm.id, "reboot" if reboot else "shutdown", message)
        self._work.dispatch(
            lambda: self._power.run(vm, reboot=reboot, timeout=limit, force=force),
            timeout=limit * 3 + 60,
        )

    def hibernate(self, vm_id: str, handle: Any) -> None:
        """Save the guest's memory to a file or a volume and stop it (Down, exit reason 5).

        Memory volumes are prepared before the call answers (so a wrong handle fails it) and
        torn down once the save ended, whichever way.
        """
        vm = self.running_vm(vm_id)
        target = memory_target(handle)
        if isinstance(target, MemoryVolumes):
            if self.volumes is None:
                raise errors.UnsupportedOperation("hibernation to volumes needs storage")
            volumes = self.volumes
            refs = target.refs()
            path = volumes.lend(vm, refs)[0].path
            self._save(vm, path, lambda: volumes.give_back(vm, refs))
        else:
            self._save(vm, target, lambda: None)

    def _save(self, vm: Vm, path: str, done: Callable[[], None]) -> None:
        previous = vm.status
        with vm.lock:
            vm.stop_reason = ExitReason.SAVE_STATE_SUCCEEDED
        vm.set_status(vmstatus.SAVING_STATE)
        if vm.domain_xml:
            self._domxml_hook(vm, "before_vm_hibernate", raise_errors=False)

        def save() -> None:
            try:
                self.domain_call(vm, "hibernating", lambda dom: dom.save(path))
            except errors.VirtHostError as e:
                log.error("vm %s: hibernation failed: %s", vm.id, e)
                with vm.lock:
                    vm.stop_reason = None
                vm.set_status(previous)
                return
            finally:
                done()
            vm.go_down(ExitReason.SAVE_STATE_SUCCEEDED)
            log.info("vm %s hibernated to %s", vm.id, path)
            if vm.domain_xml:
                self._domxml_hook(vm, "after_vm_hibernate", raise_errors=False)

        try:
            self._work.dispatch(save, timeout=self._settings.destroy_timeout * 10)
        except BaseException:
            done()
            raise

    # --- storage verbs -------------------------------------------------------------------

    def snapshot(
        self, vm_id: str, snap_drives: Any, snap_memory: Any = None, frozen: bool = False
    ) -> dict[str, Any]:
        """VM.snapshot: switch disks to new leaf volumes (see :mod:`virthost.virt.snapshot`)."""
        vm = self.running_vm(vm_id)
        if snap_memory:
            raise errors.UnsupportedOperation("memory snapshots (snapMemory) are not supported")
        if self._snapshots is None:
            raise errors.UnsupportedOperation("snapshots need storage")
        return self._snapshots.take(vm, snap_drives, frozen)

    def merge(
        self, vm_id: str, drive: Any, base: Any, top: Any, bandwidth: int, job_id: Any
    ) -> None:
        """VM.merge: start a live merge job (see :mod:`virthost.virt.livemerge`)."""
        vm = self.running_vm(vm_id)
        if self._merges is None:
            raise errors.UnsupportedOperation("merges need storage")
        self._merges.start(vm, drive, base, top, bandwidth, job_id)

    def _domxml_hook(self, vm: Vm, point: str, raise_errors: bool) -> None:
        run_vm_hook(self._hooks, point, vm, raise_errors=raise_errors)

    def pause(self, vm_id: str) -> None:
        vm = self.running_vm(vm_id)
        self._domxml_hook(vm, "before_vm_pause", raise_errors=True)
        self.domain_call(vm, "pausing", lambda dom: dom.suspend())
        vm.set_status(vmstatus.PAUSED)
        self._domxml_hook(vm, "after_vm_pause", raise_errors=False)

    def cont(self, vm_id: str) -> None:
        vm = self.running_vm(vm_id)
        self._domxml_hook(vm, "before_vm_cont", raise_errors=True)
        self.domain_call(vm, "resuming", lambda dom: dom.resume())
        vm.pause_code = "NOERR"
        vm.set_status(vmstatus.UP if vm.guest_agent_connected else vmstatus.POWERING_UP)
        self._domxml_hook(vm, "after_vm_cont", raise_errors=False)

    def reset(self, vm_id: str) -> None:
        vm = self.running_vm(vm_id)
        self.domain_call(vm, "resetting", lambda dom: dom.reset(0))

    def set_destroy_on_reboot(self, vm_id: str) -> None:
        self.running_vm(vm_id).destroy_on_reboot = True

    def _guest_rebooted(self, vm: Vm) -> None:
        if vm.destroy_on_reboot:
            vm.stop_reason = ExitReason.DESTROYED_ON_REBOOT
            self._work.dispatch(lambda: self.destroy(vm.id, 0), timeout=120.0)

    # --- reports -----------------------------------------------------------------------

    def stats(self, vm: Vm) -> dict[str, Any]:
        report = vm.base_stats()
        if not vm.is_down:
            report.update(self.sampler.stats_of(vm))
            if self._merges is not None:
                report["vmJobs"] = self._merges.jobs_of(vm.id)
        return report

    def stats_hooks_installed(self, one_vm: bool) -> bool:
        """Whether stats hooks exist: then the stats verbs cannot run on the reactor."""
        name = "get_vm_stats" if one_vm else "get_all_vm_stats"
        return self._hooks is not None and any(
            self._hooks.hooks(f"{when}_{name}") for when in ("before", "after")
        )

    def _hooked_stats(self, name: str, stats: list[dict[str, Any]], vm: Vm | None) -> Any:
        if self._hooks is None:
            return stats
        custom = vm.custom if vm is not None else {}
        vm_id = vm.id if vm is not None else None
        self._hooks.run_json(f"before_{name}", {}, custom=custom, vm_id=vm_id, raise_errors=False)
        return self._hooks.run_json(
            f"after_{name}", stats, custom=custom, vm_id=vm_id, raise_errors=False
        )

    def get_stats(self, vm_id: str) -> list[dict[str, Any]]:
        vm = self.get_vm(vm_id)
        result: list[dict[str, Any]] = self._hooked_stats("get_vm_stats", [self.stats(vm)], vm)
        return result

    def all_stats(self) -> list[dict[str, Any]]:
        stats = [self.stats(vm) for vm in self.vms.all()]
        result: list[dict[str, Any]] = self._hooked_stats("get_all_vm_stats", stats, None)
        return result

    def vm_list(
        self, full_status: bool = False, vm_ids: list[str] | None = None, only_uuid: bool = False
    ) -> list[Any]:
        vms = self._select(vm_ids)
        if only_uuid:
            return [vm.id for vm in vms]
        if full_status:
            return [self.full_info(vm) for vm in vms]
        return [{"vmId": vm.id, "status": vm.status} for vm in vms]

    def full_list(self, vm_ids: list[str] | None = None) -> list[dict[str, Any]]:
        return [self.full_info(vm) for vm in self._select(vm_ids)]

    def full_info(self, vm: Vm) -> dict[str, Any]:
        return {
            "vmId": vm.id,
            "vmName": vm.name,
            "status": vm.status,
            "statusTime": str(vm.status_time),
            "startTime": vm.start_time,
            "launchPaused": str(vm.launch_paused).lower(),
            "custom": dict(vm.custom),
            "xml": vm.domain_xml,
        }

    def dumpxmls(self, vm_ids: list[str]) -> dict[str, str]:
        return {vm.id: vm.domain_xml for vm in self._select(vm_ids or None)}

    def _select(self, vm_ids: list[str] | None) -> list[Vm]:
        if not vm_ids:
            return self.vms.all()
        return [self.get_vm(vm_id) for vm_id in vm_ids]

    def counts(self) -> tuple[int, int]:
        vms = self.vms.all()
        return len(vms), sum(1 for vm in vms if vm.status in vmstatus.RUNNING)

    def now(self) -> float:
        return time.time()


class _VmDestroyFailed(errors.VirtHostError):
    code = 42
    message = "Virtual machine destroy error"
