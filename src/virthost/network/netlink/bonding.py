"""Bond options from VDSM's ``"mode=802.3ad miimon=100"`` words to netlink attributes.

The engine writes options the way the bonding driver's sysfs files take them (names such as
``mode=802.3ad``, ``lacp_rate=fast``, ``primary=eth0``); rtnetlink wants numbers, interface
indexes and differently named attributes (``lacp_rate`` is ``IFLA_BOND_AD_LACP_RATE``).
Options pyroute2 cannot carry (``active_slave``, which needs the bond to have slaves already,
``ad_actor_system``, ``arp_missed_max``, ``peer_notif_delay``) are refused before the bond is
touched, naming the option.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable

from virthost.network import errors as ne

_NAMED_VALUES: dict[str, dict[str, int]] = {
    "mode": {
        "balance-rr": 0,
        "active-backup": 1,
        "balance-xor": 2,
        "broadcast": 3,
        "802.3ad": 4,
        "balance-tlb": 5,
        "balance-alb": 6,
    },
    "lacp_rate": {"slow": 0, "fast": 1},
    "xmit_hash_policy": {
        "layer2": 0,
        "layer3+4": 1,
        "layer2+3": 2,
        "encap2+3": 3,
        "encap3+4": 4,
    },
    "ad_select": {"stable": 0, "bandwidth": 1, "count": 2},
    "fail_over_mac": {"none": 0, "active": 1, "follow": 2},
    "arp_validate": {"none": 0, "active": 1, "backup": 2, "all": 3, "filter": 4},
    "arp_all_targets": {"any": 0, "all": 1},
    "primary_reselect": {"always": 0, "better": 1, "failure": 2},
}

# sysfs option name -> pyroute2 keyword, where they differ
_NETLINK_NAMES = {
    "lacp_rate": "bond_ad_lacp_rate",
    "ad_select": "bond_ad_select",
    "num_grat_arp": "bond_num_peer_notif",
    "num_unsol_na": "bond_num_peer_notif",
}

_NUMERIC = frozenset(
    {
        "miimon",
        "updelay",
        "downdelay",
        "arp_interval",
        "min_links",
        "num_grat_arp",
        "num_unsol_na",
        "resend_igmp",
        "lp_interval",
        "packets_per_slave",
        "all_slaves_active",
        "use_carrier",
        "tlb_dynamic_lb",
        "ad_actor_sys_prio",
        "ad_user_port_key",
    }
)


def kernel_bond_options(
    bond: str, options: Iterable[tuple[str, str]], ifindex: Callable[[str], int]
) -> dict[str, object]:
    """pyroute2 keywords for ``link("add", kind="bond", ...)``; ``ifindex`` resolves names."""
    result: dict[str, object] = {}
    for key, value in options:
        keyword = _NETLINK_NAMES.get(key, f"bond_{key}")
        named = _NAMED_VALUES.get(key, {})
        if value in named:
            result[keyword] = named[value]
        elif (key in named or key in _NUMERIC) and value.isdecimal():
            result[keyword] = int(value)
        elif key == "primary":
            result[keyword] = ifindex(value)
        elif key == "arp_ip_target":
            result[keyword] = [_ipv4(bond, target) for target in value.split(",") if target]
        else:
            raise ne.BadBonding(
                f"bond {bond!r}: option {key}={value!r} cannot be set through netlink", bond=bond
            )
    return result


def _ipv4(bond: str, text: str) -> str:
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        raise ne.BadBonding(f"bond {bond!r}: arp_ip_target {text!r} is not IPv4") from None
