"""Validating a desired configuration against itself and the host, and the nic MTUs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given

from virthost.network import errors as ne
from virthost.network.model import BondAttrs, NetConfig, NetworkAttrs, SetupRequest, merge
from virthost.network.validation import (
    HostNics,
    check_addresses,
    kernel_supports_bonding,
    kernel_supports_vlan,
    nic_mtus,
    validate,
)

from .netstrategies import net_configs

HOST = HostNics(nics=frozenset({"eth0", "eth1", "eth2", "eth3"}))
BOND_OPTIONS = "miimon=100 mode=802.3ad"


def setup(
    networks: dict[str, Any],
    bondings: dict[str, Any] | None = None,
    running: NetConfig | None = None,
    host: HostNics = HOST,
) -> NetConfig:
    """Parse, merge and validate like Host.setupNetworks does; the desired configuration."""
    request = SetupRequest.from_wire(networks, bondings or {}, {})
    desired = merge(running or NetConfig(), request)
    validate(desired, request, host)
    return desired


def refused(error: type[ne.NetworkError], *args: Any, **kwargs: Any) -> ne.NetworkError:
    with pytest.raises(error) as info:
        setup(*args, **kwargs)
    return info.value


def test_a_good_configuration_passes() -> None:
    desired = setup(
        {
            "mgmt": {"nic": "eth0", "ipaddr": "192.0.2.10", "prefix": 24, "gateway": "192.0.2.1",
                     "defaultRoute": True},
            "vm10": {"bonding": "bond0", "vlan": 10, "mtu": 9000},
            "vm11": {"bonding": "bond0", "vlan": 11, "bridged": False},
            "data": {"bonding": "bond0", "ipv6addr": "2001:db8::2/64", "ipv6gateway": "fe80::1"},
            "isolated": {},
        },
        {"bond0": {"nics": ["eth1", "eth2"], "options": "mode=4 miimon=100"}},
    )  # fmt: skip
    assert set(desired.networks) == {"mgmt", "vm10", "vm11", "data", "isolated"}


def test_missing_nic_is_23_naming_network_and_nic() -> None:
    error = refused(ne.BadNic, {"red": {"nic": "eth9"}})
    assert error.context == {"network": "red", "nic": "eth9"}
    assert "eth9" in str(error)


def test_a_nic_vanished_under_an_untouched_network_does_not_block_a_change() -> None:
    running = NetConfig(networks={"old": NetworkAttrs(nic="gone0")})
    assert "new" in setup({"new": {"nic": "eth1"}}, running=running).networks


def test_two_networks_without_vlan_on_one_nic_is_24() -> None:
    error = refused(ne.NicInUse, {"a": {"nic": "eth0"}, "b": {"nic": "eth0", "bridged": False}})
    assert error.context["nic"] == "eth0"


def test_one_native_and_several_vlans_may_share_a_nic() -> None:
    setup({"a": {"nic": "eth0"}, "b": {"nic": "eth0", "vlan": 2}, "c": {"nic": "eth0", "vlan": 3}})


def test_same_vlan_twice_on_one_nic_is_24() -> None:
    running = NetConfig(networks={"a": NetworkAttrs(nic="eth0", vlan=5)})
    error = refused(ne.NicInUse, {"b": {"nic": "eth0", "vlan": 5}}, running=running)
    assert "'a'" in str(error)


def test_a_bond_slave_used_by_a_network_is_24() -> None:
    refused(
        ne.NicInUse,
        {"a": {"nic": "eth1"}},
        {"bond0": {"nics": ["eth1", "eth2"]}},
    )


def test_bond_slaves_must_exist() -> None:
    error = refused(ne.BadBonding, {}, {"bond0": {"nics": ["eth1", "eth7"]}})
    assert error.context == {"bond": "bond0", "nic": "eth7"}


def test_a_nic_cannot_be_in_two_bonds() -> None:
    refused(ne.BadBonding, {}, {"bond0": {"nics": ["eth1", "eth2"]}, "bond1": {"nics": ["eth2"]}})


def test_a_bond_cannot_be_a_slave() -> None:
    running = NetConfig(bonds={"bond0": BondAttrs(nics=("eth1",), options=BOND_OPTIONS)})
    refused(ne.BadBonding, {}, {"bond1": {"nics": ["bond0"]}}, running=running)


def test_a_bond_cannot_be_named_like_a_nic() -> None:
    refused(ne.BadBonding, {}, {"eth0": {"nics": ["eth1"]}})


def test_a_network_on_an_unknown_bond_is_25() -> None:
    error = refused(ne.BadBonding, {"a": {"bonding": "bond0"}})
    assert error.context == {"network": "a", "bond": "bond0"}


def test_removing_a_bond_a_network_still_uses_is_31() -> None:
    running = NetConfig(
        networks={"a": NetworkAttrs(bonding="bond0")},
        bonds={"bond0": BondAttrs(nics=("eth1",), options=BOND_OPTIONS)},
    )
    error = refused(ne.BondInUse, {}, {"bond0": {"remove": True}}, running=running)
    assert error.context == {"bond": "bond0", "network": "a"}
    setup({"a": {"remove": True}}, {"bond0": {"remove": True}}, running=running)


def test_more_than_one_default_route_is_21() -> None:
    refused(
        ne.BadNetworkParameters,
        {"a": {"nic": "eth0", "defaultRoute": True}, "b": {"nic": "eth1", "defaultRoute": True}},
    )


def test_the_same_address_on_two_networks_is_22() -> None:
    refused(
        ne.BadAddress,
        {"a": {"nic": "eth0", "ipaddr": "10.0.0.1", "prefix": 24},
         "b": {"nic": "eth1", "ipaddr": "10.0.0.1", "prefix": 16}},
    )  # fmt: skip
    refused(
        ne.BadAddress,
        {"a": {"nic": "eth0", "ipv6addr": "fd00::1/64"},
         "b": {"nic": "eth1", "ipv6addr": "fd00::1/64"}},
    )  # fmt: skip


def test_kernel_without_8021q_refuses_vlans_saying_so() -> None:
    host = HostNics(nics=HOST.nics, vlan_supported=False)
    error = refused(ne.BadVlan, {"a": {"nic": "eth0", "vlan": 10}}, host=host)
    assert "802.1q" in str(error)
    setup({"a": {"nic": "eth0"}}, host=host)


def test_kernel_without_bonding_refuses_bonds_saying_so() -> None:
    host = HostNics(nics=HOST.nics, bonding_supported=False)
    error = refused(ne.BadBonding, {}, {"bond0": {"nics": ["eth1"]}}, host=host)
    assert "bonding" in str(error)


def test_a_vlan_device_name_must_fit_the_kernel_limit() -> None:
    host = HostNics(nics=frozenset({"enp0s20f0u1u2"}))
    refused(ne.BadVlan, {"a": {"nic": "enp0s20f0u1u2", "vlan": 100}}, host=host)


@pytest.mark.parametrize(
    ("networks", "host"),
    [
        ({"virbr0": {"nic": "eth0"}}, HostNics(HOST.nics, foreign_bridges=frozenset({"virbr0"}))),
        ({"eth1": {"nic": "eth0"}}, HOST),
        ({"eth0.5": {"nic": "eth1"}, "v": {"nic": "eth0", "vlan": 5}}, HOST),
    ],
)
def test_bridge_names_must_be_free(networks: dict[str, Any], host: HostNics) -> None:
    refused(ne.BadBridge, networks, host=host)


def test_a_bridge_cannot_be_named_like_a_bond() -> None:
    refused(ne.BadBridge, {"bond0": {}}, {"bond0": {"nics": ["eth1"]}})


def test_ipv6_needs_an_mtu_of_1280() -> None:
    refused(ne.BadNetworkParameters, {"a": {"nic": "eth0", "mtu": 1200, "ipv6autoconf": True}})
    setup({"a": {"nic": "eth0", "mtu": 1200}})


@pytest.mark.parametrize(
    ("attrs", "error"),
    [
        ({"bootproto": "dhcp", "ipaddr": "10.0.0.2", "prefix": 24}, ne.BadNetworkParameters),
        ({"dhcpv6": True, "ipv6addr": "fd00::2/64"}, ne.BadNetworkParameters),
        ({"gateway": "10.0.0.1"}, ne.BadNetworkParameters),
        ({"ipaddr": "10.0.0.2", "prefix": 24, "gateway": "10.0.1.1"}, ne.BadAddress),
        ({"ipaddr": "10.0.0.2", "prefix": 24, "gateway": "10.0.0.2"}, ne.BadAddress),
        ({"ipaddr": "10.0.0.2", "prefix": 24, "gateway": "10.0.0.255"}, ne.BadAddress),
        ({"ipaddr": "10.0.0.0", "prefix": 24}, ne.BadAddress),
        ({"ipaddr": "10.0.0.255", "prefix": 24}, ne.BadAddress),
        ({"ipaddr": "127.0.0.2", "prefix": 8}, ne.BadAddress),
        ({"ipaddr": "224.0.0.1", "prefix": 4}, ne.BadAddress),
        ({"ipaddr": "0.0.0.0", "prefix": 0}, ne.BadAddress),
        ({"ipv6addr": "::1/128"}, ne.BadAddress),
        ({"ipv6addr": "ff02::1/16"}, ne.BadAddress),
        ({"ipv6gateway": "fd00::1"}, ne.BadNetworkParameters),
        ({"ipv6addr": "fd00::2/64", "ipv6gateway": "fd01::1"}, ne.BadAddress),
        ({"ipv6addr": "fd00::2/64", "ipv6gateway": "fd00::2"}, ne.BadAddress),
    ],
)
def test_bad_ip_settings(attrs: dict[str, Any], error: type[ne.NetworkError]) -> None:
    exc = refused(error, {"net": {"nic": "eth0", **attrs}})
    assert exc.context["network"] == "net"


@pytest.mark.parametrize(
    "attrs",
    [
        {"ipaddr": "10.0.0.1", "prefix": 31, "gateway": "10.0.0.0"},  # point-to-point
        {"ipaddr": "10.0.0.1", "prefix": 32},
        {"bootproto": "dhcp"},
        {"ipv6autoconf": True, "ipv6addr": "fd00::2/64"},
        {"ipv6autoconf": True, "ipv6gateway": "fd09::1"},
        {"ipv6addr": "fd00::2/64", "ipv6gateway": "fd00::1"},
    ],
)
def test_good_ip_settings(attrs: dict[str, Any]) -> None:
    setup({"net": {"nic": "eth0", **attrs}})


def test_check_addresses_is_usable_on_its_own() -> None:
    with pytest.raises(ne.BadAddress):
        check_addresses("n", NetworkAttrs(nic="e", ipaddr="10.0.0.1", prefix=8, gateway="11.0.0.1"))


# --- MTUs ---------------------------------------------------------------------------------


def test_nic_mtu_is_the_largest_of_its_networks() -> None:
    desired = NetConfig(
        networks={
            "native": NetworkAttrs(nic="eth0", mtu=1500),
            "jumbo": NetworkAttrs(nic="eth0", vlan=5, mtu=9000),
            "small": NetworkAttrs(bonding="bond0", mtu=1400),
            "nicless": NetworkAttrs(mtu=9000),
        },
        bonds={
            "bond0": BondAttrs(nics=("eth1", "eth2"), options=BOND_OPTIONS),
            "bond1": BondAttrs(nics=("eth3",), options=BOND_OPTIONS),
        },
    )
    assert nic_mtus(desired) == {
        "eth0": 9000,
        "bond0": 1400,
        "eth1": 1400,
        "eth2": 1400,
        "bond1": 1500,
        "eth3": 1500,
    }


@given(net_configs)
def test_no_network_asks_more_than_its_device_gives(config: NetConfig) -> None:
    slaves = {nic for bond in config.bonds.values() for nic in bond.nics}
    # A device that is a bond's slave and carries a network of its own is refused (24) by
    # validation: only configurations that can be applied are of interest here.
    assume(not any(attrs.base_device in slaves for attrs in config.networks.values()))
    mtus = nic_mtus(config)
    for attrs in config.networks.values():
        if attrs.base_device is not None:
            assert attrs.mtu <= mtus[attrs.base_device]


# --- kernel features ----------------------------------------------------------------------


def _tree(tmp_path: Path, files: dict[str, str]) -> str:
    for path, text in files.items():
        target = tmp_path / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return str(tmp_path)


def test_kernel_features_absent(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"/lib/modules/6.1.0/modules.dep": "kernel/fs/ext4/ext4.ko.xz:\n"})
    assert not kernel_supports_vlan(root, "6.1.0")
    assert not kernel_supports_bonding(root, "6.1.0")


def test_kernel_features_loaded(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"/sys/module/8021q/refcnt": "0", "/sys/class/net/bonding_masters": ""})
    assert kernel_supports_vlan(root, "6.1.0")
    assert kernel_supports_bonding(root, "6.1.0")


def test_kernel_features_available_as_modules(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "/lib/modules/6.1.0/modules.dep": "kernel/net/8021q/8021q.ko.xz: garp.ko\n",
            "/lib/modules/6.1.0/modules.builtin": "kernel/drivers/net/bonding/bonding.ko\n",
        },
    )
    assert kernel_supports_vlan(root, "6.1.0")
    assert kernel_supports_bonding(root, "6.1.0")
    assert not kernel_supports_vlan(root, "6.2.0")
