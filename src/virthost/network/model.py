"""The desired network state: networks, bonds and the whole configuration, in canonical form.

This is the contract between the three parts of setupNetworks: :mod:`.canonical` turns the
engine's loosely typed request into these objects, :mod:`.validation` checks them against the
host, and the applier makes the kernel match them. Every attribute is always present with its
default filled in, so two configurations compare equal exactly when they would configure the
host the same way; that equality is what decides, after a rollback or at start, whether the
host needs touching at all.

What the applier creates from a network:

* a bridged network ``N`` is a Linux bridge named ``N``; its port is the network's *link
  device* (the nic, the bond, or the VLAN device on one of them); a nicless bridged network
  is a bridge without ports;
* a VLAN network's link device is ``<nic or bond>.<vlan>`` (:func:`vlan_device_name`);
* a bridgeless network puts its addresses on the link device itself.

A :class:`SetupRequest` is one setupNetworks call in this form; :func:`merge` gives the
configuration it asks for.

``to_dict``/``from_dict`` give JSON-able dicts with exactly the attribute names below; they are
the persistence format (running and safe configurations), not the wire format (see
:func:`virthost.network.canonical.network_to_wire` for that).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, Literal, cast

from virthost.network import errors as ne

if TYPE_CHECKING:
    from virthost.network.canonical import Entry

DEFAULT_MTU = 1500
MIN_MTU = 68
MAX_MTU = 65535
MIN_VLAN = 1
MAX_VLAN = 4094
IFNAME_MAX_BYTES = 15  # IFNAMSIZ (16) minus the terminating NUL

Bootproto = Literal["none", "dhcp"]
Switch = Literal["legacy"]
BOOTPROTOS: tuple[Bootproto, ...] = ("none", "dhcp")


def interface_name_problem(name: str) -> str | None:
    """Why the kernel would refuse ``name`` as a network device name, or None if it is fine."""
    if not name:
        return "empty"
    if len(name.encode("utf-8")) > IFNAME_MAX_BYTES:
        return f"longer than {IFNAME_MAX_BYTES} bytes"
    if name in (".", ".."):
        return "'.' and '..' are not device names"
    if any(char in "/:" or char.isspace() or not char.isprintable() for char in name):
        return "contains '/', ':', a space or a control character"
    return None


def vlan_device_name(link: str, vlan: int) -> str:
    """The VLAN device the applier creates on nic or bond ``link``."""
    return f"{link}.{vlan}"


@dataclass(frozen=True)
class NetworkAttrs:
    """One network's canonical attributes (see the module docstring for the devices made)."""

    nic: str | None = None
    bonding: str | None = None
    vlan: int | None = None
    bridged: bool = True
    stp: bool = False
    mtu: int = DEFAULT_MTU
    bootproto: Bootproto = "none"
    ipaddr: str | None = None
    prefix: int | None = None
    gateway: str | None = None
    default_route: bool = False
    ipv6addrs: tuple[str, ...] = ()
    ipv6gateway: str | None = None
    dhcpv6: bool = False
    ipv6autoconf: bool = False
    nameservers: tuple[str, ...] = ()
    bridge_opts: tuple[tuple[str, str], ...] = ()
    switch: Switch = "legacy"

    def __post_init__(self) -> None:
        # A safety net for code paths other than the wire parser, which reports these
        # problems with coded errors naming the network before ever getting here.
        if self.nic is not None and self.bonding is not None:
            raise ValueError("a network is on a nic or on a bond, not both")
        if self.vlan is not None and not MIN_VLAN <= self.vlan <= MAX_VLAN:
            raise ValueError(f"vlan {self.vlan} out of range")
        if not MIN_MTU <= self.mtu <= MAX_MTU:
            raise ValueError(f"mtu {self.mtu} out of range")
        if self.bootproto not in BOOTPROTOS:
            raise ValueError(f"bootproto {self.bootproto!r}")
        if (self.ipaddr is None) != (self.prefix is None):
            raise ValueError("ipaddr and prefix go together")
        if self.switch != "legacy":
            raise ValueError(f"switch {self.switch!r}")

    @property
    def base_device(self) -> str | None:
        """The nic or bond under the network (None for a nicless network)."""
        return self.nic if self.nic is not None else self.bonding

    @property
    def link_device(self) -> str | None:
        """The device that carries the network's traffic: the VLAN device or the base device."""
        base = self.base_device
        if base is None or self.vlan is None:
            return base
        return vlan_device_name(base, self.vlan)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        data["ipv6addrs"] = list(self.ipv6addrs)
        data["nameservers"] = list(self.nameservers)
        data["bridge_opts"] = dict(self.bridge_opts)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NetworkAttrs:
        """The inverse of :meth:`to_dict`; raises ValueError on a dict of another shape."""
        reader = _Reader(data, {f.name for f in fields(cls)})
        opts = reader.get("bridge_opts", dict)
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in opts.items()):
            raise ValueError("bridge_opts must map strings to strings")
        return cls(
            nic=reader.optional("nic", str),
            bonding=reader.optional("bonding", str),
            vlan=reader.optional("vlan", int),
            bridged=reader.get("bridged", bool),
            stp=reader.get("stp", bool),
            mtu=reader.get("mtu", int),
            bootproto=cast(Bootproto, reader.get("bootproto", str)),
            ipaddr=reader.optional("ipaddr", str),
            prefix=reader.optional("prefix", int),
            gateway=reader.optional("gateway", str),
            default_route=reader.get("default_route", bool),
            ipv6addrs=reader.strings("ipv6addrs"),
            ipv6gateway=reader.optional("ipv6gateway", str),
            dhcpv6=reader.get("dhcpv6", bool),
            ipv6autoconf=reader.get("ipv6autoconf", bool),
            nameservers=reader.strings("nameservers"),
            bridge_opts=tuple(sorted(opts.items())),
            switch=cast(Switch, reader.get("switch", str)),
        )


@dataclass(frozen=True)
class BondAttrs:
    """One bond: its slaves (sorted), options in normal form (see
    :func:`virthost.network.canonical.normalize_bond_options`) and an optional MAC address."""

    nics: tuple[str, ...]
    options: str
    hwaddr: str | None = None
    switch: Switch = "legacy"

    def __post_init__(self) -> None:
        if not self.nics:
            raise ValueError("a bond needs at least one nic")
        if list(self.nics) != sorted(set(self.nics)):
            raise ValueError("bond nics must be sorted and distinct")
        if self.switch != "legacy":
            raise ValueError(f"switch {self.switch!r}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "nics": list(self.nics),
            "options": self.options,
            "hwaddr": self.hwaddr,
            "switch": self.switch,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BondAttrs:
        reader = _Reader(data, {f.name for f in fields(cls)})
        return cls(
            nics=reader.strings("nics"),
            options=reader.get("options", str),
            hwaddr=reader.optional("hwaddr", str),
            switch=cast(Switch, reader.get("switch", str)),
        )


@dataclass(frozen=True)
class NetConfig:
    """A whole configuration: networks and bonds by name."""

    networks: dict[str, NetworkAttrs] = field(default_factory=dict)
    bonds: dict[str, BondAttrs] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "networks": {name: attrs.to_dict() for name, attrs in sorted(self.networks.items())},
            "bonds": {name: attrs.to_dict() for name, attrs in sorted(self.bonds.items())},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NetConfig:
        reader = _Reader(data, {"networks", "bonds"})
        networks = reader.get("networks", dict)
        bonds = reader.get("bonds", dict)
        return cls(
            networks={str(name): NetworkAttrs.from_dict(attrs) for name, attrs in networks.items()},
            bonds={str(name): BondAttrs.from_dict(attrs) for name, attrs in bonds.items()},
        )


# --- requests -----------------------------------------------------------------------------
# A request names networks and bonds to set (each replaces any previous definition whole, as in
# VDSM: attributes left out take their defaults, they are not kept from before) and ones to
# remove (``{"remove": true}``); everything it does not name stays as it is. :func:`merge`
# computes the resulting desired configuration, and :func:`request_between` the request that
# leads from one configuration to another, which is how a rollback restores the previous
# configuration through the same path as any other change.
#
# Parsing lives in :mod:`.canonical`, which builds the objects of this module; the methods
# below import it when called so that each module can be imported on its own.

DEFAULT_CONNECTIVITY_TIMEOUT = 4.0  # VDSM's default; the engine sends 120


@dataclass(frozen=True)
class SetupOptions:
    """How to apply: wait for a client to confirm connectivity (else roll back), and whether
    the result becomes the safe configuration at once."""

    connectivity_check: bool = True
    connectivity_timeout: float = DEFAULT_CONNECTIVITY_TIMEOUT
    commit_on_success: bool = False

    @classmethod
    def from_wire(cls, options: object) -> SetupOptions:
        from virthost.network import canonical

        entry = canonical.Entry("options", "setupNetworks")
        if options is None:
            return cls()
        if not isinstance(options, Mapping):
            entry.fail(ne.BadNetworkParameters, "options must be an object")
        timeout = options.get("connectivityTimeout")
        return cls(
            connectivity_check=canonical.to_bool(
                options.get("connectivityCheck", True), "connectivityCheck", entry
            ),
            connectivity_timeout=(
                DEFAULT_CONNECTIVITY_TIMEOUT if timeout in (None, "") else _seconds(timeout, entry)
            ),
            commit_on_success=canonical.to_bool(
                options.get("commitOnSuccess", False), "commitOnSuccess", entry
            ),
        )

    def to_wire(self) -> dict[str, Any]:
        return {
            "connectivityCheck": self.connectivity_check,
            "connectivityTimeout": self.connectivity_timeout,
            "commitOnSuccess": self.commit_on_success,
        }


def _seconds(value: object, entry: Entry) -> float:
    seconds: float
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        try:
            seconds = float(value.strip())
        except ValueError:
            entry.fail(ne.BadNetworkParameters, f"connectivityTimeout {value!r} is not a number")
    else:
        entry.fail(ne.BadNetworkParameters, f"connectivityTimeout {value!r} is not a number")
    if not math.isfinite(seconds) or seconds <= 0:
        entry.fail(ne.BadNetworkParameters, f"connectivityTimeout {value!r} must be positive")
    return seconds


@dataclass(frozen=True)
class SetupRequest:
    """A parsed, canonical setupNetworks request."""

    networks: dict[str, NetworkAttrs] = field(default_factory=dict)
    bonds: dict[str, BondAttrs] = field(default_factory=dict)
    removed_networks: frozenset[str] = frozenset()
    removed_bonds: frozenset[str] = frozenset()
    options: SetupOptions = SetupOptions()

    @classmethod
    def from_wire(cls, networks: object, bondings: object, options: object) -> SetupRequest:
        """Parse and canonicalize the verb's three parameters (None counts as empty)."""
        from virthost.network import canonical

        set_networks: dict[str, NetworkAttrs] = {}
        removed_networks: set[str] = set()
        for name, attrs in _entries(networks, "networks"):
            if _is_removal(name, attrs, "network"):
                canonical.check_network_name(name, bridged=False)
                removed_networks.add(name)
            else:
                set_networks[name] = canonical.parse_network(name, attrs)
        set_bonds: dict[str, BondAttrs] = {}
        removed_bonds: set[str] = set()
        for name, attrs in _entries(bondings, "bondings"):
            if _is_removal(name, attrs, "bond"):
                removed_bonds.add(canonical.check_bond_name(name))
            else:
                set_bonds[name] = canonical.parse_bond(name, attrs)
        return cls(
            networks=set_networks,
            bonds=set_bonds,
            removed_networks=frozenset(removed_networks),
            removed_bonds=frozenset(removed_bonds),
            options=SetupOptions.from_wire(options),
        )

    @property
    def connectivity_check(self) -> bool:
        return self.options.connectivity_check

    @property
    def connectivity_timeout(self) -> float:
        return self.options.connectivity_timeout

    @property
    def commit_on_success(self) -> bool:
        return self.options.commit_on_success

    def to_wire(self) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """``(networks, bondings, options)`` as the engine would send them."""
        from virthost.network import canonical

        networks: dict[str, Any] = {n: {"remove": True} for n in sorted(self.removed_networks)}
        networks.update({n: canonical.network_to_wire(a) for n, a in self.networks.items()})
        bondings: dict[str, Any] = {b: {"remove": True} for b in sorted(self.removed_bonds)}
        bondings.update({b: canonical.bond_to_wire(a) for b, a in self.bonds.items()})
        return networks, bondings, self.options.to_wire()


def _entries(value: object, what: str) -> list[tuple[str, object]]:
    if value is None:
        return []
    if not isinstance(value, Mapping):
        raise ne.BadNetworkParameters(f"{what} must be an object")
    for name in value:
        if not isinstance(name, str):
            raise ne.BadNetworkParameters(f"{what}: name {name!r} is not a string")
    return list(value.items())


def _is_removal(name: str, attrs: object, kind: str) -> bool:
    from virthost.network import canonical

    if not isinstance(attrs, Mapping) or "remove" not in attrs:
        return False
    return canonical.to_bool(attrs["remove"], "remove", canonical.Entry(kind, name))


def merge(running: NetConfig, request: SetupRequest) -> NetConfig:
    """The configuration wanted after ``request`` on top of ``running``.

    Removing a network or bond that is not in ``running`` is refused as VDSM does (27 for a
    network, 25 for a bond). When the request gives a network the default route, the network
    that had it (and is not in the request) loses it, and its name servers with it: they
    belong to the default-route network.
    """
    for name in sorted(request.removed_networks - running.networks.keys()):
        raise ne.BadBridge(f"network {name!r}: cannot remove, it does not exist", network=name)
    for name in sorted(request.removed_bonds - running.bonds.keys()):
        raise ne.BadBonding(f"bond {name!r}: cannot remove, it does not exist", bond=name)
    networks = {
        name: attrs
        for name, attrs in running.networks.items()
        if name not in request.removed_networks
    }
    if any(attrs.default_route for attrs in request.networks.values()):
        for name, attrs in networks.items():
            if attrs.default_route and name not in request.networks:
                networks[name] = replace(attrs, default_route=False, nameservers=())
    networks.update(request.networks)
    bonds = {name: b for name, b in running.bonds.items() if name not in request.removed_bonds}
    bonds.update(request.bonds)
    return NetConfig(networks=networks, bonds=bonds)


def request_between(
    current: NetConfig, target: NetConfig, options: SetupOptions | None = None
) -> SetupRequest:
    """The request that turns ``current`` into ``target`` (only what differs).

    ``options`` default to no connectivity check: this is what a rollback sends, and a
    rollback must not itself wait for a client that may be gone.
    """
    return SetupRequest(
        networks={
            name: attrs
            for name, attrs in target.networks.items()
            if current.networks.get(name) != attrs
        },
        bonds={name: b for name, b in target.bonds.items() if current.bonds.get(name) != b},
        removed_networks=frozenset(current.networks.keys() - target.networks.keys()),
        removed_bonds=frozenset(current.bonds.keys() - target.bonds.keys()),
        options=options or SetupOptions(connectivity_check=False),
    )


class _Reader:
    """Typed access to a persisted dict that must have exactly the expected keys."""

    def __init__(self, data: Mapping[str, Any], expected: set[str]) -> None:
        if not isinstance(data, Mapping):
            raise ValueError(f"expected a mapping, got {type(data).__name__}")
        if set(data) != expected:
            missing = sorted(expected - set(data))
            unknown = sorted(set(map(str, data)) - expected)
            raise ValueError(f"missing keys {missing}, unknown keys {unknown}")
        self._data = data

    def get(self, key: str, kind: type[Any]) -> Any:
        value = self._data[key]
        # bool is an int subclass: a persisted True must not pass for an MTU of 1.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ValueError(f"{key}: expected {kind.__name__}, got {value!r}")
        return value

    def optional(self, key: str, kind: type[Any]) -> Any:
        return None if self._data[key] is None else self.get(key, kind)

    def strings(self, key: str) -> tuple[str, ...]:
        values = self.get(key, list)
        if not all(isinstance(value, str) for value in values):
            raise ValueError(f"{key}: expected a list of strings")
        return tuple(values)
