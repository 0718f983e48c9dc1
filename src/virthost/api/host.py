"""The Host namespace: translates Host.* verbs into calls of the host services."""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from virthost.api.hostnetwork import HostNetworkVerbs
from virthost.api.hoststorage import HostStorage, HostStorageVerbs
from virthost.common import context, errors
from virthost.daemon import logs
from virthost.host.service import HostService
from virthost.network.service import NetworkService
from virthost.storage.monitor import DomainMonitor
from virthost.virt.service import VirtService

log = logging.getLogger("virthost.api.host")


def interface_of(caps: dict[str, Any], address: str) -> str:
    """The device carrying ``address`` in the network part of ``caps`` ("" if none).

    The engine reads it as ``lastClientIface``: the interface it reaches the host through,
    which network changes must not break.
    """
    if not address:
        return ""
    if ipaddress.ip_address(address).is_loopback:
        return "lo"
    for kind in ("bridges", "vlans", "bondings", "nics"):
        for name, device in caps.get(kind, {}).items():
            configured = [*device.get("ipv4addrs", []), *device.get("ipv6addrs", [])]
            if any(entry.split("/")[0] == address for entry in configured):
                return str(name)
    return ""


class HostApi(HostStorageVerbs, HostNetworkVerbs):
    def __init__(
        self,
        host: HostService,
        virt: VirtService | None = None,
        monitor: DomainMonitor | None = None,
        storage: HostStorage | None = None,
        network: NetworkService | None = None,
    ) -> None:
        self._host = host
        self._virt = virt
        self._monitor = monitor
        self._storage = storage if storage is not None else HostStorage()
        self._network = network

    def runs_inline(self, verb: str) -> bool:
        """Fast verbs run on the reactor, unless stats hooks have to run for them."""
        if verb == "getAllVmStats" and self._virt is not None:
            return not self._virt.stats_hooks_installed(one_vm=False)
        return True

    # --- liveness ----------------------------------------------------------------------

    def ping(self) -> None:
        """Deprecated liveness check; answers true (and proves connectivity, as in VDSM)."""
        self._host.confirm_connectivity()

    def ping2(self) -> None:
        """Liveness check; answers true. The engine polls it while a network change waits
        for the client, so it counts as a confirmation of connectivity too."""
        self._host.confirm_connectivity()

    def confirmConnectivity(self) -> None:
        """The engine confirms it still reaches the host (used by network rollback)."""
        self._host.confirm_connectivity()

    def echo(self, message: str) -> str:
        log.info("echo: %s", message)
        return message

    def setLogLevel(self, level: str, name: str = "") -> None:
        try:
            logs.set_level(level, name)
        except ValueError as e:
            raise errors.InvalidParameter(str(e)) from None
        log.info("log level of %s set to %s", name or "root", level)

    # --- inventory and statistics ------------------------------------------------------

    def getCapabilities(self) -> dict[str, Any]:
        caps = self._with_networks(self._host.capabilities())
        caps["lastClientIface"] = interface_of(caps, context.current_local_address.get())
        return caps

    def getStats(self) -> dict[str, Any]:
        return self._host.stats()

    def getHardwareInfo(self) -> dict[str, Any]:
        return self._host.hardware_info()

    def getNetworkCapabilities(self) -> dict[str, Any]:
        return self._with_networks(self._host.network_capabilities())

    def getNetworkStatistics(self) -> dict[str, Any]:
        return self._host.network_statistics()

    # --- storage domain monitoring ------------------------------------------------------

    def _domain_monitor(self) -> DomainMonitor:
        if self._monitor is None:
            raise errors.MethodNotImplemented("this host monitors no storage domains")
        return self._monitor

    def startMonitoringDomain(self, sdUUID: str, hostID: Any) -> None:
        self._domain_monitor().start_monitoring(sdUUID, hostID)

    def stopMonitoringDomain(self, sdUUID: str) -> None:
        self._domain_monitor().stop_monitoring(sdUUID)

    def getStorageRepoStats(self, domains: list[str] | None = None) -> dict[str, Any]:
        return self._domain_monitor().report(domains or None)

    # --- VMs ---------------------------------------------------------------------------

    def _vms(self) -> VirtService:
        if self._virt is None:
            raise errors.MethodNotImplemented("this host runs no VM service")
        return self._virt

    def getVMList(
        self, fullStatus: bool = False, vmList: list[str] | None = None, onlyUUID: bool = False
    ) -> list[Any]:
        return self._vms().vm_list(fullStatus, vmList, onlyUUID)

    def getAllVmStats(self) -> list[dict[str, Any]]:
        return self._vms().all_stats()

    def getVMFullList(self, vmList: list[str] | None = None) -> list[dict[str, Any]]:
        return self._vms().full_list(vmList)

    def dumpxmls(self, vmList: list[str] | None = None) -> dict[str, Any]:
        return {"domxmls": self._vms().dumpxmls(vmList or [])}
