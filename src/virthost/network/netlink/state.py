"""What the kernel has right now, read over netlink: links, bridge ports, addresses, routes,
policy rules.

The planner works from configurations (running and desired), but the applier must know what
is actually there to skip a step whose result already exists: that is what makes applying the
same configuration twice change nothing, and what lets a half-done apply be finished or undone
by applying again. So before each step the applier looks at a :class:`KernelState`, a plain
snapshot with names instead of interface indexes (indexes change when a device is recreated;
names are what configurations speak).

Only the routing tables the applier writes are read: the main table, and the per-network
source routing tables of :mod:`.routing` with the policy rules pointing to them. Other tables
and rules (the kernel's local table, an administrator's own) are left out.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from virthost.network.netlink.routing import is_source_table

IFF_UP = 0x1
MAIN_TABLE = 254
DEFAULT_MTU = 1500


class NetlinkMessage(Protocol):
    """The part of pyroute2's message objects the reader uses."""

    def get_attr(self, name: str, default: Any = None) -> Any: ...

    def __getitem__(self, key: str) -> Any: ...


class NetlinkReader(Protocol):
    """The dump calls of pyroute2's ``IPRoute``/``NetNS`` (a double in unit tests)."""

    def get_links(self) -> Iterable[NetlinkMessage]: ...

    def get_addr(self) -> Iterable[NetlinkMessage]: ...

    def get_routes(self) -> Iterable[NetlinkMessage]: ...

    def get_rules(self) -> Iterable[NetlinkMessage]: ...


@dataclass(frozen=True)
class Link:
    """One network device. ``kind`` is the rtnetlink kind ("bridge", "vlan", "bond", "veth")
    or None for a physical nic; ``master`` names the bridge or bond it is enslaved to."""

    name: str
    index: int
    kind: str | None
    mtu: int
    up: bool
    master: str | None = None
    hwaddr: str | None = None
    vlan_id: int | None = None
    vlan_base: str | None = None
    stp: bool | None = None
    bridge_options: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Address:
    """An address as ``addr/prefix`` on ``iface``; ``family`` is 4 or 6."""

    iface: str
    address: str
    prefix: int
    family: int
    scope: int = 0

    @property
    def cidr(self) -> str:
        return f"{self.address}/{self.prefix}"


@dataclass(frozen=True)
class Route:
    """A route of the main table or of a source routing table; ``dst`` is "default" or
    "addr/prefix"; ``source`` is the preferred source address, if the route has one."""

    family: int
    dst: str
    gateway: str | None
    iface: str | None
    table: int = MAIN_TABLE
    source: str | None = None


@dataclass(frozen=True)
class Rule:
    """A policy rule sending packets to ``table``; ``src`` and ``dst`` are "addr/prefix" or
    None for "all"; ``iif``/``oif`` the devices it is limited to, if any."""

    family: int
    priority: int
    table: int
    src: str | None = None
    dst: str | None = None
    iif: str | None = None
    oif: str | None = None


@dataclass(frozen=True)
class KernelState:
    links: dict[str, Link] = field(default_factory=dict)
    addresses: tuple[Address, ...] = ()
    routes: tuple[Route, ...] = ()
    rules: tuple[Rule, ...] = ()

    def link(self, name: str) -> Link | None:
        return self.links.get(name)

    def ports(self, master: str) -> list[str]:
        """Devices enslaved to bridge or bond ``master``, sorted by name."""
        return sorted(link.name for link in self.links.values() if link.master == master)

    def addresses_of(self, iface: str, family: int | None = None) -> list[Address]:
        return [
            a for a in self.addresses if a.iface == iface and (family is None or a.family == family)
        ]

    def has_address(self, iface: str, address: str, prefix: int) -> bool:
        return any(a.address == address and a.prefix == prefix for a in self.addresses_of(iface))

    def default_routes(self, family: int) -> list[Route]:
        """Default routes of the main table."""
        return [
            r
            for r in self.routes
            if r.family == family and r.dst == "default" and r.table == MAIN_TABLE
        ]

    def table_routes(self, table: int) -> list[Route]:
        return [r for r in self.routes if r.table == table]

    def rules_to(self, table: int) -> list[Rule]:
        return [r for r in self.rules if r.table == table]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (what the supervisor's ``network_state`` answers)."""
        return {
            "links": {name: asdict(link) for name, link in sorted(self.links.items())},
            "addresses": [asdict(a) for a in self.addresses],
            "routes": [asdict(r) for r in self.routes],
            "rules": [asdict(r) for r in self.rules],
        }


def _family(value: int) -> int:
    return 6 if value == socket.AF_INET6 else 4


def _link_from_message(msg: NetlinkMessage, names: dict[int, str]) -> Link:
    kind: str | None = None
    vlan_id: int | None = None
    vlan_base: str | None = None
    stp: bool | None = None
    bridge_options: dict[str, int] = {}
    info = msg.get_attr("IFLA_LINKINFO")
    if info is not None:
        kind = info.get_attr("IFLA_INFO_KIND")
        data = info.get_attr("IFLA_INFO_DATA")
        if kind == "vlan" and data is not None:
            vlan_id = data.get_attr("IFLA_VLAN_ID")
            base_index = msg.get_attr("IFLA_LINK")
            vlan_base = names.get(base_index) if base_index is not None else None
        elif kind == "bridge" and data is not None:
            bridge_options = _bridge_options(data)
            stp_state = bridge_options.get("stp_state")
            stp = bool(stp_state) if stp_state is not None else None
    master_index = msg.get_attr("IFLA_MASTER")
    return Link(
        name=str(msg.get_attr("IFLA_IFNAME")),
        index=int(msg["index"]),
        kind=kind,
        mtu=int(msg.get_attr("IFLA_MTU") or DEFAULT_MTU),
        up=bool(int(msg["flags"]) & IFF_UP),
        master=names.get(master_index) if master_index else None,
        hwaddr=msg.get_attr("IFLA_ADDRESS"),
        vlan_id=vlan_id,
        vlan_base=vlan_base,
        stp=stp,
        bridge_options=bridge_options,
    )


def _bridge_options(data: Any) -> dict[str, int]:
    """Numeric ``IFLA_BR_*`` attributes as ``{"forward_delay": 1500, ...}``."""
    options: dict[str, int] = {}
    for attr in getattr(data, "get", lambda _key, _default: [])("attrs", []):
        name, value = attr[0], attr[1]
        if isinstance(name, str) and name.startswith("IFLA_BR_") and isinstance(value, int):
            options[name.removeprefix("IFLA_BR_").lower()] = value
    return options


def read_state(reader: NetlinkReader) -> KernelState:
    """One consistent-enough snapshot: links first (to resolve indexes), then the rest."""
    link_messages = list(reader.get_links())
    names = {int(m["index"]): str(m.get_attr("IFLA_IFNAME")) for m in link_messages}
    links = {link.name: link for link in (_link_from_message(m, names) for m in link_messages)}
    addresses = []
    for msg in reader.get_addr():
        iface = names.get(int(msg["index"]))
        address = msg.get_attr("IFA_LOCAL") or msg.get_attr("IFA_ADDRESS")
        if iface is None or address is None:
            continue
        addresses.append(
            Address(
                iface=iface,
                address=str(address),
                prefix=int(msg["prefixlen"]),
                family=_family(int(msg["family"])),
                scope=int(msg["scope"]),
            )
        )
    routes = [
        _route_from_message(msg, names)
        for msg in reader.get_routes()
        if _owned_table(_table(msg, "RTA_TABLE"))
    ]
    rules = [
        _rule_from_message(msg)
        for msg in reader.get_rules()
        if is_source_table(_table(msg, "FRA_TABLE"))
    ]
    return KernelState(
        links=links, addresses=tuple(addresses), routes=tuple(routes), rules=tuple(rules)
    )


def _table(msg: NetlinkMessage, attr: str) -> int:
    """The table of a route or rule: the header's 8-bit field holds only small ids; larger
    ones are in an attribute (which recent kernels always send)."""
    return int(msg.get_attr(attr) or msg["table"])


def _owned_table(table: int) -> bool:
    return table == MAIN_TABLE or is_source_table(table)


def _prefixed(address: Any, length: int) -> str | None:
    return None if address is None else f"{address}/{length}"


def _route_from_message(msg: NetlinkMessage, names: dict[int, str]) -> Route:
    dst_len = int(msg["dst_len"])
    oif = msg.get_attr("RTA_OIF")
    gateway = msg.get_attr("RTA_GATEWAY")
    source = msg.get_attr("RTA_PREFSRC")
    return Route(
        family=_family(int(msg["family"])),
        dst="default" if dst_len == 0 else f"{msg.get_attr('RTA_DST')}/{dst_len}",
        gateway=str(gateway) if gateway else None,
        iface=names.get(oif) if oif is not None else None,
        table=_table(msg, "RTA_TABLE"),
        source=str(source) if source else None,
    )


def _rule_from_message(msg: NetlinkMessage) -> Rule:
    iif = msg.get_attr("FRA_IIFNAME")
    oif = msg.get_attr("FRA_OIFNAME")
    return Rule(
        family=_family(int(msg["family"])),
        priority=int(msg.get_attr("FRA_PRIORITY") or 0),
        table=_table(msg, "FRA_TABLE"),
        src=_prefixed(msg.get_attr("FRA_SRC"), int(msg["src_len"])),
        dst=_prefixed(msg.get_attr("FRA_DST"), int(msg["dst_len"])),
        iif=str(iif) if iif else None,
        oif=str(oif) if oif else None,
    )
