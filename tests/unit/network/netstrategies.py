"""Hypothesis strategies for canonical network objects (any valid value the parser can give)."""

from __future__ import annotations

import ipaddress

from hypothesis import strategies as st

from virthost.network.canonical import BOND_MODES, Entry, normalize_bond_options
from virthost.network.model import BondAttrs, NetConfig, NetworkAttrs

device_names = st.from_regex(r"[a-z][a-z0-9_-]{0,9}", fullmatch=True)


@st.composite
def ipv6_interfaces(draw: st.DrawFn) -> str:
    address = draw(st.ip_addresses(v=6))
    prefix = draw(st.integers(0, 128))
    interface = ipaddress.IPv6Interface(f"{address}/{prefix}")
    return f"{interface.ip.compressed}/{interface.network.prefixlen}"


@st.composite
def network_attrs(draw: st.DrawFn) -> NetworkAttrs:
    link = draw(st.sampled_from(["nic", "bonding", None]))
    device = draw(device_names)
    bridged = True if link is None else draw(st.booleans())
    with_ipv4 = draw(st.booleans())
    bridge_opts = draw(
        st.dictionaries(
            st.from_regex(r"[a-z_]{1,10}", fullmatch=True),
            st.from_regex(r"[a-z0-9]{1,5}", fullmatch=True),
            max_size=3,
        )
    )
    return NetworkAttrs(
        nic=device if link == "nic" else None,
        bonding=device if link == "bonding" else None,
        vlan=draw(st.none() | st.integers(1, 4094)) if link else None,
        bridged=bridged,
        stp=draw(st.booleans()) if bridged else False,
        mtu=draw(st.integers(68, 65535)),
        bootproto=draw(st.sampled_from(["none", "dhcp"])),
        ipaddr=str(draw(st.ip_addresses(v=4))) if with_ipv4 else None,
        prefix=draw(st.integers(0, 32)) if with_ipv4 else None,
        gateway=draw(st.none() | st.ip_addresses(v=4).map(str)),
        default_route=draw(st.booleans()),
        ipv6addrs=tuple(draw(st.lists(ipv6_interfaces(), max_size=3, unique=True))),
        ipv6gateway=draw(st.none() | st.ip_addresses(v=6).map(lambda a: a.compressed)),
        dhcpv6=draw(st.booleans()),
        ipv6autoconf=draw(st.booleans()),
        nameservers=tuple(
            draw(st.lists(st.ip_addresses().map(lambda a: a.compressed), max_size=3, unique=True))
        ),
        bridge_opts=tuple(sorted(bridge_opts.items())) if bridged else (),
    )


@st.composite
def bond_attrs(draw: st.DrawFn) -> BondAttrs:
    words = [f"mode={draw(st.sampled_from([*BOND_MODES, *map(str, range(7))]))}"]
    if draw(st.booleans()):
        words.append(f"miimon={draw(st.integers(0, 1000))}")
    if draw(st.booleans()):
        words.append(f"xmit_hash_policy={draw(st.sampled_from(['layer2', 'layer3+4']))}")
    mac = draw(st.none() | st.binary(min_size=6, max_size=6))
    return BondAttrs(
        nics=tuple(sorted(draw(st.lists(device_names, min_size=1, max_size=4, unique=True)))),
        options=normalize_bond_options(" ".join(draw(st.permutations(words))), Entry("bond", "b")),
        hwaddr=None if mac is None else ":".join(f"{byte:02x}" for byte in mac),
    )


net_configs = st.builds(
    NetConfig,
    networks=st.dictionaries(device_names, network_attrs(), max_size=4),
    bonds=st.dictionaries(device_names, bond_attrs(), max_size=3),
)
