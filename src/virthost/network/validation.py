"""Checking a desired network configuration against itself and the host, before any change.

Two kinds of checks, on purpose:

* facts of the host (does the nic exist, is a foreign bridge in the way, does the kernel have
  802.1q and bonding) are checked only for the networks and bonds the *request* sets: a nic
  that vanished under an untouched network must not block an unrelated change, and the
  engine repairs that network by sending it again;
* consistency rules (a nic shared only by VLANs, bonds and their slaves, one default route,
  no address used twice) are checked over the whole desired configuration, because a new
  entry can conflict with any existing one.

The first problem found is raised, with VDSM's code, naming the network, nic or bond.
:func:`nic_mtus` is the MTU each nic and bond gets, shared with the applier.
"""

from __future__ import annotations

import ipaddress
import os
from collections import defaultdict
from dataclasses import dataclass

from virthost.host import hostfs
from virthost.network import errors as ne
from virthost.network.canonical import Entry
from virthost.network.model import (
    DEFAULT_MTU,
    NetConfig,
    NetworkAttrs,
    SetupRequest,
    interface_name_problem,
)

IPV6_MIN_MTU = 1280  # the kernel turns IPv6 off on a device with a smaller MTU


@dataclass(frozen=True)
class HostNics:
    """What validation needs to know about the host; the caller reads it.

    ``nics``: the host's nics (physical, veth, dummy... not bonds, bridges or VLANs).
    ``foreign_bridges``: existing bridges that are not networks of ours.
    ``vlan_supported`` / ``bonding_supported``: see :func:`kernel_supports_vlan` and
    :func:`kernel_supports_bonding`.
    """

    nics: frozenset[str]
    foreign_bridges: frozenset[str] = frozenset()
    vlan_supported: bool = True
    bonding_supported: bool = True


def kernel_supports_vlan(root: str = "/", release: str | None = None) -> bool:
    """802.1q is loaded, built in, or available as a module of the running kernel."""
    return hostfs.exists(root, "/sys/module/8021q") or _module_available(root, "8021q", release)


def kernel_supports_bonding(root: str = "/", release: str | None = None) -> bool:
    """The bonding driver is loaded, built in, or available as a module."""
    loaded = hostfs.exists(root, "/sys/class/net/bonding_masters") or hostfs.exists(
        root, "/sys/module/bonding"
    )
    return loaded or _module_available(root, "bonding", release)


def _module_available(root: str, module: str, release: str | None) -> bool:
    # Modules load on first use, so "not loaded yet" is not "missing": look in the lists.
    release = release or os.uname().release
    for listing in ("modules.builtin", "modules.dep"):
        text = hostfs.read_text(root, f"/lib/modules/{release}/{listing}") or ""
        for line in text.splitlines():
            file_name = line.split(":", 1)[0].rsplit("/", 1)[-1]
            if file_name.split(".ko", 1)[0] == module:
                return True
    return False


def validate(desired: NetConfig, request: SetupRequest, host: HostNics) -> None:
    """Raise the first problem of ``desired`` (the merge of ``request`` on the running one)."""
    for name, attrs in sorted(request.networks.items()):
        _check_network_on_host(name, attrs, desired, host)
        check_addresses(name, attrs)
    for name in sorted(request.bonds):
        _check_bond_on_host(name, desired, host)
    _check_bond_references(desired, request)
    _check_bond_slaves(desired)
    _check_nic_sharing(desired)
    _check_default_route(desired)
    _check_duplicate_addresses(desired)


def _check_network_on_host(
    name: str, attrs: NetworkAttrs, desired: NetConfig, host: HostNics
) -> None:
    entry = Entry("network", name)
    if attrs.vlan is not None and not host.vlan_supported:
        entry.fail(ne.BadVlan, "the kernel lacks 802.1q (VLAN) support", vlan=attrs.vlan)
    if attrs.nic is not None and attrs.nic not in host.nics:
        entry.fail(ne.BadNic, f"nic {attrs.nic!r} does not exist", nic=attrs.nic)
    link = attrs.link_device
    if attrs.vlan is not None and link is not None and interface_name_problem(link):
        entry.fail(ne.BadVlan, f"the VLAN device name {link!r} is too long", vlan=attrs.vlan)
    if attrs.bridged:
        if name in host.foreign_bridges:
            entry.fail(ne.BadBridge, "a bridge of that name exists and is not one of ours")
        if name in host.nics or name in desired.bonds:
            entry.fail(ne.BadBridge, "the bridge name is taken by a nic or a bond")
        if name in {other.link_device for other in desired.networks.values()}:
            entry.fail(ne.BadBridge, "the bridge name is taken by a VLAN device")
    uses_ipv6 = attrs.ipv6addrs or attrs.dhcpv6 or attrs.ipv6autoconf
    if uses_ipv6 and attrs.mtu < IPV6_MIN_MTU:
        entry.fail(ne.BadNetworkParameters, f"IPv6 needs an mtu of at least {IPV6_MIN_MTU}")


def _check_bond_on_host(name: str, desired: NetConfig, host: HostNics) -> None:
    entry = Entry("bond", name)
    if not host.bonding_supported:
        entry.fail(ne.BadBonding, "the kernel lacks bonding support")
    if name in host.nics:
        entry.fail(ne.BadBonding, "the bond name is taken by a nic")
    for nic in desired.bonds[name].nics:
        if nic not in host.nics:
            entry.fail(ne.BadBonding, f"nic {nic!r} does not exist", nic=nic)


def check_addresses(name: str, attrs: NetworkAttrs) -> None:
    """One network's IP settings make sense together (22 for a bad value, 21 for a mix)."""
    entry = Entry("network", name)
    if attrs.bootproto == "dhcp" and attrs.ipaddr is not None:
        entry.fail(ne.BadNetworkParameters, "bootproto dhcp together with a static ipaddr")
    if attrs.dhcpv6 and attrs.ipv6addrs:
        entry.fail(ne.BadNetworkParameters, "dhcpv6 together with a static ipv6addr")
    if attrs.ipaddr is not None and attrs.prefix is not None:
        interface = ipaddress.IPv4Interface(f"{attrs.ipaddr}/{attrs.prefix}")
        _check_host_address(interface, "ipaddr", entry)
        if attrs.gateway is not None:
            _check_gateway(interface, ipaddress.IPv4Address(attrs.gateway), entry)
    elif attrs.gateway is not None:
        entry.fail(ne.BadNetworkParameters, "a gateway needs a static ipaddr")
    interfaces6 = [ipaddress.IPv6Interface(text) for text in attrs.ipv6addrs]
    for interface6 in interfaces6:
        _check_host_address(interface6, "ipv6addr", entry)
    if attrs.ipv6gateway is not None:
        gateway6 = ipaddress.IPv6Address(attrs.ipv6gateway)
        dynamic = attrs.dhcpv6 or attrs.ipv6autoconf
        if not interfaces6 and not dynamic:
            entry.fail(ne.BadNetworkParameters, "an ipv6gateway needs an IPv6 address")
        on_link = gateway6.is_link_local or any(gateway6 in i.network for i in interfaces6)
        if interfaces6 and not dynamic and not on_link:
            entry.fail(ne.BadAddress, f"ipv6gateway {gateway6} is outside the ipv6addr subnets")
        if any(gateway6 == i.ip for i in interfaces6):
            entry.fail(ne.BadAddress, "the ipv6gateway is the network's own address")


def _check_host_address(
    interface: ipaddress.IPv4Interface | ipaddress.IPv6Interface, what: str, entry: Entry
) -> None:
    address = interface.ip
    if address.is_unspecified or address.is_loopback or address.is_multicast:
        entry.fail(ne.BadAddress, f"{what} {address} cannot be a host address")
    network = interface.network
    if (
        isinstance(interface, ipaddress.IPv4Interface)
        and network.prefixlen <= 30
        and address
        in (
            network.network_address,
            network.broadcast_address,
        )
    ):
        entry.fail(ne.BadAddress, f"{what} {address} is its subnet's network or broadcast")


def _check_gateway(
    interface: ipaddress.IPv4Interface, gateway: ipaddress.IPv4Address, entry: Entry
) -> None:
    if gateway not in interface.network:
        entry.fail(ne.BadAddress, f"gateway {gateway} is outside {interface.network}")
    if gateway == interface.ip:
        entry.fail(ne.BadAddress, "the gateway is the network's own address")
    if interface.network.prefixlen <= 30 and gateway in (
        interface.network.network_address,
        interface.network.broadcast_address,
    ):
        entry.fail(ne.BadAddress, f"gateway {gateway} is its subnet's network or broadcast")


def _check_bond_references(desired: NetConfig, request: SetupRequest) -> None:
    for name, attrs in sorted(desired.networks.items()):
        bond = attrs.bonding
        if bond is None or bond in desired.bonds:
            continue
        if bond in request.removed_bonds:
            raise ne.BondInUse(
                f"bond {bond!r}: cannot remove, network {name!r} uses it", bond=bond, network=name
            )
        Entry("network", name).fail(ne.BadBonding, f"bond {bond!r} does not exist", bond=bond)


def _check_bond_slaves(desired: NetConfig) -> None:
    owner: dict[str, str] = {}
    for bond, bond_attrs in sorted(desired.bonds.items()):
        for nic in bond_attrs.nics:
            if nic in desired.bonds:
                Entry("bond", bond).fail(ne.BadBonding, f"{nic!r} is a bond, not a nic", nic=nic)
            if nic in owner:
                Entry("bond", bond).fail(
                    ne.BadBonding, f"nic {nic!r} is already a slave of {owner[nic]!r}", nic=nic
                )
            owner[nic] = bond
    for name, attrs in sorted(desired.networks.items()):
        if attrs.nic is not None and attrs.nic in owner:
            Entry("network", name).fail(
                ne.NicInUse, f"nic {attrs.nic!r} is a slave of bond {owner[attrs.nic]!r}"
            )


def _check_nic_sharing(desired: NetConfig) -> None:
    """Networks on one nic or bond: at most one without VLAN, and each VLAN id once."""
    by_device: dict[str, list[tuple[str, NetworkAttrs]]] = defaultdict(list)
    for name, attrs in sorted(desired.networks.items()):
        if attrs.base_device is not None:
            by_device[attrs.base_device].append((name, attrs))
    for device, users in sorted(by_device.items()):
        seen: dict[int | None, str] = {}
        for name, attrs in users:
            if attrs.vlan in seen:
                what = "without VLAN" if attrs.vlan is None else f"with vlan {attrs.vlan}"
                Entry("network", name).fail(
                    ne.NicInUse,
                    f"{device!r} already carries network {seen[attrs.vlan]!r} {what}",
                    nic=device,
                )
            seen[attrs.vlan] = name


def _check_default_route(desired: NetConfig) -> None:
    holders = sorted(name for name, attrs in desired.networks.items() if attrs.default_route)
    if len(holders) > 1:
        raise ne.BadNetworkParameters(
            f"only one network may have the default route, not {', '.join(holders)}",
            networks=holders,
        )


def _check_duplicate_addresses(desired: NetConfig) -> None:
    owner: dict[str, str] = {}
    for name, attrs in sorted(desired.networks.items()):
        addresses = [attrs.ipaddr] if attrs.ipaddr else []
        addresses += [text.split("/", 1)[0] for text in attrs.ipv6addrs]
        for address in addresses:
            if address in owner and owner[address] != name:
                Entry("network", name).fail(
                    ne.BadAddress, f"address {address} is already used by {owner[address]!r}"
                )
            owner[address] = name


def nic_mtus(desired: NetConfig) -> dict[str, int]:
    """The MTU of every nic and bond that carries networks or is a bond (or a slave).

    As in VDSM, a nic or bond gets the largest MTU of the networks on it, so a VLAN network can
    never ask for more than its nic gives; a network's own device (bridge, VLAN device) keeps
    the network's MTU. Bond slaves follow their bond. A bond without networks has the default.
    """
    mtus: dict[str, int] = {}
    for attrs in desired.networks.values():
        device = attrs.base_device
        if device is not None:
            mtus[device] = max(mtus.get(device, attrs.mtu), attrs.mtu)
    for bond, bond_attrs in desired.bonds.items():
        bond_mtu = mtus.setdefault(bond, DEFAULT_MTU)
        for nic in bond_attrs.nics:
            mtus[nic] = bond_mtu
    return mtus
