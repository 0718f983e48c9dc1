"""Executing a plan with pyroute2, idempotently.

For each step the applier first looks at the kernel (:func:`.state.read_state`): a step whose
result is already there is *skipped*, otherwise it is *done* with one or two netlink requests.
This is what makes re-applying a configuration change nothing, and what makes a plan work
from any partial state: after a failure, applying the previous configuration over the desired
one removes what the failed apply had created and restores what it had removed.

A failing step stops the plan at once, so the state it leaves is well defined: every step
before it holds, no step after it was tried. The error (one of VDSM's network codes) names the
step, its position, and how many steps were done before it.

Every netlink request goes to one :class:`pyroute2.IPRoute` socket, or with ``netns`` to a
:class:`pyroute2.NetNS` (a helper process inside that namespace): tests point the applier at
a scratch namespace and never touch the host's interfaces. The whole plan runs under a
deadline checked between steps.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from virthost.common import errors
from virthost.network import errors as ne
from virthost.network.netlink import steps as s
from virthost.network.netlink.bonding import kernel_bond_options
from virthost.network.netlink.dhcp import DhcpClient
from virthost.network.netlink.routing import SOURCE_RULE_PRIORITY
from virthost.network.netlink.state import KernelState, Link, Route, Rule, read_state

log = logging.getLogger("virthost.network.netlink")

DEFAULT_TIMEOUT = 120.0
EOPNOTSUPP = 95
RT_SCOPE_LINK = 253

Handle = Any  # pyroute2 IPRoute or NetNS: untyped


@dataclass
class ApplyReport:
    """What applying a plan did: ``done`` changed the kernel, ``skipped`` already held."""

    done: list[s.Step] = field(default_factory=list)
    skipped: list[s.Step] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.done)

    def to_dict(self) -> dict[str, Any]:
        return {
            "done": [step.to_dict() for step in self.done],
            "skipped": [step.to_dict() for step in self.skipped],
        }


def open_handle(netns: str | None) -> Handle:
    from pyroute2 import IPRoute, NetNS  # type: ignore[import-untyped]

    return NetNS(netns) if netns else IPRoute()


def _interface(cidr: str, step: s.Step) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
    try:
        return ipaddress.ip_interface(cidr)
    except ValueError:
        raise ne.BadAddress(f"{step.describe()}: {cidr!r} is not addr/prefix") from None


def _family_code(family: int) -> int:
    return socket.AF_INET6 if family == 6 else socket.AF_INET


class NetlinkApplier:
    """Applies plans in the host's network namespace, or in ``netns``."""

    def __init__(
        self,
        netns: str | None = None,
        *,
        dhcp: DhcpClient | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        opener: Callable[[str | None], Handle] = open_handle,
    ) -> None:
        self._netns = netns
        self._dhcp = dhcp
        self._timeout = timeout
        self._opener = opener

    def read_state(self) -> KernelState:
        handle = self._opener(self._netns)
        try:
            return read_state(handle)
        finally:
            handle.close()

    def apply(self, plan: Sequence[s.Step]) -> ApplyReport:
        """Run ``plan`` in order; raise a network error at the first step that fails."""
        report = ApplyReport()
        deadline = time.monotonic() + self._timeout
        handle = self._opener(self._netns)
        try:
            state = read_state(handle)
            for position, step in enumerate(plan, 1):
                if time.monotonic() > deadline:
                    raise errors.ResourceTimeout(
                        f"applying took over {self._timeout:g} s; stopped before step "
                        f"{position} of {len(plan)} ({step.describe()}), "
                        f"{len(report.done)} done"
                    )
                if self._holds(step, state):
                    report.skipped.append(step)
                    continue
                try:
                    self._execute(handle, step, state)
                except ne.NetworkError as e:
                    raise type(e)(_failure(step, position, plan, report, e.detail)) from None
                except errors.VirtHostError:
                    raise
                except Exception as e:
                    raise _error_class(step)(_failure(step, position, plan, report, e)) from e
                log.info("network step %d/%d: %s", position, len(plan), step.describe())
                report.done.append(step)
                state = read_state(handle)
        finally:
            handle.close()
        return report

    # --- does the step already hold? -----------------------------------------------------

    def _holds(self, step: s.Step, state: KernelState) -> bool:
        match step:
            case s.DelAddress(iface, cidr):
                try:
                    addr = ipaddress.ip_interface(cidr)
                except ValueError:
                    return True  # never applied: the kernel cannot hold it
                return not state.has_address(iface, str(addr.ip), addr.network.prefixlen)
            case s.DelDefaultRoute(family, gateway, iface):
                return not _has_default_route(state, family, gateway, iface)
            case s.DelRule(selector, subnet, table):
                return not _matching_rules(state, selector, subnet, table)
            case s.DelTableRoute(table, dst, iface, gateway, source):
                return not _matching_table_routes(state, table, dst, iface, gateway, source)
            case s.DelLink(name):
                return state.link(name) is None
            case s.ReleasePort(name, master):
                link = state.link(name)
                return link is None or link.master != master
            case s.StopDhcp(iface):
                return not state.addresses_of(iface, 4)
            case s.AddBond(name):
                return _existing(state, name, "bond", step) is not None
            case s.AddVlan(name, base, vlan_id):
                link = _existing(state, name, "vlan", step)
                if link is not None and (link.vlan_base, link.vlan_id) != (base, vlan_id):
                    raise ne.BadVlan(f"{name} exists on {link.vlan_base} with id {link.vlan_id}")
                return link is not None
            case s.AddBridge(name):
                return _existing(state, name, "bridge", step) is not None
            case s.SetBridgeOptions(name, stp, options):
                link = _required(state, name, step)
                return link.stp == stp and all(
                    link.bridge_options.get(key) == value for key, value in options
                )
            case s.Enslave(port, master):
                return _required(state, port, step).master == master
            case s.SetMtu(name, mtu):
                return _required(state, name, step).mtu == mtu
            case s.SetUp(name):
                return _required(state, name, step).up
            case s.AddAddress(iface, cidr):
                addr = _interface(cidr, step)
                _required(state, iface, step)
                return state.has_address(iface, str(addr.ip), addr.network.prefixlen)
            case s.AddDefaultRoute(family, gateway, iface):
                return _has_default_route(state, family, gateway, iface)
            case s.StartDhcp(iface):
                _required(state, iface, step)
                return any(a.scope == 0 for a in state.addresses_of(iface, 4))
            case s.AddTableRoute(table, dst, iface, gateway, source):
                _required(state, iface, step)
                return bool(_matching_table_routes(state, table, dst, iface, gateway, source))
            case s.AddRule(selector, subnet, table):
                return bool(_matching_rules(state, selector, subnet, table))
        raise errors.InvalidParameter(f"unknown network step {step!r}")

    # --- make it hold --------------------------------------------------------------------

    def _execute(self, ipr: Handle, step: s.Step, state: KernelState) -> None:
        def index(name: str) -> int:
            return _required(state, name, step).index

        match step:
            case s.DelAddress(iface, cidr):
                ipr.addr("del", index=index(iface), **_address(cidr, step))
            case s.DelDefaultRoute(family, gateway, iface):
                ipr.route("del", **_default_route(family, gateway), oif=index(iface))
            case s.DelRule(selector, subnet, table):
                for rule in _matching_rules(state, selector, subnet, table):
                    ipr.rule(
                        "del",
                        **_rule_selector(selector, subnet, step),
                        table=table,
                        priority=rule.priority,
                    )
            case s.DelTableRoute(table, dst, iface, gateway, source):
                for route in _matching_table_routes(state, table, dst, iface, gateway, source):
                    ipr.route(
                        "del",
                        **_table_route(route.dst, gateway, source, step),
                        table=table,
                        oif=index(iface),
                    )
            case s.DelLink(name):
                ipr.link("del", index=index(name))
            case s.ReleasePort(name):
                ipr.link("set", index=index(name), master=0)
            case s.StopDhcp(iface):
                for leased in state.addresses_of(iface, 4):
                    if leased.scope == 0:
                        ipr.addr(
                            "del",
                            index=index(iface),
                            address=leased.address,
                            prefixlen=leased.prefix,
                        )
            case s.AddBond(name, options, hwaddr):
                extra: dict[str, Any] = kernel_bond_options(name, options, index)
                if hwaddr:
                    extra["address"] = hwaddr
                ipr.link("add", ifname=name, kind="bond", **extra)
            case s.AddVlan(name, base, vlan_id):
                ipr.link("add", ifname=name, kind="vlan", link=index(base), vlan_id=vlan_id)
            case s.AddBridge(name):
                ipr.link("add", ifname=name, kind="bridge")
            case s.SetBridgeOptions(name, stp, options):
                attrs = {f"br_{key}": value for key, value in options}
                ipr.link("set", index=index(name), kind="bridge", br_stp_state=int(stp), **attrs)
            case s.Enslave(port, master):
                master_link = _required(state, master, step)
                if master_link.kind == "bond":  # the kernel takes only down slaves
                    ipr.link("set", index=index(port), state="down")
                ipr.link("set", index=index(port), master=master_link.index)
                ipr.link("set", index=index(port), state="up")
            case s.SetMtu(name, mtu):
                ipr.link("set", index=index(name), mtu=mtu)
            case s.SetUp(name):
                ipr.link("set", index=index(name), state="up")
            case s.AddAddress(iface, cidr):
                ipr.addr("add", index=index(iface), **_address(cidr, step))
            case s.AddDefaultRoute(family, gateway, iface):
                ipr.route("replace", **_default_route(family, gateway), oif=index(iface))
            case s.StartDhcp(iface, default_route):
                self._lease(ipr, iface, index(iface), default_route)
            case s.AddTableRoute(table, dst, iface, gateway, source):
                ipr.route(
                    "replace",
                    **_table_route(dst, gateway, source, step),
                    table=table,
                    oif=index(iface),
                )
            case s.AddRule(selector, subnet, table):
                ipr.rule(
                    "add",
                    **_rule_selector(selector, subnet, step),
                    table=table,
                    priority=SOURCE_RULE_PRIORITY,
                )
            case _:
                raise errors.InvalidParameter(f"unknown network step {step!r}")

    def _lease(self, ipr: Handle, iface: str, ifindex: int, default_route: bool) -> None:
        if self._dhcp is None:
            raise errors.UnsupportedOperation("no DHCP client was configured for this applier")
        lease = self._dhcp.acquire(iface)
        ipr.addr("add", index=ifindex, address=lease.address, prefixlen=lease.prefix)
        if default_route and lease.router:
            ipr.route("replace", dst="0.0.0.0/0", gateway=lease.router, oif=ifindex)


def _default_dst(family: int) -> str:
    return "::/0" if family == 6 else "0.0.0.0/0"


def _default_route(family: int, gateway: str) -> dict[str, Any]:
    """pyroute2's arguments naming a default route via ``gateway``."""
    return {"family": _family_code(family), "dst": _default_dst(family), "gateway": gateway}


def _address(cidr: str, step: s.Step) -> dict[str, Any]:
    """pyroute2's arguments naming address ``cidr`` (``addr/prefix``)."""
    addr = _interface(cidr, step)
    return {"address": str(addr.ip), "prefixlen": addr.network.prefixlen}


def _has_default_route(state: KernelState, family: int, gateway: str, iface: str) -> bool:
    return any(
        r.iface == iface and r.gateway is not None and _same_ip(r.gateway, gateway)
        for r in state.default_routes(family)
    )


def _same_network(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return a is b
    try:
        return ipaddress.ip_network(a, strict=False) == ipaddress.ip_network(b, strict=False)
    except ValueError:
        return a == b


def _same_optional_ip(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return a is b
    return _same_ip(a, b)


def _matching_rules(state: KernelState, selector: str, subnet: str, table: int) -> list[Rule]:
    """The IPv4 rules ``<selector> <subnet> lookup <table>`` without other conditions."""
    src, dst = (subnet, None) if selector == "from" else (None, subnet)
    return [
        rule
        for rule in state.rules_to(table)
        if rule.family == 4
        and rule.iif is None
        and rule.oif is None
        and _same_network(rule.src, src)
        and _same_network(rule.dst, dst)
    ]


def _matching_table_routes(
    state: KernelState,
    table: int,
    dst: str,
    iface: str,
    gateway: str | None,
    source: str | None,
) -> list[Route]:
    return [
        route
        for route in state.table_routes(table)
        if route.family == 4
        and route.iface == iface
        and (route.dst == dst == "default" or _same_network(route.dst, dst))
        and _same_optional_ip(route.gateway, gateway)
        and _same_optional_ip(route.source, source)
    ]


def _rule_selector(selector: str, subnet: str, step: s.Step) -> dict[str, Any]:
    """pyroute2's fields for an IPv4 rule matching packets from (or to) ``subnet``."""
    network = _ipv4_network(subnet, step)
    prefix = "src" if selector == "from" else "dst"
    return {
        "family": socket.AF_INET,
        prefix: str(network.network_address),
        f"{prefix}_len": network.prefixlen,
    }


def _table_route(dst: str, gateway: str | None, source: str | None, step: s.Step) -> dict[str, Any]:
    """pyroute2's fields for an IPv4 route to ``dst``, via ``gateway`` or on the link."""
    fields: dict[str, Any] = {
        "family": socket.AF_INET,
        "dst": "0.0.0.0/0" if dst == "default" else str(_ipv4_network(dst, step)),
    }
    if gateway is not None:
        fields["gateway"] = gateway
    else:
        fields["scope"] = RT_SCOPE_LINK
    if source is not None:
        fields["prefsrc"] = source
    return fields


def _ipv4_network(cidr: str, step: s.Step) -> ipaddress.IPv4Network:
    try:
        return ipaddress.IPv4Network(cidr, strict=False)
    except ValueError:
        raise ne.BadAddress(f"{step.describe()}: {cidr!r} is not an IPv4 net/prefix") from None


def _same_ip(a: str, b: str) -> bool:
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return a == b


def _required(state: KernelState, name: str, step: s.Step) -> Link:
    link = state.link(name)
    if link is None:
        raise ne.BadNic(f"{step.describe()}: device {name!r} does not exist", nic=name)
    return link


def _existing(state: KernelState, name: str, kind: str, step: s.Step) -> Link | None:
    link = state.link(name)
    if link is not None and link.kind != kind:
        raise _error_class(step)(
            f"{step.describe()}: {name!r} exists but is a {link.kind or 'nic'}, not a {kind}"
        )
    return link


_ERROR_CLASSES: dict[type[s.Step], type[ne.NetworkError]] = {
    s.DelAddress: ne.BadAddress,
    s.AddAddress: ne.BadAddress,
    s.DelDefaultRoute: ne.BadAddress,
    s.AddDefaultRoute: ne.BadAddress,
    s.DelTableRoute: ne.BadAddress,
    s.AddTableRoute: ne.BadAddress,
    s.DelRule: ne.BadAddress,
    s.AddRule: ne.BadAddress,
    s.StartDhcp: ne.BadAddress,
    s.StopDhcp: ne.BadAddress,
    s.AddBond: ne.BadBonding,
    s.ReleasePort: ne.BadBonding,
    s.AddVlan: ne.BadVlan,
    s.AddBridge: ne.BadBridge,
    s.SetBridgeOptions: ne.BadBridge,
    s.Enslave: ne.BadBridge,
    s.DelLink: ne.BadBridge,
    s.SetMtu: ne.BadNetworkParameters,
    s.SetUp: ne.InterfaceUpFailed,
}


def _error_class(step: s.Step) -> type[ne.NetworkError]:
    return _ERROR_CLASSES.get(type(step), ne.BadNetworkParameters)


def _failure(
    step: s.Step, position: int, plan: Sequence[s.Step], report: ApplyReport, cause: object
) -> str:
    reason = str(cause)
    if getattr(cause, "code", None) == EOPNOTSUPP and isinstance(step, s.AddVlan | s.AddBond):
        feature = "802.1q" if isinstance(step, s.AddVlan) else "bonding"
        reason = f"{cause} (this kernel has no {feature} support)"
    return (
        f"step {position} of {len(plan)} ({step.describe()}) failed: {reason}; "
        f"{len(report.done)} step(s) done before it, {len(report.skipped)} already held"
    )
