"""Planning: which steps, in which order, from a running to a desired configuration."""

from __future__ import annotations

import pytest

from virthost.common import errors
from virthost.network import errors as ne
from virthost.network.model import BondAttrs, NetConfig, NetworkAttrs
from virthost.network.netlink import steps as s
from virthost.network.netlink.plan import device_mtus, plan
from virthost.network.netlink.routing import source_table_id

EMPTY = NetConfig()
STATIC = NetworkAttrs(
    nic="eth0",
    mtu=9000,
    ipaddr="10.0.0.2",
    prefix=24,
    gateway="10.0.0.1",
    default_route=True,
    ipv6addrs=("fd00::2/64",),
    ipv6gateway="fd00::1",
)


def config(**networks: NetworkAttrs) -> NetConfig:
    return NetConfig(networks=dict(networks))


def test_bridged_network_is_built_bottom_up_with_routes_last() -> None:
    table = source_table_id("blue")
    steps = plan(EMPTY, config(blue=STATIC))
    assert steps == [
        s.SetMtu("eth0", 9000),
        s.SetUp("eth0"),
        s.AddBridge("blue"),
        s.SetBridgeOptions("blue", False, ()),
        s.Enslave("eth0", "blue"),
        s.SetMtu("blue", 9000),
        s.SetUp("blue"),
        s.AddAddress("blue", "10.0.0.2/24"),
        s.AddAddress("blue", "fd00::2/64"),
        s.AddDefaultRoute(4, "10.0.0.1", "blue"),
        s.AddDefaultRoute(6, "fd00::1", "blue"),
        s.AddTableRoute(table, "10.0.0.0/24", "blue", source="10.0.0.2"),
        s.AddTableRoute(table, "default", "blue", gateway="10.0.0.1"),
        s.AddRule("from", "10.0.0.0/24", table),
        s.AddRule("to", "10.0.0.0/24", table),
    ]


def test_vlan_network_gets_its_device_between_nic_and_bridge() -> None:
    steps = plan(EMPTY, config(red=NetworkAttrs(nic="eth1", vlan=10, mtu=1400)))
    assert steps.index(s.AddVlan("eth1.10", "eth1", 10)) < steps.index(s.AddBridge("red"))
    assert s.Enslave("eth1.10", "red") in steps
    assert s.SetMtu("eth1.10", 1400) in steps


def test_bridgeless_network_puts_addresses_on_the_nic() -> None:
    net = NetworkAttrs(nic="eth0", bridged=False, ipaddr="10.0.0.2", prefix=24)
    steps = plan(EMPTY, config(blue=net))
    assert s.AddAddress("eth0", "10.0.0.2/24") in steps
    assert not any(isinstance(step, s.AddBridge) for step in steps)


def test_nicless_bridge_has_no_port() -> None:
    steps = plan(EMPTY, config(lonely=NetworkAttrs()))
    assert s.AddBridge("lonely") in steps
    assert not any(isinstance(step, s.Enslave) for step in steps)


def test_nic_mtu_is_the_largest_of_its_networks() -> None:
    desired = config(
        a=NetworkAttrs(nic="eth0", mtu=1500),
        b=NetworkAttrs(nic="eth0", vlan=5, mtu=9000),
        c=NetworkAttrs(bonding="bond0", mtu=4000),
    )
    assert device_mtus(desired) == {"eth0": 9000, "bond0": 4000}


def test_removal_comes_first_and_restores_the_nic_mtu() -> None:
    table = source_table_id("blue")
    steps = plan(config(blue=STATIC), EMPTY)
    assert steps == [
        s.DelRule("to", "10.0.0.0/24", table),
        s.DelRule("from", "10.0.0.0/24", table),
        s.DelTableRoute(table, "default", "blue", gateway="10.0.0.1"),
        s.DelTableRoute(table, "10.0.0.0/24", "blue", source="10.0.0.2"),
        s.DelDefaultRoute(4, "10.0.0.1", "blue"),
        s.DelDefaultRoute(6, "fd00::1", "blue"),
        s.DelAddress("blue", "10.0.0.2/24"),
        s.DelAddress("blue", "fd00::2/64"),
        s.DelLink("blue"),
        s.SetMtu("eth0", 1500),
    ]


def test_same_stack_only_loses_what_is_gone() -> None:
    changed = NetworkAttrs(nic="eth0", mtu=9000, ipaddr="10.0.0.3", prefix=24)
    steps = plan(config(blue=STATIC), config(blue=changed))
    removals = [step for step in steps if isinstance(step, s.DelAddress | s.DelDefaultRoute)]
    assert removals == [
        s.DelDefaultRoute(4, "10.0.0.1", "blue"),
        s.DelDefaultRoute(6, "fd00::1", "blue"),
        s.DelAddress("blue", "10.0.0.2/24"),
        s.DelAddress("blue", "fd00::2/64"),
    ]
    assert s.DelLink("blue") not in steps
    assert s.AddAddress("blue", "10.0.0.3/24") in steps


def test_changed_stack_is_taken_down_and_rebuilt() -> None:
    tagged = NetworkAttrs(nic="eth0", vlan=7)
    steps = plan(config(blue=NetworkAttrs(nic="eth0")), config(blue=tagged))
    assert steps.index(s.DelLink("blue")) < steps.index(s.AddVlan("eth0.7", "eth0", 7))
    assert steps.index(s.AddVlan("eth0.7", "eth0", 7)) < steps.index(s.AddBridge("blue"))


def test_unchanged_configuration_still_lists_every_build_step() -> None:
    """The applier skips what holds; listing it lets a re-apply repair a kernel that lost it."""
    assert plan(config(blue=STATIC), config(blue=STATIC)) == plan(EMPTY, config(blue=STATIC))


def test_bonds_before_networks_and_their_slaves_enslaved() -> None:
    bond = BondAttrs(nics=("eth1", "eth2"), options="miimon=100 mode=802.3ad")
    desired = NetConfig(networks={"green": NetworkAttrs(bonding="bond0")}, bonds={"bond0": bond})
    steps = plan(EMPTY, desired)
    add = s.AddBond("bond0", (("miimon", "100"), ("mode", "802.3ad")), None)
    assert steps[:3] == [add, s.Enslave("eth1", "bond0"), s.Enslave("eth2", "bond0")]
    assert steps.index(s.SetUp("bond0")) < steps.index(s.Enslave("bond0", "green"))


def test_bond_losing_a_slave_releases_it_and_resets_its_mtu() -> None:
    before = NetConfig(bonds={"bond0": BondAttrs(nics=("eth1", "eth2"), options="mode=1")})
    after = NetConfig(bonds={"bond0": BondAttrs(nics=("eth1",), options="mode=1")})
    steps = plan(before, after)
    assert steps[:2] == [s.ReleasePort("eth2", "bond0"), s.SetMtu("eth2", 1500)]
    assert s.DelLink("bond0") not in steps


def test_bond_with_new_options_is_recreated() -> None:
    before = NetConfig(bonds={"bond0": BondAttrs(nics=("eth1",), options="mode=1")})
    after = NetConfig(bonds={"bond0": BondAttrs(nics=("eth1",), options="mode=4")})
    steps = plan(before, after)
    assert steps.index(s.DelLink("bond0")) < steps.index(s.AddBond("bond0", (("mode", "4"),)))


def test_bridge_options_use_netlink_names_and_numbers() -> None:
    net = NetworkAttrs(
        nic="eth0",
        stp=True,
        bridge_opts=(("forward_delay", "0"), ("multicast_snooping", "0"), ("stp_state", "0")),
    )
    steps = plan(EMPTY, config(blue=net))
    assert s.SetBridgeOptions("blue", True, (("forward_delay", 0), ("mcast_snooping", 0))) in steps


def test_non_numeric_bridge_option_is_refused_naming_the_network() -> None:
    net = NetworkAttrs(nic="eth0", bridge_opts=(("forward_delay", "soon"),))
    with pytest.raises(ne.BadBridge, match="'blue'"):
        plan(EMPTY, config(blue=net))


def test_dhcp_network_leases_instead_of_static_address() -> None:
    net = NetworkAttrs(nic="eth0", bootproto="dhcp", default_route=True)
    steps = plan(EMPTY, config(blue=net))
    assert s.StartDhcp("blue", True) in steps
    assert not any(isinstance(step, s.AddAddress | s.AddDefaultRoute) for step in steps)
    assert s.StopDhcp("blue") in plan(config(blue=net), EMPTY)


def test_steps_serialize_with_their_kind() -> None:
    assert s.SetMtu("eth0", 9000).to_dict() == {"step": "SetMtu", "name": "eth0", "mtu": 9000}


def test_dhcpv6_is_refused_before_any_change_naming_the_network() -> None:
    with pytest.raises(errors.UnsupportedOperation, match=r"'blue'.*DHCPv6 client"):
        plan(EMPTY, config(blue=NetworkAttrs(nic="eth0", dhcpv6=True)))
