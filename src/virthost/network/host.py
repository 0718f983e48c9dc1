"""The network service's view of this host, through the supervisor.

The daemon is unprivileged: the supervisor applies changes (``setup_networks``) and reads the
kernel (``network_state``). Both run in the network namespace the supervisor runs in, which
is the host's, or a test's namespace playing the host.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from virthost.network.model import NetConfig
from virthost.network.validation import HostNics, kernel_supports_bonding, kernel_supports_vlan

log = logging.getLogger("virthost.network")

APPLY_TIMEOUT = 180.0
STATE_TIMEOUT = 30.0
NOT_NICS = frozenset({"bridge", "vlan", "bond", "tun", "tap", "macvlan", "vxlan", "ipip", "sit"})


class Supervisor(Protocol):
    def call(self, op: str, timeout: float | None = None, **args: Any) -> Any: ...


class SupervisedNetwork:
    """Applies and reads the host's networks through the supervisor's two operations."""

    def __init__(self, supervisor: Supervisor, root: str = "/") -> None:
        self._supervisor = supervisor
        self._root = root

    def apply(self, running: dict[str, Any], desired: dict[str, Any]) -> Any:
        report = self._supervisor.call(
            "setup_networks", timeout=APPLY_TIMEOUT, running=running, desired=desired
        )
        log.info("Applied: %s", report)
        return report

    def host_nics(self, running: dict[str, Any]) -> HostNics:
        """The nics validation may use; bridges that are none of our networks are foreign."""
        state = self._supervisor.call("network_state", timeout=STATE_TIMEOUT)
        links: dict[str, dict[str, Any]] = state.get("links", {}) if isinstance(state, dict) else {}
        ours = set(NetConfig.from_dict(running).networks)
        nics = {
            name
            for name, link in links.items()
            if link.get("kind") not in NOT_NICS and name != "lo"
        }
        bridges = {name for name, link in links.items() if link.get("kind") == "bridge"}
        return HostNics(
            nics=frozenset(nics),
            foreign_bridges=frozenset(bridges - ours),
            vlan_supported=kernel_supports_vlan(self._root),
            bonding_supported=kernel_supports_bonding(self._root),
        )


def reported_networks(running: dict[str, Any], caps: dict[str, Any]) -> dict[str, Any]:
    """``networks`` of the capabilities: each configured network with what its device has
    now (the bridge, or the nic/VLAN/bond it sits on when bridgeless), as VDSM reports it."""
    config = NetConfig.from_dict(running)
    reported: dict[str, Any] = {}
    for name, attrs in sorted(config.networks.items()):
        device = name if attrs.bridged else attrs.link_device
        entry: dict[str, Any] = {}
        for kind in ("bridges", "vlans", "bondings", "nics"):
            if device is not None and device in caps.get(kind, {}):
                entry = dict(caps[kind][device])
                break
        entry.update(
            bridged=attrs.bridged,
            switch=attrs.switch,
            dhcpv4=attrs.bootproto == "dhcp",
            dhcpv6=attrs.dhcpv6,
            ipv6autoconf=attrs.ipv6autoconf,
            ipv4defaultroute=attrs.default_route,
        )
        if attrs.bridged:
            entry["iface"] = name
        else:
            entry["interface"] = device or ""
        if attrs.gateway and not entry.get("gateway"):
            entry["gateway"] = attrs.gateway  # held in the network's own routing table
        if attrs.vlan is not None:
            entry["vlanid"] = attrs.vlan
        entry.setdefault("mtu", attrs.mtu)
        reported[name] = entry
    return reported
