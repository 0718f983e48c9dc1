"""Host verbs about the host's networks: setupNetworks, setSafeNetworkConfig.

A mixin of HostApi, like :mod:`virthost.api.hoststorage`, so host.py stays about the host.
"""

from __future__ import annotations

from typing import Any

from virthost.common import errors
from virthost.network.host import reported_networks
from virthost.network.service import NetworkService


class HostNetworkVerbs:
    _network: NetworkService | None

    def _network_service(self) -> NetworkService:
        if self._network is None:
            raise errors.MethodNotImplemented("this host does not manage its networks")
        return self._network

    def setupNetworks(
        self,
        networks: dict[str, Any] | None = None,
        bondings: dict[str, Any] | None = None,
        options: dict[str, Any] | None = None,
    ) -> None:
        self._network_service().setup(networks or {}, bondings or {}, options or {})

    def setSafeNetworkConfig(self) -> None:
        self._network_service().set_safe()

    def _with_networks(self, caps: dict[str, Any]) -> dict[str, Any]:
        """Add the configured networks and netConfigDirty to (network) capabilities."""
        if self._network is None:
            return caps
        caps["networks"] = reported_networks(self._network.running(), caps)
        caps["netConfigDirty"] = str(self._network.dirty())
        return caps
