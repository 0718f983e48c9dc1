"""The Host namespace: translates Host.* verbs into calls of the host services."""

from __future__ import annotations

import logging
from typing import Any

from virthost.common import errors
from virthost.daemon import logs
from virthost.host.service import HostService

log = logging.getLogger("virthost.api.host")


class HostApi:
    def __init__(self, host: HostService) -> None:
        self._host = host

    # --- liveness ----------------------------------------------------------------------

    def ping(self) -> None:
        """Deprecated liveness check; answers true."""

    def ping2(self) -> None:
        """Liveness check; answers true."""

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
        return self._host.capabilities()

    def getStats(self) -> dict[str, Any]:
        return self._host.stats()

    def getHardwareInfo(self) -> dict[str, Any]:
        return self._host.hardware_info()

    def getNetworkCapabilities(self) -> dict[str, Any]:
        return self._host.network_capabilities()

    def getNetworkStatistics(self) -> dict[str, Any]:
        return self._host.network_statistics()
