"""The host services behind the Host namespace, with the time boxes they need.

Statistics are sampled by a periodic job and only read from memory here (getStats is a
``fast`` verb answered on the reactor). Capabilities touch libvirt, the package manager and
iproute2, so the whole collection runs in the blocking executor with one time box. Hardware
identity needs root: it goes through the supervisor.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from virthost.common import errors
from virthost.common.commands import Runner
from virthost.common.timebox import WorkQueue, run_with_timeout
from virthost.host import network
from virthost.host.capabilities import CapabilitiesConfig, collect_capabilities
from virthost.host.stats import HostStatsSampler, VmSummary
from virthost.virt.connection import LibvirtConnection

log = logging.getLogger("virthost.host")


class Supervisor(Protocol):
    def call(self, op: str, timeout: float | None = None, **args: Any) -> Any: ...


class HostService:
    def __init__(
        self,
        *,
        host_id: str,
        libvirt: LibvirtConnection,
        runner: Runner,
        supervisor: Supervisor,
        blocking: WorkQueue,
        caps_config: CapabilitiesConfig | None = None,
        root: str = "/",
        timeout: float = 60.0,
        vm_summary: Callable[[], VmSummary] | None = None,
        storage_domains: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.host_id = host_id
        self._libvirt = libvirt
        self._runner = runner
        self._supervisor = supervisor
        self._blocking = blocking
        self._caps_config = caps_config or CapabilitiesConfig()
        self._root = root
        self._timeout = timeout
        self._vm_summary = vm_summary
        self._storage_domains = storage_domains
        self._sampler = HostStatsSampler(root)
        self._connectivity_lock = threading.Lock()
        self.last_connectivity_confirmation: float | None = None

    # --- statistics --------------------------------------------------------------------

    def sample_stats(self) -> None:
        """Take a host statistics sample (run by the periodic job)."""
        self._sampler.sample()

    def stats(self) -> dict[str, Any]:
        vms = self._vm_summary() if self._vm_summary is not None else None
        stats = self._sampler.stats(vms=vms)
        if self._storage_domains is not None:
            stats["storageDomains"] = self._storage_domains()
        return stats

    # --- inventory ---------------------------------------------------------------------

    def capabilities(self) -> dict[str, Any]:
        def collect(conn: Any) -> dict[str, Any]:
            return collect_capabilities(
                lambda: conn, self._runner, self.host_id, root=self._root, config=self._caps_config
            )

        return self._libvirt.call(collect, "Host.getCapabilities", self._timeout)

    def hardware_info(self) -> dict[str, Any]:
        info = self._supervisor.call("hardware_info")
        if not isinstance(info, dict):
            raise errors.CannotRetrieveHWInfo("unexpected answer from the supervisor")
        return info

    def network_capabilities(self) -> dict[str, Any]:
        return run_with_timeout(
            self._blocking,
            lambda: network.network_capabilities(self._runner, root=self._root),
            self._timeout,
            "Host.getNetworkCapabilities",
        )

    def network_statistics(self) -> dict[str, Any]:
        return run_with_timeout(
            self._blocking,
            lambda: network.network_statistics(self._root),
            self._timeout,
            "Host.getNetworkStatistics",
        )

    # --- connectivity ------------------------------------------------------------------

    def confirm_connectivity(self) -> None:
        """Remember that the engine reached us (network rollback waits for this)."""
        with self._connectivity_lock:
            self.last_connectivity_confirmation = time.monotonic()
