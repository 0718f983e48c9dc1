"""From the engine's setupNetworks attributes to the canonical model, and back.

The engine sends loosely typed attributes: numbers and booleans may be strings (``"1500"``,
``"true"``), an IPv4 address comes with a netmask or a prefix, IPv6 addresses in any textual
form, bridge options as one ``"k=v k2=v2"`` string. Parsing fills every default and brings
each value to one normal form (netmask -> prefix, compressed IPv6, sorted options), so that
equal meaning gives equal objects. A malformed value is refused here with VDSM's code and the
name of the network or bond; checks that need the rest of the configuration or the host are
in :mod:`virthost.network.validation`.

:func:`network_to_wire` and :func:`bond_to_wire` give the wire form back (for hooks and for
the request that restores a previous configuration); parsing it again gives the same object.

Attributes we do not act on (``hostQos``, ``custom`` keys other than ``bridge_opts`` and
``default_route``, ``blockingdhcp``...) are ignored, as VDSM ignores what its backend does not
use; Open vSwitch (``switch: ovs``, ``custom: {ovs: true}``) is refused with code 21.

Bond options, a choice of ours: VDSM passes them through, so a bond without options gets the
kernel's defaults, mode balance-rr and *no* link monitoring (miimon 0), which means a bond that
never fails over. We write ``mode`` explicitly (balance-rr when absent: the kernel's own
default, so nothing changes) and add ``miimon=100`` when neither ``miimon`` nor
``arp_interval`` is given, which is what the engine always sends for new bonds.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Mapping
from typing import Any, NoReturn

from virthost.common.errors import VirtHostError
from virthost.network import errors as ne
from virthost.network.model import (
    DEFAULT_MTU,
    MAX_MTU,
    MAX_VLAN,
    MIN_MTU,
    MIN_VLAN,
    BondAttrs,
    Bootproto,
    NetworkAttrs,
    interface_name_problem,
)

log = logging.getLogger("virthost.network.canonical")

BOND_MODES = (
    "balance-rr",
    "active-backup",
    "balance-xor",
    "broadcast",
    "802.3ad",
    "balance-tlb",
    "balance-alb",
)
# The bonding driver's sysfs options a request may set (the kernel refuses anything else).
BOND_OPTION_NAMES = frozenset(
    {
        "active_slave",
        "ad_actor_sys_prio",
        "ad_actor_system",
        "ad_select",
        "ad_user_port_key",
        "all_slaves_active",
        "arp_all_targets",
        "arp_interval",
        "arp_ip_target",
        "arp_missed_max",
        "arp_validate",
        "downdelay",
        "fail_over_mac",
        "lacp_rate",
        "lp_interval",
        "miimon",
        "min_links",
        "mode",
        "num_grat_arp",
        "num_unsol_na",
        "packets_per_slave",
        "peer_notif_delay",
        "primary",
        "primary_reselect",
        "resend_igmp",
        "tlb_dynamic_lb",
        "updelay",
        "use_carrier",
        "xmit_hash_policy",
    }
)
DEFAULT_BOND_MODE = "balance-rr"
DEFAULT_MIIMON = "100"
# Option values end up in sysfs or netlink attributes: letters, digits and a few separators.
_OPTION_VALUE = re.compile(r"[A-Za-z0-9._:,+-]+")
_OPTION_KEY = re.compile(r"[a-z0-9_]+")
_MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")
_NETWORK_KEYS = frozenset(
    {
        "nic", "bonding", "vlan", "bridged", "stp", "STP", "mtu", "bootproto", "ipaddr",
        "netmask", "prefix", "gateway", "defaultRoute", "ipv6addr", "ipv6gateway", "dhcpv6",
        "ipv6autoconf", "nameservers", "custom", "switch", "remove",
    }
)  # fmt: skip
_TRUE_WORDS = frozenset({"true", "yes", "on", "1"})
_FALSE_WORDS = frozenset({"false", "no", "off", "0", ""})


class Entry:
    """The network or bond being parsed: every error raised through it names it."""

    def __init__(self, kind: str, name: str) -> None:
        self.kind = kind
        self.name = name

    def fail(self, error: type[VirtHostError], problem: str, **context: Any) -> NoReturn:
        raise error(f"{self.kind} {self.name!r}: {problem}", **{self.kind: self.name}, **context)


def to_bool(value: object, what: str, entry: Entry) -> bool:
    """A wire boolean: a bool, 0/1, or a word such as "true"/"false" (any case)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    entry.fail(ne.BadNetworkParameters, f"{what} {value!r} is not a boolean")


def to_int(value: object, what: str, entry: Entry, error: type[VirtHostError]) -> int:
    """A wire integer: an int or a string of decimal digits (never a bool)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdecimal() and value.strip().isascii():
        return int(value.strip())
    entry.fail(error, f"{what} {value!r} is not an integer")


def _optional_text(value: object, what: str, entry: Entry) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        entry.fail(ne.BadNetworkParameters, f"{what} {value!r} is not a string")
    return value.strip()


def _device_name(value: str, what: str, entry: Entry, error: type[VirtHostError]) -> str:
    problem = interface_name_problem(value)
    if problem:
        entry.fail(error, f"{what} {value!r} is not a device name: {problem}")
    return value


def check_network_name(name: object, bridged: bool) -> str:
    """A network name: a device name when bridged (the bridge is named like the network);
    otherwise a single path component without spaces (it names the persistence file)."""
    if not isinstance(name, str):
        raise ne.BadNetworkParameters(f"network name {name!r} is not a string")
    entry = Entry("network", name)
    if bridged:
        return _device_name(name, "the bridge name", entry, ne.BadBridge)
    if name in ("", ".", "..") or any(c == "/" or not c.isprintable() or c.isspace() for c in name):
        entry.fail(ne.BadNetworkParameters, "not a valid network name")
    return name


def check_bond_name(name: object) -> str:
    """A bond name: a device name."""
    if not isinstance(name, str):
        raise ne.BadBonding(f"bond name {name!r} is not a string")
    return _device_name(name, "the bond name", Entry("bond", name), ne.BadBonding)


# --- networks -----------------------------------------------------------------------------


def parse_network(name: str, attrs: object) -> NetworkAttrs:
    """One network's wire attributes (not a removal) in canonical form."""
    entry = Entry("network", str(name))
    if not isinstance(attrs, Mapping):
        entry.fail(ne.BadNetworkParameters, "attributes must be an object")
    custom = attrs.get("custom") or {}
    if not isinstance(custom, Mapping):
        entry.fail(ne.BadNetworkParameters, "custom must be an object")
    _refuse_ovs(attrs, custom, entry)
    ignored = sorted(str(key) for key in attrs if key not in _NETWORK_KEYS)
    if ignored:
        log.debug("network %r: ignoring attributes %s", name, ", ".join(ignored))
    bridged = to_bool(attrs.get("bridged", True), "bridged", entry)
    check_network_name(name, bridged)

    nic = _optional_text(attrs.get("nic"), "nic", entry)
    bonding = _optional_text(attrs.get("bonding"), "bonding", entry)
    if nic is not None and bonding is not None:
        entry.fail(ne.BadNetworkParameters, "give either a nic or a bonding, not both")
    if nic is not None:
        _device_name(nic, "nic", entry, ne.BadNic)
    if bonding is not None:
        _device_name(bonding, "bonding", entry, ne.BadBonding)
    vlan = _parse_vlan(attrs.get("vlan"), entry)
    if vlan is not None and nic is None and bonding is None:
        entry.fail(ne.BadVlan, "a VLAN needs a nic or a bonding")
    if nic is None and bonding is None and not bridged:
        entry.fail(ne.BadNetworkParameters, "a network without nic or bonding must be bridged")

    stp = to_bool(attrs.get("stp", attrs.get("STP", False)), "stp", entry)
    bridge_opts = parse_bridge_opts(custom.get("bridge_opts"), entry)
    if not bridged and (stp or bridge_opts):
        entry.fail(ne.BadNetworkParameters, "stp and bridge_opts need a bridged network")

    mtu = to_int(attrs.get("mtu", DEFAULT_MTU), "mtu", entry, ne.BadNetworkParameters)
    if not MIN_MTU <= mtu <= MAX_MTU:
        entry.fail(ne.BadNetworkParameters, f"mtu {mtu} is not in {MIN_MTU}..{MAX_MTU}")

    default_route = to_bool(attrs.get("defaultRoute", False), "defaultRoute", entry)
    if custom.get("default_route") is not None:  # VDSM's deprecated spelling wins, as there
        default_route = to_bool(custom["default_route"], "custom default_route", entry)
    ipaddr, prefix = _parse_ipv4(attrs, entry)
    return NetworkAttrs(
        nic=nic,
        bonding=bonding,
        vlan=vlan,
        bridged=bridged,
        stp=stp,
        mtu=mtu,
        bootproto=_parse_bootproto(attrs.get("bootproto"), entry),
        ipaddr=ipaddr,
        prefix=prefix,
        gateway=_parse_ip(attrs.get("gateway"), 4, "gateway", entry),
        default_route=default_route,
        ipv6addrs=_parse_ipv6addrs(attrs.get("ipv6addr"), entry),
        ipv6gateway=_parse_ip(attrs.get("ipv6gateway"), 6, "ipv6gateway", entry),
        dhcpv6=to_bool(attrs.get("dhcpv6", False), "dhcpv6", entry),
        ipv6autoconf=to_bool(attrs.get("ipv6autoconf", False), "ipv6autoconf", entry),
        nameservers=_parse_nameservers(attrs.get("nameservers"), entry),
        bridge_opts=bridge_opts,
    )


def _refuse_ovs(attrs: Mapping[str, Any], custom: Mapping[str, Any], entry: Entry) -> None:
    switch = attrs.get("switch", "legacy")
    ovs = custom.get("ovs") is not None and to_bool(custom["ovs"], "custom ovs", entry)
    if switch not in ("legacy", None, "") or ovs:
        entry.fail(ne.BadNetworkParameters, f"switch {switch!r}: only 'legacy' is supported")


def _parse_vlan(value: object, entry: Entry) -> int | None:
    if value is None or value == "":
        return None
    vlan = to_int(value, "vlan", entry, ne.BadVlan)
    if not MIN_VLAN <= vlan <= MAX_VLAN:
        entry.fail(ne.BadVlan, f"vlan {vlan} is not in {MIN_VLAN}..{MAX_VLAN}")
    return vlan


def _parse_bootproto(value: object, entry: Entry) -> Bootproto:
    if value in (None, "", "none", "static"):  # old engines say "static" for "none"
        return "none"
    if value == "dhcp":
        return "dhcp"
    entry.fail(ne.BadNetworkParameters, f"bootproto {value!r}: expected 'none' or 'dhcp'")


def _parse_ip(value: object, version: int, what: str, entry: Entry) -> str | None:
    text = _optional_text(value, what, entry)
    if text is None:
        return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        entry.fail(ne.BadAddress, f"{what} {text!r} is not an IP address")
    if address.version != version:
        entry.fail(ne.BadAddress, f"{what} {text!r} is not an IPv{version} address")
    return address.compressed


def _parse_ipv4(attrs: Mapping[str, Any], entry: Entry) -> tuple[str | None, int | None]:
    ipaddr = _parse_ip(attrs.get("ipaddr"), 4, "ipaddr", entry)
    prefix = None
    if attrs.get("prefix") not in (None, ""):
        prefix = to_int(attrs["prefix"], "prefix", entry, ne.BadAddress)
        if not 0 <= prefix <= 32:
            entry.fail(ne.BadAddress, f"prefix {prefix} is not in 0..32")
    netmask = _optional_text(attrs.get("netmask"), "netmask", entry)
    if netmask is not None:
        try:
            from_mask = ipaddress.IPv4Network(f"0.0.0.0/{netmask}").prefixlen
        except ValueError:
            entry.fail(ne.BadAddress, f"netmask {netmask!r} is not a netmask")
        if prefix is not None and prefix != from_mask:
            entry.fail(ne.BadNetworkParameters, "netmask and prefix disagree")
        prefix = from_mask
    if (ipaddr is None) != (prefix is None):
        entry.fail(ne.BadNetworkParameters, "ipaddr and netmask (or prefix) go together")
    return ipaddr, prefix


def _parse_ipv6addrs(value: object, entry: Entry) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list):
        entry.fail(ne.BadNetworkParameters, "ipv6addr must be a string or a list of strings")
    found: list[str] = []
    for text in texts:
        if not isinstance(text, str):
            entry.fail(ne.BadAddress, f"ipv6addr {text!r} is not a string")
        try:
            interface = ipaddress.IPv6Interface(text.strip())
        except ValueError:
            entry.fail(ne.BadAddress, f"ipv6addr {text!r} is not an IPv6 address/prefix")
        canonical = f"{interface.ip.compressed}/{interface.network.prefixlen}"
        if canonical not in found:
            found.append(canonical)
    return tuple(found)


def _parse_nameservers(value: object, entry: Entry) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        entry.fail(ne.BadNetworkParameters, "nameservers must be a list")
    found: list[str] = []
    for text in value:
        try:
            address = ipaddress.ip_address(text.strip() if isinstance(text, str) else "")
        except ValueError:
            entry.fail(ne.BadAddress, f"nameserver {text!r} is not an IP address")
        if address.compressed not in found:
            found.append(address.compressed)
    return tuple(found)


def parse_bridge_opts(value: object, entry: Entry) -> tuple[tuple[str, str], ...]:
    """``"k=v k2=v2"`` as sorted pairs; each key at most once."""
    if value is None or value == "":
        return ()
    if not isinstance(value, str):
        entry.fail(ne.BadBridge, f"bridge_opts {value!r} is not a string")
    options: dict[str, str] = {}
    for word in value.split():
        key, sep, option = word.partition("=")
        if not sep or not _OPTION_KEY.fullmatch(key) or not _OPTION_VALUE.fullmatch(option):
            entry.fail(ne.BadBridge, f"bridge option {word!r} is not key=value")
        if key in options:
            entry.fail(ne.BadBridge, f"bridge option {key!r} given twice")
        options[key] = option
    return tuple(sorted(options.items()))


# --- bonds --------------------------------------------------------------------------------


def parse_bond(name: str, attrs: object) -> BondAttrs:
    """One bond's wire attributes (not a removal) in canonical form."""
    entry = Entry("bond", check_bond_name(name))
    if not isinstance(attrs, Mapping):
        entry.fail(ne.BadBonding, "attributes must be an object")
    _refuse_ovs(attrs, {}, entry)
    nics = attrs.get("nics")
    if not isinstance(nics, list) or not nics:
        entry.fail(ne.BadBonding, "nics must be a non-empty list")
    for nic in nics:
        if not isinstance(nic, str):
            entry.fail(ne.BadBonding, f"nic {nic!r} is not a string")
        _device_name(nic, "nic", entry, ne.BadBonding)
    if len(set(nics)) != len(nics):
        entry.fail(ne.BadBonding, "a nic is listed twice")
    options = attrs.get("options") or ""
    if not isinstance(options, str):
        entry.fail(ne.BadBonding, f"options {options!r} is not a string")
    return BondAttrs(
        nics=tuple(sorted(nics)),
        options=normalize_bond_options(options, entry),
        hwaddr=_parse_mac(attrs.get("hwaddr"), entry),
    )


def normalize_bond_options(text: str, entry: Entry) -> str:
    """Bond options in normal form: ``mode`` by name, defaults added, keys sorted."""
    options: dict[str, str] = {}
    for word in text.split():
        key, sep, value = word.partition("=")
        if not sep or not _OPTION_VALUE.fullmatch(value):
            entry.fail(ne.BadBonding, f"option {word!r} is not key=value")
        if key not in BOND_OPTION_NAMES:
            entry.fail(ne.BadBonding, f"unknown bonding option {key!r}")
        if key in options:
            entry.fail(ne.BadBonding, f"option {key!r} given twice")
        options[key] = value
    options["mode"] = _bond_mode(options.get("mode", DEFAULT_BOND_MODE), entry)
    if "miimon" not in options and "arp_interval" not in options:
        options["miimon"] = DEFAULT_MIIMON
    return " ".join(f"{key}={value}" for key, value in sorted(options.items()))


def _bond_mode(value: str, entry: Entry) -> str:
    if value.isdecimal() and value.isascii() and int(value) < len(BOND_MODES):
        return BOND_MODES[int(value)]
    if value in BOND_MODES:
        return value
    entry.fail(ne.BadBonding, f"bonding mode {value!r}: expected 0..6 or {', '.join(BOND_MODES)}")


def _parse_mac(value: object, entry: Entry) -> str | None:
    text = _optional_text(value, "hwaddr", entry)
    if text is None:
        return None
    mac = text.lower().replace("-", ":")
    if not _MAC.fullmatch(mac):
        entry.fail(ne.BadBonding, f"hwaddr {text!r} is not a MAC address")
    return mac


# --- back to the wire ---------------------------------------------------------------------


def network_to_wire(attrs: NetworkAttrs) -> dict[str, Any]:
    """The attributes as the engine would send them; :func:`parse_network` gives ``attrs``."""
    wire: dict[str, Any] = {}
    if attrs.nic is not None:
        wire["nic"] = attrs.nic
    if attrs.bonding is not None:
        wire["bonding"] = attrs.bonding
    if attrs.vlan is not None:
        wire["vlan"] = attrs.vlan
    wire.update(bridged=attrs.bridged, stp=attrs.stp, mtu=attrs.mtu, bootproto=attrs.bootproto)
    if attrs.ipaddr is not None and attrs.prefix is not None:
        wire["ipaddr"] = attrs.ipaddr
        wire["netmask"] = str(ipaddress.IPv4Network(f"0.0.0.0/{attrs.prefix}").netmask)
    if attrs.gateway is not None:
        wire["gateway"] = attrs.gateway
    wire["defaultRoute"] = attrs.default_route
    if len(attrs.ipv6addrs) == 1:
        wire["ipv6addr"] = attrs.ipv6addrs[0]
    elif attrs.ipv6addrs:
        wire["ipv6addr"] = list(attrs.ipv6addrs)
    if attrs.ipv6gateway is not None:
        wire["ipv6gateway"] = attrs.ipv6gateway
    wire.update(dhcpv6=attrs.dhcpv6, ipv6autoconf=attrs.ipv6autoconf)
    wire["nameservers"] = list(attrs.nameservers)
    if attrs.bridge_opts:
        opts = " ".join(f"{key}={value}" for key, value in attrs.bridge_opts)
        wire["custom"] = {"bridge_opts": opts}
    wire["switch"] = attrs.switch
    return wire


def bond_to_wire(attrs: BondAttrs) -> dict[str, Any]:
    wire: dict[str, Any] = {"nics": list(attrs.nics), "options": attrs.options}
    if attrs.hwaddr is not None:
        wire["hwaddr"] = attrs.hwaddr
    wire["switch"] = attrs.switch
    return wire
