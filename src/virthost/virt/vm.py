"""One VM as the daemon knows it: identity, status machine, exit information.

The VM's durable state lives in libvirt (the domain XML and our metadata element); this
object holds what is derived from it plus what only exists while the daemon runs (the status
as driven by events, why it went down). Status changes are published as
``|virt|VM_status|<vmId>`` events with a monotonic ``statusTime``, so the engine can order
them; a VM that went Down keeps its exit information until VM.destroy removes it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from virthost.virt import vmstatus
from virthost.virt.vmstatus import ExitInfo, ExitReason

log = logging.getLogger("virthost.virt.vm")


def monotonic_ms() -> int:
    return int(time.monotonic() * 1000)


class Vm:
    def __init__(
        self,
        vm_id: str,
        name: str,
        *,
        on_status: Callable[[Vm], None] | None = None,
        status: str = vmstatus.WAIT_FOR_LAUNCH,
        external: bool = False,
    ) -> None:
        self.id = vm_id
        self.name = name
        self.external = external
        self.lock = threading.RLock()
        # held while the domain is being defined and started, and while it is destroyed, so
        # that a destroy during the start cannot leave a running domain nobody manages
        self.start_stop_lock = threading.Lock()
        self._on_status = on_status
        self._status = status
        self._status_time = monotonic_ms()
        self.exit_info: ExitInfo | None = None
        self.domain_xml: str = ""
        self.start_time = time.time()  # wall clock: elapsedTime survives daemon restarts
        self.launch_paused = False
        self.guest_agent_connected = False
        self.pause_code = "NOERR"
        # why the VM is going down, when we asked for it (shutdown, destroy, hibernate...)
        self.stop_reason: ExitReason | None = None
        self.destroy_on_reboot = False
        self.custom: dict[str, str] = {}
        self.guest_info: dict[str, Any] = {}  # what the guest agent poller found
        self.balloon_target_kib: int | None = None  # the last VM.setBalloonTarget

    # --- status ------------------------------------------------------------------------

    @property
    def status(self) -> str:
        return self._status

    @property
    def status_time(self) -> int:
        return self._status_time

    @property
    def is_down(self) -> bool:
        return self._status == vmstatus.DOWN

    def set_status(self, status: str, exit_info: ExitInfo | None = None) -> bool:
        """Move to ``status``; publish an event when it changed. Down is final."""
        if status not in vmstatus.ALL:
            raise ValueError(f"unknown VM status {status!r}")
        with self.lock:
            if self._status == vmstatus.DOWN:
                log.debug("vm %s is Down already; ignoring %s", self.id, status)
                return False
            if status == self._status and exit_info is None:
                return False
            previous = self._status
            self._status = status
            self._status_time = max(monotonic_ms(), self._status_time + 1)
            if status == vmstatus.DOWN:
                self.exit_info = exit_info or ExitInfo.of(ExitReason.SUCCESS)
        log.info("vm %s (%s): %s -> %s", self.id, self.name, previous, status)
        if self._on_status is not None:
            self._on_status(self)
        return True

    def go_down(self, reason: ExitReason, message: str | None = None) -> bool:
        return self.set_status(vmstatus.DOWN, ExitInfo.of(reason, message))

    # --- reports -----------------------------------------------------------------------

    def status_report(self) -> dict[str, Any]:
        """StatusDetails as sent in ``|virt|VM_status|`` events."""
        with self.lock:
            report: dict[str, Any] = {
                "status": self._status,
                "statusTime": str(self._status_time),
                "timeOffset": "0",
            }
            if self._status == vmstatus.DOWN and self.exit_info is not None:
                report.update(self.exit_info.to_wire())
            else:
                report["elapsedTime"] = str(int(time.time() - self.start_time))
                report["monitorResponse"] = "0"
                if self._status == vmstatus.PAUSED:
                    report["pauseCode"] = self.pause_code
            return report

    def base_stats(self) -> dict[str, Any]:
        """What every getStats entry has, whatever the sampling knows."""
        stats = {"vmId": self.id, **self.status_report()}
        if not self.is_down:
            stats.update(
                {
                    "vmName": self.name,
                    "vmType": "kvm",
                    "kvmEnable": "true",
                    "acpiEnable": "true",
                    "pauseCode": self.pause_code,
                    "guestAgentConnected": self.guest_agent_connected,
                    **self.guest_info,
                }
            )
        return stats

    def __repr__(self) -> str:
        return f"Vm({self.id!r}, {self.name!r}, {self._status!r})"
