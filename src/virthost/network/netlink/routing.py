"""Per-network source routing: a routing table of its own for each network with a gateway.

A host has one default route, held by the network marked ``default_route``. Without more, a
reply leaving from the address of *another* network would follow that default route out of
the wrong device, to a gateway that may drop it (reverse path filtering, asymmetric
firewalls). VDSM therefore gives every network with a static IPv4 address and a gateway a
routing table of its own, whether or not it also holds the default route, with:

* the network's subnet route (on its device, with its address as preferred source), and a
  default route via the network's gateway, in that table;
* two policy rules sending packets ``from <subnet>`` and ``to <subnet>`` to that table.

So traffic from the network's address leaves through its own gateway, whichever network
holds the main table's default route.

The table id is derived from the name of the device holding the network's address (its
bridge, or its nic, bond or VLAN device when bridgeless): the CRC32 of the name folded into
``SOURCE_TABLE_MIN..SOURCE_TABLE_MAX``. The same device always gets the same table, across
applies and restarts, without remembering anything; the range starts well above the tables
the kernel reserves (0 unspecified, 253 default, 254 main, 255 local) and the small numbers
administrators use by hand, and ends at the largest id iproute2 prints as a plain number.
Two devices of one configuration folding to the same id are refused by the planner
(:func:`table_collisions`) rather than silently sharing a table.

Not covered: IPv6 (VDSM's IPv6 gateway goes to the main table only) and DHCP networks, whose
address and router are only known once leased.
"""

from __future__ import annotations

import ipaddress
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

from virthost.network.model import NetworkAttrs
from virthost.network.netlink import steps as s

SOURCE_TABLE_MIN = 0x1000
SOURCE_TABLE_MAX = 0x7FFFFFFF
# Looked at before the main table's rule (32766), after the local table's (0).
SOURCE_RULE_PRIORITY = 32000


def source_table_id(device: str) -> int:
    """The routing table of the network whose addresses are on ``device`` (stable, never 0,
    253, 254 or 255)."""
    span = SOURCE_TABLE_MAX - SOURCE_TABLE_MIN + 1
    return SOURCE_TABLE_MIN + zlib.crc32(device.encode("utf-8")) % span


def is_source_table(table: int) -> bool:
    """Whether ``table`` is in the range this module hands out (the tables the applier owns)."""
    return SOURCE_TABLE_MIN <= table <= SOURCE_TABLE_MAX


@dataclass(frozen=True)
class SourceRouting:
    """What one network's source routing consists of."""

    device: str
    table: int
    address: str
    subnet: str
    gateway: str

    def add_steps(self) -> list[s.Step]:
        """The table's routes first, then the rules, so no packet is steered into a table
        that cannot route it yet."""
        return [
            s.AddTableRoute(self.table, self.subnet, self.device, source=self.address),
            s.AddTableRoute(self.table, "default", self.device, gateway=self.gateway),
            s.AddRule("from", self.subnet, self.table),
            s.AddRule("to", self.subnet, self.table),
        ]

    def del_steps(self) -> list[s.Step]:
        """The reverse of :meth:`add_steps`: rules first, then the table's routes."""
        return [removal(step) for step in reversed(self.add_steps())]


def removal(step: s.Step) -> s.Step:
    """The step undoing an ``AddRule`` or ``AddTableRoute``."""
    match step:
        case s.AddRule(selector, subnet, table):
            return s.DelRule(selector, subnet, table)
        case s.AddTableRoute(table, dst, iface, gateway, source):
            return s.DelTableRoute(table, dst, iface, gateway, source)
    raise ValueError(f"not a source routing step: {step!r}")


def source_routing(device: str | None, net: NetworkAttrs) -> SourceRouting | None:
    """The source routing of a network whose addresses are on ``device``, or None when it
    has none: no device, DHCP, no static IPv4 address or no gateway."""
    if device is None or net.bootproto == "dhcp" or not net.gateway:
        return None
    if not net.ipaddr or net.prefix is None:
        return None
    try:
        interface = ipaddress.IPv4Interface(f"{net.ipaddr}/{net.prefix}")
    except ValueError:
        return None  # the address step reports it, naming the network's device
    return SourceRouting(
        device=device,
        table=source_table_id(device),
        address=str(interface.ip),
        subnet=str(interface.network),
        gateway=net.gateway,
    )


def table_collisions(routings: Iterable[SourceRouting]) -> list[tuple[str, str]]:
    """Pairs of distinct devices whose tables have the same id, sorted."""
    by_table: dict[int, str] = {}
    found = []
    for routing in sorted(routings, key=lambda r: r.device):
        other = by_table.setdefault(routing.table, routing.device)
        if other != routing.device:
            found.append((other, routing.device))
    return found
