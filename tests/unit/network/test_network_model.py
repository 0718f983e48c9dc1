"""The canonical model: persistence round trips, invariants and the devices a network makes."""

from __future__ import annotations

import json

import pytest
from hypothesis import given

from virthost.network import errors as ne
from virthost.network.model import (
    BondAttrs,
    NetConfig,
    NetworkAttrs,
    interface_name_problem,
    vlan_device_name,
)

from .netstrategies import bond_attrs, net_configs, network_attrs


@given(network_attrs())
def test_network_dict_round_trip_through_json(attrs: NetworkAttrs) -> None:
    data = json.loads(json.dumps(attrs.to_dict()))
    assert NetworkAttrs.from_dict(data) == attrs


@given(bond_attrs())
def test_bond_dict_round_trip_through_json(attrs: BondAttrs) -> None:
    assert BondAttrs.from_dict(json.loads(json.dumps(attrs.to_dict()))) == attrs


@given(net_configs)
def test_config_dict_round_trip_through_json(config: NetConfig) -> None:
    assert NetConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_network_dict_has_every_attribute_with_defaults() -> None:
    assert NetworkAttrs(nic="eth0").to_dict() == {
        "nic": "eth0",
        "bonding": None,
        "vlan": None,
        "bridged": True,
        "stp": False,
        "mtu": 1500,
        "bootproto": "none",
        "ipaddr": None,
        "prefix": None,
        "gateway": None,
        "default_route": False,
        "ipv6addrs": [],
        "ipv6gateway": None,
        "dhcpv6": False,
        "ipv6autoconf": False,
        "nameservers": [],
        "bridge_opts": {},
        "switch": "legacy",
    }


def test_bridge_opts_are_persisted_as_a_mapping_and_read_back_sorted() -> None:
    data = NetworkAttrs(nic="eth0").to_dict()
    data["bridge_opts"] = {"multicast_snooping": "0", "forward_delay": "0"}
    attrs = NetworkAttrs.from_dict(data)
    assert attrs.bridge_opts == (("forward_delay", "0"), ("multicast_snooping", "0"))


@pytest.mark.parametrize(
    "change",
    [
        {"mtu": True},  # a bool is not an MTU
        {"mtu": "1500"},
        {"vlan": "10"},
        {"ipv6addrs": "::1/128"},
        {"nameservers": [1]},
        {"bridge_opts": {"a": 1}},
        {"unknown": 1},
    ],
)
def test_network_from_dict_refuses_other_shapes(change: dict[str, object]) -> None:
    data = {**NetworkAttrs(nic="eth0").to_dict(), **change}
    with pytest.raises(ValueError):
        NetworkAttrs.from_dict(data)


def test_network_from_dict_refuses_missing_keys() -> None:
    data = NetworkAttrs(nic="eth0").to_dict()
    del data["mtu"]
    with pytest.raises(ValueError, match="mtu"):
        NetworkAttrs.from_dict(data)


def test_config_from_dict_refuses_a_non_mapping() -> None:
    with pytest.raises(ValueError):
        NetConfig.from_dict([])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"nic": "eth0", "bonding": "bond0"},
        {"nic": "eth0", "vlan": 4095},
        {"mtu": 67},
        {"ipaddr": "10.0.0.1"},
        {"bootproto": "static"},
        {"switch": "ovs"},
    ],
)
def test_network_invariants_hold_for_any_constructor(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        NetworkAttrs(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("nics", [(), ("eth1", "eth0"), ("eth0", "eth0")])
def test_bond_nics_are_sorted_distinct_and_present(nics: tuple[str, ...]) -> None:
    with pytest.raises(ValueError):
        BondAttrs(nics=nics, options="miimon=100 mode=balance-rr")


def test_link_device_of_each_topology() -> None:
    assert NetworkAttrs(nic="eth0").link_device == "eth0"
    assert NetworkAttrs(bonding="bond0", vlan=10).link_device == "bond0.10"
    assert NetworkAttrs(nic="eth0", vlan=7).base_device == "eth0"
    assert NetworkAttrs().link_device is None
    assert vlan_device_name("eth1", 100) == "eth1.100"


@pytest.mark.parametrize("name", ["", ".", "..", "a" * 16, "a/b", "a b", "a:b", "tab\t", "é" * 8])
def test_interface_name_problems(name: str) -> None:
    assert interface_name_problem(name) is not None


@pytest.mark.parametrize("name", ["eth0", "a" * 15, "ovirtmgmt", "br-int_1", "x.10"])
def test_interface_names_the_kernel_takes(name: str) -> None:
    assert interface_name_problem(name) is None


def test_errors_carry_vdsm_codes() -> None:
    codes = {
        ne.LostConnection: 10,
        ne.BadNetworkParameters: 21,
        ne.BadAddress: 22,
        ne.BadNic: 23,
        ne.NicInUse: 24,
        ne.BadBonding: 25,
        ne.BadVlan: 26,
        ne.BadBridge: 27,
        ne.InterfaceUpFailed: 29,
        ne.BondInUse: 31,
        ne.OvsConnectionError: 32,
    }
    for error, code in codes.items():
        assert issubclass(error, ne.NetworkError)
        assert error("x").to_wire()["code"] == code
