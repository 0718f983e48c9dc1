"""From the running configuration to the desired one: an ordered list of steps.

The order is what keeps a host reachable and the kernel happy:

1. what goes away first: source routing rules and tables, default routes and addresses of
   removed or rebuilt networks, then their bridges and VLAN devices, then removed (or
   re-optioned) bonds and departed bond slaves, then the MTU of nics that no longer carry
   anything back to the default;
2. then what is wanted, from the bottom of the stack up: bonds and their slaves, the MTU of
   nics and bonds (the largest of the networks they carry, so a VLAN or bridge above can have
   it), VLAN devices, bridges with their options and port, MTUs, links up, addresses, DHCP,
   default routes, and last each network's source routing table and rules (:mod:`.routing`).

Removal is computed from the difference of the two configurations: a network whose device
stack changed (nic, bond, VLAN or bridged-ness) is taken down completely and rebuilt, one
whose stack is the same loses only the addresses, routes and rules it no longer has.
Creation lists *every* desired network and bond, not only the changed ones: the applier skips
each step whose result is already in the kernel, so unchanged networks cost one look, and a
kernel that lost something (a crash in the middle of an apply, a reboot) is brought back to
the desired configuration by the same plan. Applying ``(desired -> previous)`` after a failure
is how the previous configuration is restored.
"""

from __future__ import annotations

from collections.abc import Iterable

from virthost.common import errors
from virthost.network import errors as ne
from virthost.network.model import DEFAULT_MTU, BondAttrs, NetConfig, NetworkAttrs
from virthost.network.netlink import routing
from virthost.network.netlink import steps as s

# sysfs spells the multicast options out; their netlink attributes are abbreviated.
_BRIDGE_OPTION_ALIASES = {"multicast_": "mcast_"}


def top_device(name: str, net: NetworkAttrs) -> str | None:
    """The device holding the network's addresses: its bridge, VLAN device, nic or bond."""
    return name if net.bridged else net.link_device


def device_mtus(config: NetConfig) -> dict[str, int]:
    """MTU of each nic or bond carrying networks: the largest of those networks' MTUs.

    A bond's slaves follow their bond (the kernel sets them), so they are not listed.
    """
    mtus: dict[str, int] = {}
    for net in config.networks.values():
        base = net.base_device
        if base is not None:
            mtus[base] = max(mtus.get(base, 0), net.mtu)
    return mtus


def _ipv4_cidr(net: NetworkAttrs) -> str | None:
    if net.bootproto == "dhcp" or not net.ipaddr or net.prefix is None:
        return None
    return f"{net.ipaddr}/{net.prefix}"


def network_addresses(net: NetworkAttrs) -> list[str]:
    """Static addresses of a network as ``addr/prefix``."""
    cidr = _ipv4_cidr(net)
    return ([cidr] if cidr else []) + list(net.ipv6addrs)


def network_default_routes(net: NetworkAttrs) -> list[tuple[int, str]]:
    """``(family, gateway)`` of the default routes a network owns."""
    routes: list[tuple[int, str]] = []
    if net.default_route and net.gateway and net.bootproto != "dhcp":
        routes.append((4, net.gateway))
    if net.ipv6gateway:
        routes.append((6, net.ipv6gateway))
    return routes


def source_routing_steps(top: str, net: NetworkAttrs, *, removal: bool = False) -> list[s.Step]:
    """The steps adding (or with ``removal``, deleting) a network's source routing."""
    found = routing.source_routing(top, net)
    if found is None:
        return []
    return found.del_steps() if removal else found.add_steps()


def _stack(net: NetworkAttrs) -> tuple[object, ...]:
    return (net.nic, net.bonding, net.vlan, net.bridged)


def _bond_identity(bond: BondAttrs) -> tuple[object, ...]:
    return (bond_options(bond), bond.hwaddr)


def bond_options(bond: BondAttrs) -> tuple[tuple[str, str], ...]:
    """``"mode=4 miimon=100"`` as ``(("miimon", "100"), ("mode", "4"))``."""
    pairs = []
    for word in bond.options.split():
        key, _, value = word.partition("=")
        pairs.append((key, value))
    return tuple(sorted(pairs))


def bridge_options(name: str, net: NetworkAttrs) -> tuple[tuple[str, int], ...]:
    """Numeric bridge options by their netlink names, refused here before any change."""
    result = []
    for key, value in net.bridge_opts:
        for long, short in _BRIDGE_OPTION_ALIASES.items():
            if key.startswith(long):
                key = short + key.removeprefix(long)
        if key == "stp_state":
            continue  # the network's ``stp`` attribute decides
        try:
            result.append((key, int(value, 0)))
        except ValueError:
            raise ne.BadBridge(
                f"network {name!r}: bridge option {key}={value!r} is not a number", network=name
            ) from None
    return tuple(sorted(result))


# --- removal ---------------------------------------------------------------------------


def _take_down(name: str, net: NetworkAttrs) -> list[s.Step]:
    result: list[s.Step] = []
    top = top_device(name, net)
    if top is not None:
        result += source_routing_steps(top, net, removal=True)
        result += [s.DelDefaultRoute(f, gw, top) for f, gw in network_default_routes(net)]
        if net.bootproto == "dhcp":
            result.append(s.StopDhcp(top))
        result += [s.DelAddress(top, cidr) for cidr in network_addresses(net)]
    if net.bridged:
        result.append(s.DelLink(name))
    if net.vlan is not None and net.link_device is not None:
        result.append(s.DelLink(net.link_device))
    return result


def _trim(name: str, old: NetworkAttrs, new: NetworkAttrs) -> list[s.Step]:
    """Same device stack: drop only the routes, DHCP and addresses ``new`` no longer has."""
    top = top_device(name, old)
    if top is None:
        return []
    kept_source_routing = set(source_routing_steps(top, new))
    result: list[s.Step] = [
        routing.removal(step)
        for step in reversed(source_routing_steps(top, old))
        if step not in kept_source_routing
    ]
    kept_routes = set(network_default_routes(new))
    result += [
        s.DelDefaultRoute(family, gateway, top)
        for family, gateway in network_default_routes(old)
        if (family, gateway) not in kept_routes
    ]
    if old.bootproto == "dhcp" and new.bootproto != "dhcp":
        result.append(s.StopDhcp(top))
    kept_addresses = set(network_addresses(new))
    result += [
        s.DelAddress(top, cidr) for cidr in network_addresses(old) if cidr not in kept_addresses
    ]
    return result


def _removals(running: NetConfig, desired: NetConfig) -> list[s.Step]:
    result: list[s.Step] = []
    for name, old in sorted(running.networks.items()):
        new = desired.networks.get(name)
        if new is None or _stack(new) != _stack(old):
            result += _take_down(name, old)
        else:
            result += _trim(name, old, new)
    for name, old_bond in sorted(running.bonds.items()):
        new_bond = desired.bonds.get(name)
        if new_bond is None or _bond_identity(new_bond) != _bond_identity(old_bond):
            result.append(s.DelLink(name))
            continue
        result += [
            s.ReleasePort(nic, name) for nic in sorted(set(old_bond.nics) - set(new_bond.nics))
        ]
    result += [s.SetMtu(nic, DEFAULT_MTU) for nic in _released_nics(running, desired)]
    return result


def _used_nics(config: NetConfig) -> set[str]:
    nics = {net.nic for net in config.networks.values() if net.nic}
    for bond in config.bonds.values():
        nics.update(bond.nics)
    return nics


def _released_nics(running: NetConfig, desired: NetConfig) -> list[str]:
    """Nics (not bonds) that carried something and carry nothing any more."""
    return sorted(_used_nics(running) - _used_nics(desired) - set(running.bonds))


# --- creation --------------------------------------------------------------------------


def _build_bond(name: str, bond: BondAttrs) -> list[s.Step]:
    result: list[s.Step] = [s.AddBond(name, bond_options(bond), bond.hwaddr)]
    result += [s.Enslave(nic, name) for nic in sorted(bond.nics)]
    return result


def _build_network(name: str, net: NetworkAttrs) -> list[s.Step]:
    result: list[s.Step] = []
    device = net.link_device
    if net.vlan is not None and net.base_device is not None and device is not None:
        result += [
            s.AddVlan(device, net.base_device, net.vlan),
            s.SetMtu(device, net.mtu),
            s.SetUp(device),
        ]
    if net.bridged:
        result += [s.AddBridge(name), s.SetBridgeOptions(name, net.stp, bridge_options(name, net))]
        if device is not None:
            result.append(s.Enslave(device, name))
        result += [s.SetMtu(name, net.mtu), s.SetUp(name)]
        device = name
    if device is None:
        return result
    result += [s.AddAddress(device, cidr) for cidr in network_addresses(net)]
    if net.bootproto == "dhcp":
        result.append(s.StartDhcp(device, net.default_route))
    return result


def _builds(desired: NetConfig) -> list[s.Step]:
    result: list[s.Step] = []
    for name, bond in sorted(desired.bonds.items()):
        result += _build_bond(name, bond)
    for device, mtu in sorted(device_mtus(desired).items()):
        result += [s.SetMtu(device, mtu), s.SetUp(device)]
    for name in sorted(desired.bonds):
        if name not in device_mtus(desired):
            result.append(s.SetUp(name))
    for name, net in sorted(desired.networks.items(), key=_untagged_first):
        result += _build_network(name, net)
    # Default routes last: their gateway must be reachable through an address set above.
    for name, net in sorted(desired.networks.items()):
        top = top_device(name, net)
        if top is not None:
            result += [s.AddDefaultRoute(f, gw, top) for f, gw in network_default_routes(net)]
    # Then the source routing tables, the gateway of each now reachable.
    for name, net in sorted(desired.networks.items()):
        top = top_device(name, net)
        if top is not None:
            result += source_routing_steps(top, net)
    return result


def _untagged_first(item: tuple[str, NetworkAttrs]) -> tuple[bool, str]:
    return (item[1].vlan is not None, item[0])


def plan(running: NetConfig, desired: NetConfig) -> list[s.Step]:
    """The steps that turn ``running`` into ``desired`` (see the module docstring)."""
    for name, net in sorted(desired.networks.items()):
        if net.dhcpv6:
            # busybox has no udhcpc6 here and no other DHCPv6 client is installed.
            raise errors.UnsupportedOperation(
                f"network {name!r}: dhcpv6 needs a DHCPv6 client; none is installed"
            )
    _refuse_shared_tables(desired)
    return _dedupe([*_removals(running, desired), *_builds(desired)])


def _refuse_shared_tables(desired: NetConfig) -> None:
    """Two networks whose device names fold to the same table id would overwrite each other's
    routes: refused before any change (improbable: about one pair in 2**31)."""
    owners: dict[str, str] = {}
    found = []
    for name, net in sorted(desired.networks.items()):
        source_routing = routing.source_routing(top_device(name, net), net)
        if source_routing is not None:
            owners.setdefault(source_routing.device, name)
            found.append(source_routing)
    collisions = routing.table_collisions(found)
    if collisions:
        first, second = collisions[0]
        raise ne.BadNetworkParameters(
            f"networks {owners[first]!r} and {owners[second]!r}: devices {first!r} and "
            f"{second!r} map to the same source routing table {routing.source_table_id(first)}",
            network=owners[second],
        )


def _dedupe(items: Iterable[s.Step]) -> list[s.Step]:
    seen: set[s.Step] = set()
    result = []
    for step in items:
        if step not in seen:
            seen.add(step)
            result.append(step)
    return result
