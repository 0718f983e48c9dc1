"""Wire attributes to canonical networks and bonds: defaults, normal forms, coded errors."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from virthost.network import errors as ne
from virthost.network.canonical import (
    Entry,
    bond_to_wire,
    network_to_wire,
    normalize_bond_options,
    parse_bond,
    parse_network,
)
from virthost.network.model import BondAttrs, NetworkAttrs

from .netstrategies import bond_attrs, network_attrs


@given(network_attrs())
def test_canonical_network_survives_another_canonicalization(attrs: NetworkAttrs) -> None:
    wire = network_to_wire(attrs)
    assert parse_network("net", wire) == attrs
    assert network_to_wire(parse_network("net", wire)) == wire


@given(bond_attrs())
def test_canonical_bond_survives_another_canonicalization(attrs: BondAttrs) -> None:
    wire = bond_to_wire(attrs)
    assert parse_bond("bond0", wire) == attrs
    assert bond_to_wire(parse_bond("bond0", wire)) == wire


def test_engine_style_strings_become_typed_values() -> None:
    attrs = parse_network(
        "ovirtmgmt",
        {
            "nic": "eth0",
            "vlan": "100",
            "bridged": "true",
            "STP": "no",
            "mtu": "9000",
            "bootproto": "none",
            "ipaddr": "192.0.2.10",
            "netmask": "255.255.255.0",
            "gateway": "192.0.2.1",
            "defaultRoute": True,
            "ipv6addr": "2001:DB8:0:0::10/64",
            "ipv6gateway": "2001:db8:0::1",
            "dhcpv6": "false",
            "ipv6autoconf": False,
            "nameservers": ["192.0.2.53", "2001:db8::0:53"],
            "custom": {"bridge_opts": "multicast_snooping=0 forward_delay=0"},
            "hostQos": {"out": {}},
        },
    )
    assert attrs == NetworkAttrs(
        nic="eth0",
        vlan=100,
        bridged=True,
        stp=False,
        mtu=9000,
        ipaddr="192.0.2.10",
        prefix=24,
        gateway="192.0.2.1",
        default_route=True,
        ipv6addrs=("2001:db8::10/64",),
        ipv6gateway="2001:db8::1",
        nameservers=("192.0.2.53", "2001:db8::53"),
        bridge_opts=(("forward_delay", "0"), ("multicast_snooping", "0")),
    )


def test_an_empty_network_is_a_nicless_bridge_with_defaults() -> None:
    assert parse_network("blue", {}) == NetworkAttrs()


def test_prefix_and_matching_netmask_are_accepted_together() -> None:
    attrs = parse_network(
        "n", {"nic": "e", "ipaddr": "10.0.0.1", "prefix": 8, "netmask": "255.0.0.0"}
    )
    assert attrs.prefix == 8


def test_ipv6_addresses_accept_a_list_and_drop_duplicates() -> None:
    attrs = parse_network("n", {"nic": "e", "ipv6addr": ["fd00::1/64", "fd00:0::1/64", "fd01::1"]})
    assert attrs.ipv6addrs == ("fd00::1/64", "fd01::1/128")


def test_deprecated_custom_default_route_wins() -> None:
    attrs = parse_network(
        "n", {"nic": "e", "defaultRoute": False, "custom": {"default_route": "1"}}
    )
    assert attrs.default_route is True


def test_old_engines_static_bootproto_means_none() -> None:
    assert parse_network("n", {"nic": "e", "bootproto": "static"}).bootproto == "none"


def _raises(error: type[ne.NetworkError], name: str, attrs: Any) -> ne.NetworkError:
    with pytest.raises(error) as info:
        parse_network(name, attrs)
    assert repr(name) in str(info.value)
    assert info.value.context["network"] == name
    return info.value


@pytest.mark.parametrize(
    ("attrs", "error"),
    [
        ("eth0", ne.BadNetworkParameters),
        ({"nic": "eth0", "bonding": "bond0"}, ne.BadNetworkParameters),
        ({"nic": "eth0", "vlan": 0}, ne.BadVlan),
        ({"nic": "eth0", "vlan": "4095"}, ne.BadVlan),
        ({"nic": "eth0", "vlan": "ten"}, ne.BadVlan),
        ({"vlan": 10}, ne.BadVlan),
        ({"bridged": False}, ne.BadNetworkParameters),
        ({"nic": "eth0", "bridged": "maybe"}, ne.BadNetworkParameters),
        ({"nic": "eth0", "bridged": False, "stp": True}, ne.BadNetworkParameters),
        ({"nic": "e", "bridged": False, "custom": {"bridge_opts": "a=1"}}, ne.BadNetworkParameters),
        ({"nic": "eth0", "mtu": 67}, ne.BadNetworkParameters),
        ({"nic": "eth0", "mtu": 65536}, ne.BadNetworkParameters),
        ({"nic": "eth0", "mtu": True}, ne.BadNetworkParameters),
        ({"nic": "eth0", "mtu": "1.5"}, ne.BadNetworkParameters),
        ({"nic": "eth0", "bootproto": "bootp"}, ne.BadNetworkParameters),
        ({"nic": "eth0", "ipaddr": "10.0.0.300", "prefix": 24}, ne.BadAddress),
        ({"nic": "eth0", "ipaddr": "fd00::1", "prefix": 24}, ne.BadAddress),
        ({"nic": "eth0", "ipaddr": "10.0.0.1", "netmask": "255.0.255.0"}, ne.BadAddress),
        ({"nic": "eth0", "ipaddr": "10.0.0.1", "prefix": 33}, ne.BadAddress),
        (
            {"nic": "e", "ipaddr": "10.0.0.1", "prefix": 8, "netmask": "255.255.0.0"},
            ne.BadNetworkParameters,
        ),
        ({"nic": "eth0", "ipaddr": "10.0.0.1"}, ne.BadNetworkParameters),
        ({"nic": "eth0", "netmask": "255.255.255.0"}, ne.BadNetworkParameters),
        ({"nic": "eth0", "gateway": "gw"}, ne.BadAddress),
        ({"nic": "eth0", "ipv6addr": "2001:db8::1/129"}, ne.BadAddress),
        ({"nic": "eth0", "ipv6addr": 6}, ne.BadNetworkParameters),
        ({"nic": "eth0", "ipv6gateway": "10.0.0.1"}, ne.BadAddress),
        ({"nic": "eth0", "nameservers": ["8.8.8"]}, ne.BadAddress),
        ({"nic": "eth0", "nameservers": "8.8.8.8"}, ne.BadNetworkParameters),
        ({"nic": "eth0", "custom": {"bridge_opts": "novalue"}}, ne.BadBridge),
        ({"nic": "eth0", "custom": {"bridge_opts": "a=1 a=2"}}, ne.BadBridge),
        ({"nic": "eth0", "custom": {"bridge_opts": "a=$(reboot)"}}, ne.BadBridge),
        ({"nic": "eth0", "custom": "x"}, ne.BadNetworkParameters),
        ({"nic": "eth0", "switch": "ovs"}, ne.BadNetworkParameters),
        ({"nic": "eth0", "custom": {"ovs": "true"}}, ne.BadNetworkParameters),
        ({"nic": "eth0/x"}, ne.BadNic),
        ({"nic": 7}, ne.BadNetworkParameters),
        ({"bonding": "bond 0"}, ne.BadBonding),
    ],
)
def test_bad_attributes_get_the_right_code_naming_the_network(
    attrs: Any, error: type[ne.NetworkError]
) -> None:
    _raises(error, "net1", attrs)


@pytest.mark.parametrize("name", ["", "..", "a-name-far-too-long", "a/b", "br 0", "br:0"])
def test_bridged_network_names_must_be_device_names(name: str) -> None:
    _raises(ne.BadBridge, name, {"nic": "eth0"})


def test_bridgeless_networks_may_have_longer_names_but_no_slash() -> None:
    long_name = "a-long-bridgeless-network"
    assert parse_network(long_name, {"nic": "eth0", "bridged": False}).bridged is False
    _raises(ne.BadNetworkParameters, "a/b", {"nic": "eth0", "bridged": False})


def test_a_non_string_network_name_is_refused() -> None:
    with pytest.raises(ne.BadNetworkParameters):
        parse_network(5, {})  # type: ignore[arg-type]


junk = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children)
    ),
    max_leaves=8,
)
keys = st.sampled_from(
    ["nic", "bonding", "vlan", "bridged", "stp", "mtu", "bootproto", "ipaddr", "netmask",
     "prefix", "gateway", "defaultRoute", "ipv6addr", "ipv6gateway", "dhcpv6", "nameservers",
     "custom", "switch"]
)  # fmt: skip


@given(st.dictionaries(keys, junk))
def test_any_junk_gives_a_network_or_a_network_error(attrs: dict[str, Any]) -> None:
    with contextlib.suppress(ne.NetworkError):
        parse_network("net", attrs)


@given(st.dictionaries(st.sampled_from(["nics", "options", "hwaddr", "switch"]), junk))
def test_any_junk_gives_a_bond_or_a_bonding_error(attrs: dict[str, Any]) -> None:
    with contextlib.suppress(ne.NetworkError):
        parse_bond("bond0", attrs)


# --- bonds --------------------------------------------------------------------------------


def test_bond_is_canonicalized() -> None:
    bond = parse_bond(
        "bond0",
        {"nics": ["eth2", "eth1"], "options": "mode=4 miimon=100", "hwaddr": "52-54-00-AB-CD-EF"},
    )
    assert bond == BondAttrs(
        nics=("eth1", "eth2"), options="miimon=100 mode=802.3ad", hwaddr="52:54:00:ab:cd:ef"
    )


@pytest.mark.parametrize(
    ("given_options", "normal_form"),
    [
        ("", "miimon=100 mode=balance-rr"),
        ("mode=1", "miimon=100 mode=active-backup"),
        ("mode=6 miimon=0", "miimon=0 mode=balance-alb"),
        ("mode=active-backup arp_interval=1000 arp_ip_target=10.0.0.1,10.0.0.2",
         "arp_interval=1000 arp_ip_target=10.0.0.1,10.0.0.2 mode=active-backup"),
        ("  xmit_hash_policy=layer3+4   mode=2 ",
         "miimon=100 mode=balance-xor xmit_hash_policy=layer3+4"),
    ],
)  # fmt: skip
def test_bond_options_normal_form(given_options: str, normal_form: str) -> None:
    assert normalize_bond_options(given_options, Entry("bond", "bond0")) == normal_form


@pytest.mark.parametrize(
    "options",
    ["mode=7", "mode=fast", "miimon", "miimon=1 miimon=2", "colour=blue", "primary=a;b", 5],
)
def test_bad_bond_options_are_refused(options: Any) -> None:
    with pytest.raises(ne.BadBonding) as info:
        parse_bond("bond0", {"nics": ["eth0"], "options": options})
    assert info.value.context["bond"] == "bond0"


@pytest.mark.parametrize(
    ("name", "attrs"),
    [
        ("bond0", {}),
        ("bond0", {"nics": []}),
        ("bond0", {"nics": "eth0"}),
        ("bond0", {"nics": ["eth0", "eth0"]}),
        ("bond0", {"nics": ["eth/0"]}),
        ("bond0", {"nics": [3]}),
        ("bond0", {"nics": ["eth0"], "hwaddr": "52:54:00"}),
        ("bond0", "eth0 eth1"),
        ("bond/0", {"nics": ["eth0"]}),
        ("bond-with-a-long-name", {"nics": ["eth0"]}),
    ],
)
def test_bad_bonds_are_refused(name: str, attrs: Any) -> None:
    with pytest.raises(ne.BadBonding):
        parse_bond(name, attrs)


def test_ovs_bonds_are_refused() -> None:
    with pytest.raises(ne.BadNetworkParameters):
        parse_bond("bond0", {"nics": ["eth0"], "switch": "ovs"})
