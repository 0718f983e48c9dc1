"""Planning per-network source routing: a table and two rules per static network with a gateway."""

from __future__ import annotations

import pytest

from virthost.network import errors as ne
from virthost.network.model import NetConfig, NetworkAttrs
from virthost.network.netlink import steps as s
from virthost.network.netlink.plan import plan
from virthost.network.netlink.routing import (
    SOURCE_TABLE_MAX,
    SOURCE_TABLE_MIN,
    is_source_table,
    source_table_id,
)

EMPTY = NetConfig()
UPLINK = NetworkAttrs(
    nic="eth0", ipaddr="10.0.0.2", prefix=24, gateway="10.0.0.1", default_route=True
)
STORAGE = NetworkAttrs(nic="eth1", ipaddr="10.1.0.5", prefix=16, gateway="10.1.0.1")


def config(**networks: NetworkAttrs) -> NetConfig:
    return NetConfig(networks=dict(networks))


def source_routing(steps: list[s.Step]) -> list[s.Step]:
    kinds = s.AddRule | s.DelRule | s.AddTableRoute | s.DelTableRoute
    return [step for step in steps if isinstance(step, kinds)]


def test_table_id_is_the_folded_crc32_of_the_device_name() -> None:
    assert source_table_id("blue") == 506915508
    assert source_table_id("blue") != source_table_id("green")


@pytest.mark.parametrize("device", ["", "a", "eth0", "bond0.4094", "x" * 15, "é"])
def test_table_id_stays_clear_of_the_kernel_tables(device: str) -> None:
    table = source_table_id(device)
    assert SOURCE_TABLE_MIN <= table <= SOURCE_TABLE_MAX and is_source_table(table)
    assert not any(is_source_table(reserved) for reserved in (0, 253, 254, 255))


def test_network_without_the_default_route_still_gets_its_own_table() -> None:
    table = source_table_id("storage")
    steps = plan(EMPTY, config(storage=STORAGE))
    assert not any(isinstance(step, s.AddDefaultRoute) for step in steps)
    assert source_routing(steps) == [
        s.AddTableRoute(table, "10.1.0.0/16", "storage", source="10.1.0.5"),
        s.AddTableRoute(table, "default", "storage", gateway="10.1.0.1"),
        s.AddRule("from", "10.1.0.0/16", table),
        s.AddRule("to", "10.1.0.0/16", table),
    ]


def test_source_routing_comes_after_every_address_and_default_route() -> None:
    steps = plan(EMPTY, config(uplink=UPLINK, storage=STORAGE))
    first = min(steps.index(step) for step in source_routing(steps))
    assert all(
        steps.index(step) < first
        for step in steps
        if isinstance(step, s.AddAddress | s.AddDefaultRoute)
    )
    tables = {step.table for step in source_routing(steps) if isinstance(step, s.AddRule)}
    assert tables == {source_table_id("uplink"), source_table_id("storage")}


def test_bridgeless_vlan_network_uses_the_vlan_device_and_its_table() -> None:
    net = NetworkAttrs(
        nic="eth0", vlan=10, bridged=False, ipaddr="10.2.0.2", prefix=24, gateway="10.2.0.1"
    )
    table = source_table_id("eth0.10")
    assert s.AddTableRoute(table, "default", "eth0.10", gateway="10.2.0.1") in plan(
        EMPTY, config(tagged=net)
    )


@pytest.mark.parametrize(
    "net",
    [
        NetworkAttrs(nic="eth0", bootproto="dhcp", default_route=True),
        NetworkAttrs(nic="eth0", ipaddr="10.0.0.2", prefix=24),
        NetworkAttrs(nic="eth0", ipv6addrs=("fd00::2/64",), ipv6gateway="fd00::1"),
        NetworkAttrs(gateway="10.0.0.1"),
    ],
    ids=["dhcp", "no-gateway", "ipv6-only", "no-address"],
)
def test_networks_without_static_ipv4_and_gateway_get_no_table(net: NetworkAttrs) -> None:
    assert source_routing(plan(EMPTY, config(blue=net))) == []
    assert source_routing(plan(config(blue=net), EMPTY)) == []


def test_removal_drops_rules_before_the_table_and_both_before_the_address() -> None:
    table = source_table_id("storage")
    steps = plan(config(storage=STORAGE), EMPTY)
    assert steps[:5] == [
        s.DelRule("to", "10.1.0.0/16", table),
        s.DelRule("from", "10.1.0.0/16", table),
        s.DelTableRoute(table, "default", "storage", gateway="10.1.0.1"),
        s.DelTableRoute(table, "10.1.0.0/16", "storage", source="10.1.0.5"),
        s.DelAddress("storage", "10.1.0.5/16"),
    ]


def test_new_gateway_replaces_only_the_table_default_route() -> None:
    table = source_table_id("storage")
    moved = NetworkAttrs(nic="eth1", ipaddr="10.1.0.5", prefix=16, gateway="10.1.0.254")
    steps = plan(config(storage=STORAGE), config(storage=moved))
    removals = [step for step in source_routing(steps) if isinstance(step, s.DelTableRoute)]
    assert removals == [s.DelTableRoute(table, "default", "storage", gateway="10.1.0.1")]
    assert not any(isinstance(step, s.DelRule) for step in steps)
    assert s.AddTableRoute(table, "default", "storage", gateway="10.1.0.254") in steps


def test_new_subnet_replaces_rules_and_subnet_route() -> None:
    table = source_table_id("storage")
    renumbered = NetworkAttrs(nic="eth1", ipaddr="10.9.0.5", prefix=24, gateway="10.9.0.1")
    steps = plan(config(storage=STORAGE), config(storage=renumbered))
    deleted = [step for step in source_routing(steps) if isinstance(step, s.DelRule)]
    assert deleted == [
        s.DelRule("to", "10.1.0.0/16", table),
        s.DelRule("from", "10.1.0.0/16", table),
    ]
    assert s.AddRule("from", "10.9.0.0/24", table) in steps
    assert steps.index(s.DelRule("from", "10.1.0.0/16", table)) < steps.index(
        s.DelAddress("storage", "10.1.0.5/16")
    )


def test_losing_the_gateway_removes_the_whole_table() -> None:
    plain = NetworkAttrs(nic="eth1", ipaddr="10.1.0.5", prefix=16)
    steps = plan(config(storage=STORAGE), config(storage=plain))
    assert [type(step) for step in source_routing(steps)] == [
        s.DelRule,
        s.DelRule,
        s.DelTableRoute,
        s.DelTableRoute,
    ]
    assert s.DelLink("storage") not in steps


def test_unchanged_network_removes_nothing() -> None:
    steps = plan(config(storage=STORAGE), config(storage=STORAGE))
    assert not any(isinstance(step, s.DelRule | s.DelTableRoute) for step in steps)


def test_two_devices_folding_to_one_table_are_refused_before_any_change() -> None:
    # Two names whose CRC32s fold to the same id (found by search).
    assert source_table_id("net104286") == source_table_id("net606545")
    a = NetworkAttrs(nic="eth0", ipaddr="10.0.0.2", prefix=24, gateway="10.0.0.1")
    b = NetworkAttrs(nic="eth1", ipaddr="10.1.0.2", prefix=24, gateway="10.1.0.1")
    with pytest.raises(ne.BadNetworkParameters, match="'net104286' and 'net606545'"):
        plan(EMPTY, NetConfig(networks={"net104286": a, "net606545": b}))
    # Without a gateway one of them has no table: nothing is shared.
    plain = NetworkAttrs(nic="eth1", ipaddr="10.1.0.2", prefix=24)
    assert plan(EMPTY, NetConfig(networks={"net104286": a, "net606545": plain}))


def test_source_routing_steps_serialize() -> None:
    assert s.AddRule("from", "10.1.0.0/16", 4096).to_dict() == {
        "step": "AddRule",
        "selector": "from",
        "subnet": "10.1.0.0/16",
        "table": 4096,
    }
