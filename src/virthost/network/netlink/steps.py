"""The steps a plan is made of: small, declarative, JSON-able changes to one device.

A step says *what* should hold afterwards (this bridge exists, this address is on that
device), never how; :mod:`.apply` knows how to check whether it already holds and how to make
it hold with netlink. Keeping them as plain data lets the planner be tested without a kernel
and lets the supervisor report exactly what it did.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

RuleSelector = Literal["from", "to"]


@dataclass(frozen=True)
class Step:
    def describe(self) -> str:
        fields = " ".join(f"{k}={v}" for k, v in asdict(self).items())
        return f"{type(self).__name__} {fields}"

    def to_dict(self) -> dict[str, Any]:
        return {"step": type(self).__name__, **asdict(self)}


# --- removal --------------------------------------------------------------------------


@dataclass(frozen=True)
class DelAddress(Step):
    iface: str
    cidr: str


@dataclass(frozen=True)
class DelDefaultRoute(Step):
    family: int
    gateway: str
    iface: str


@dataclass(frozen=True)
class DelRule(Step):
    """Remove the policy rule ``AddRule`` with the same fields adds (every copy of it)."""

    selector: RuleSelector
    subnet: str
    table: int


@dataclass(frozen=True)
class DelTableRoute(Step):
    """Remove the route ``AddTableRoute`` with the same fields adds."""

    table: int
    dst: str
    iface: str
    gateway: str | None = None
    source: str | None = None


@dataclass(frozen=True)
class DelLink(Step):
    """Delete a bridge, VLAN device or bond (its ports are released by the kernel)."""

    name: str


@dataclass(frozen=True)
class ReleasePort(Step):
    """Take ``name`` out of ``master`` (a bond losing a slave, a bridge losing a port)."""

    name: str
    master: str


@dataclass(frozen=True)
class StopDhcp(Step):
    iface: str


# --- creation -------------------------------------------------------------------------


@dataclass(frozen=True)
class AddBond(Step):
    """A bond with its options as ``((key, value), ...)`` in the kernel's terms."""

    name: str
    options: tuple[tuple[str, str], ...]
    hwaddr: str | None = None


@dataclass(frozen=True)
class AddVlan(Step):
    name: str
    base: str
    vlan_id: int


@dataclass(frozen=True)
class AddBridge(Step):
    name: str


@dataclass(frozen=True)
class SetBridgeOptions(Step):
    """STP and numeric bridge attributes (``forward_delay``, ``multicast_snooping``...)."""

    name: str
    stp: bool
    options: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class Enslave(Step):
    port: str
    master: str


@dataclass(frozen=True)
class SetMtu(Step):
    name: str
    mtu: int


@dataclass(frozen=True)
class SetUp(Step):
    name: str


@dataclass(frozen=True)
class AddAddress(Step):
    iface: str
    cidr: str


@dataclass(frozen=True)
class AddDefaultRoute(Step):
    """The default route of ``family`` via ``gateway`` on ``iface`` (replacing another one)."""

    family: int
    gateway: str
    iface: str


@dataclass(frozen=True)
class StartDhcp(Step):
    """Lease an IPv4 address for ``iface``; with ``default_route`` the lease's router too."""

    iface: str
    default_route: bool = False


@dataclass(frozen=True)
class AddTableRoute(Step):
    """An IPv4 route in routing table ``table`` (a network's source routing table, see
    :mod:`.routing`): to ``dst`` ("default" or ``net/prefix``) out of ``iface``, either via
    ``gateway`` or, without one, on the link with preferred source address ``source``."""

    table: int
    dst: str
    iface: str
    gateway: str | None = None
    source: str | None = None


@dataclass(frozen=True)
class AddRule(Step):
    """The IPv4 policy rule ``<selector> <subnet> lookup <table>``: packets from (or to)
    ``subnet`` are routed by ``table``."""

    selector: RuleSelector
    subnet: str
    table: int
