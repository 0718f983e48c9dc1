"""Turning iproute2's JSON output into VDSM's network capabilities (pure functions).

The engine compares the host's reported devices with the networks it wants attached, so every
device is reported with VDSM's fields: IPv4 address/netmask/gateway, all IPv4 and IPv6 (non
link-local) addresses as ``addr/prefix``, MTU, and per-kind extras (bridge ports and STP state,
bond slaves and options, VLAN parent and id, NIC MAC address and speed). Classification follows
the kernel's ``info_kind``: bridges, bonds and VLANs have their own maps, loopback and Open
vSwitch internals are skipped, and everything else (physical, veth, tap, dummy...) is a NIC.

The input is what ``ip -json -details link show``, ``ip -json addr show`` and ``ip -json route
show`` (IPv4 and IPv6) print; facts iproute2 does not show (link speed, the IPv6 autoconf
sysctl) come in :class:`LinkExtras`. Keeping this layer pure lets it be tested on captured JSON
for device kinds (bonds, VLANs) this test machine's kernel cannot create.
"""

from __future__ import annotations

import fnmatch
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

JsonObj = Mapping[str, Any]

_SKIPPED_KINDS = frozenset({"openvswitch"})
_BOND_MODES = {
    "balance-rr": "0",
    "active-backup": "1",
    "balance-xor": "2",
    "broadcast": "3",
    "802.3ad": "4",
    "balance-tlb": "5",
    "balance-alb": "6",
}
# iproute2 key -> (sysfs option name as VDSM reports it, kernel default as printed by iproute2)
_BOND_OPTIONS: dict[str, tuple[str, object]] = {
    "miimon": ("miimon", 0),
    "updelay": ("updelay", 0),
    "downdelay": ("downdelay", 0),
    "use_carrier": ("use_carrier", 1),
    "arp_interval": ("arp_interval", 0),
    "arp_validate": ("arp_validate", "none"),
    "arp_all_targets": ("arp_all_targets", "any"),
    "primary": ("primary", None),
    "primary_reselect": ("primary_reselect", "always"),
    "fail_over_mac": ("fail_over_mac", "none"),
    "xmit_hash_policy": ("xmit_hash_policy", "layer2"),
    "all_slaves_active": ("all_slaves_active", 0),
    "min_links": ("min_links", 0),
    "ad_lacp_rate": ("lacp_rate", "slow"),
    "ad_select": ("ad_select", "stable"),
}
# Bridge values that are running timers, not configuration: they change on every call.
_BRIDGE_VOLATILE = frozenset({"hello_timer", "tcn_timer", "topology_change_timer", "gc_timer"})


@dataclass(frozen=True)
class LinkExtras:
    """Per-device facts from sysfs/procfs: speed in Mb/s (0 unknown), IPv6 autoconf sysctl."""

    speed: dict[str, int] = field(default_factory=dict)
    ipv6_autoconf: dict[str, bool] = field(default_factory=dict)


def _kind(link: JsonObj) -> str:
    return str(link.get("linkinfo", {}).get("info_kind", ""))


def _info_data(link: JsonObj) -> JsonObj:
    data = link.get("linkinfo", {}).get("info_data", {})
    return data if isinstance(data, Mapping) else {}


def _addresses_by_device(
    links: Sequence[JsonObj], addrs: Sequence[JsonObj]
) -> dict[str, list[JsonObj]]:
    found: dict[str, list[JsonObj]] = {}
    for entry in [*links, *addrs]:
        name = entry.get("ifname")
        if name and "addr_info" in entry:
            found[str(name)] = list(entry["addr_info"])
    return found


def _default_gateway(routes: Sequence[JsonObj], dev: str) -> str:
    for route in routes:
        in_main = route.get("table", "main") == "main"
        if route.get("dst") == "default" and route.get("dev") == dev and in_main:
            gateway = route.get("gateway")
            if gateway:
                return str(gateway)
    return ""


def _netmask(prefixlen: int) -> str:
    return str(ipaddress.IPv4Network(f"0.0.0.0/{prefixlen}").netmask)


def _in_subnet(address: str, prefixlen: int, gateway: str) -> bool:
    try:
        network = ipaddress.IPv4Network(f"{address}/{prefixlen}", strict=False)
        return ipaddress.IPv4Address(gateway) in network
    except ValueError:
        return False


def ip_info(addr_infos: Sequence[JsonObj], gateway: str) -> dict[str, Any]:
    """``addr``/``netmask`` (the primary IPv4 address, preferring the gateway's subnet),
    ``ipv4addrs``/``ipv6addrs`` (``addr/prefix``, link-local excluded) and ``dhcpv4``."""
    v4: list[tuple[str, int, bool]] = []
    ipv6addrs: list[str] = []
    dynamic_v4 = False
    for info in addr_infos:
        if info.get("scope") == "link" or "local" not in info:
            continue
        address, prefix = str(info["local"]), int(info.get("prefixlen", 0))
        if info.get("family") == "inet":
            v4.append((address, prefix, bool(info.get("secondary", False))))
            dynamic_v4 = dynamic_v4 or bool(info.get("dynamic", False))
        elif info.get("family") == "inet6":
            ipv6addrs.append(f"{address}/{prefix}")
    primaries = [a for a in v4 if not a[2]] or v4
    chosen = next((a for a in primaries if gateway and _in_subnet(a[0], a[1], gateway)), None)
    if chosen is None and primaries:
        chosen = primaries[0]
    return {
        "addr": chosen[0] if chosen else "",
        "netmask": _netmask(chosen[1]) if chosen else "",
        "ipv4addrs": [f"{a}/{p}" for a, p, _ in v4],
        "ipv6addrs": ipv6addrs,
        "dhcpv4": dynamic_v4,
    }


def _common(
    link: JsonObj,
    addresses: Mapping[str, list[JsonObj]],
    routes4: Sequence[JsonObj],
    routes6: Sequence[JsonObj],
    extras: LinkExtras,
) -> dict[str, Any]:
    name = str(link["ifname"])
    gateway = _default_gateway(routes4, name)
    info = ip_info(addresses.get(name, []), gateway)
    info.update(
        {
            "gateway": gateway,
            "ipv6gateway": _default_gateway(routes6, name),
            "ipv4defaultroute": bool(gateway),
            "dhcpv6": False,
            "ipv6autoconf": extras.ipv6_autoconf.get(name, False),
            "mtu": int(link.get("mtu", 0)),
        }
    )
    return info


def bridge_opts(link: JsonObj) -> dict[str, str]:
    """Bridge configuration as ``{option: "value"}`` with sysfs-style names."""
    opts: dict[str, str] = {}
    for key, value in _info_data(link).items():
        if key in _BRIDGE_VOLATILE or isinstance(value, (dict, list)):
            continue
        name = "multicast_" + key[len("mcast_") :] if key.startswith("mcast_") else key
        opts[name] = str(int(value)) if isinstance(value, bool) else str(value)
    return opts


def bond_opts(link: JsonObj) -> dict[str, str]:
    """VDSM-style bond options: numeric ``mode`` plus every option off its kernel default."""
    data = _info_data(link)
    mode = str(data.get("mode", "balance-rr"))
    opts = {"mode": _BOND_MODES.get(mode, mode)}
    for key, (name, default) in _BOND_OPTIONS.items():
        if key in data and data[key] != default:
            opts[name] = str(data[key])
    return opts


def _ports_of(links: Sequence[JsonObj], master: str) -> list[str]:
    return sorted(str(link["ifname"]) for link in links if link.get("master") == master)


def _is_hidden(name: str, hidden: Sequence[str]) -> bool:
    return any(fnmatch.fnmatch(name, pattern) for pattern in hidden)


def build_network_caps(
    links: Sequence[JsonObj],
    addrs: Sequence[JsonObj],
    routes4: Sequence[JsonObj],
    routes6: Sequence[JsonObj],
    extras: LinkExtras,
    *,
    nameservers: Sequence[str] = (),
    supports_ipv6: bool = True,
    hidden: Sequence[str] = (),
) -> dict[str, Any]:
    """VDSM's network capabilities (``networks`` stays empty: no networks are configured)."""
    addresses = _addresses_by_device(links, addrs)
    caps: dict[str, Any] = {
        "networks": {},
        "bridges": {},
        "nics": {},
        "vlans": {},
        "bondings": {},
        "nameservers": list(nameservers),
        "supportsIPv6": supports_ipv6,
    }
    for link in links:
        name = str(link.get("ifname", ""))
        kind = _kind(link)
        if not name or link.get("link_type") == "loopback" or kind in _SKIPPED_KINDS:
            continue
        if _is_hidden(name, hidden):
            continue
        entry = _common(link, addresses, routes4, routes6, extras)
        if kind == "bridge":
            stp = bool(_info_data(link).get("stp_state", 0))
            entry.update(
                ports=_ports_of(links, name), stp="on" if stp else "off", opts=bridge_opts(link)
            )
            caps["bridges"][name] = entry
        elif kind == "bond":
            data = _info_data(link)
            entry.update(
                hwaddr=str(link.get("address", "")),
                slaves=_ports_of(links, name),
                active_slave=str(data.get("active_slave", "")),
                opts=bond_opts(link),
                speed=extras.speed.get(name, 0),
                switch="legacy",
            )
            ad_info = data.get("ad_info", {})
            if isinstance(ad_info, Mapping) and "aggregator" in ad_info:
                entry["ad_aggregator_id"] = str(ad_info["aggregator"])
                entry["ad_partner_mac"] = str(ad_info.get("partner_mac", ""))
            caps["bondings"][name] = entry
        elif kind == "vlan":
            entry.update(iface=str(link.get("link", "")), vlanid=int(_info_data(link).get("id", 0)))
            caps["vlans"][name] = entry
        else:
            entry.update(hwaddr=str(link.get("address", "")), speed=extras.speed.get(name, 0))
            slave = link.get("linkinfo", {})
            if slave.get("info_slave_kind") == "bond":
                slave_data = slave.get("info_slave_data", {})
                entry["permhwaddr"] = str(slave_data.get("perm_hwaddr", entry["hwaddr"]))
                if "ad_aggregator_id" in slave_data:
                    entry["ad_aggregator_id"] = str(slave_data["ad_aggregator_id"])
            caps["nics"][name] = entry
    return caps


def parse_resolv_conf(text: str) -> list[str]:
    """The ``nameserver`` addresses of a resolv.conf, in order."""
    servers = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            servers.append(fields[1])
    return servers
