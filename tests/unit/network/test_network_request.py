"""setupNetworks requests: parsing, options, merging into the running configuration, diffs."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given

from virthost.network import errors as ne
from virthost.network.model import (
    BondAttrs,
    NetConfig,
    NetworkAttrs,
    SetupOptions,
    SetupRequest,
    merge,
    request_between,
)

from .netstrategies import net_configs

BOND = BondAttrs(nics=("eth1", "eth2"), options="miimon=100 mode=802.3ad")


def test_request_separates_settings_from_removals() -> None:
    request = SetupRequest.from_wire(
        {"red": {"nic": "eth0"}, "old": {"remove": "true"}, "kept": {"remove": False, "nic": "e"}},
        {"bond0": {"nics": ["eth2", "eth1"], "options": "mode=4"}, "bond9": {"remove": True}},
        {},
    )
    assert request.networks == {"red": NetworkAttrs(nic="eth0"), "kept": NetworkAttrs(nic="e")}
    assert request.removed_networks == {"old"}
    assert request.bonds == {"bond0": BOND}
    assert request.removed_bonds == {"bond9"}
    assert request.options == SetupOptions()


def test_missing_parameters_are_empty() -> None:
    assert SetupRequest.from_wire(None, None, None) == SetupRequest()


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, SetupOptions(True, 4.0, False)),
        ({"connectivityCheck": "false"}, SetupOptions(False, 4.0, False)),
        ({"connectivityCheck": 0}, SetupOptions(False, 4.0, False)),
        ({"connectivityCheck": False}, SetupOptions(False, 4.0, False)),
        ({"connectivityTimeout": "120"}, SetupOptions(True, 120.0, False)),
        ({"connectivityTimeout": 2.5, "commitOnSuccess": True}, SetupOptions(True, 2.5, True)),
        ({"_inRollback": True}, SetupOptions()),
    ],
)
def test_options(options: dict[str, Any], expected: SetupOptions) -> None:
    request = SetupRequest.from_wire({}, {}, options)
    assert request.options == expected
    assert request.connectivity_check == expected.connectivity_check
    assert request.connectivity_timeout == expected.connectivity_timeout
    assert request.commit_on_success == expected.commit_on_success


@pytest.mark.parametrize(
    "options",
    [
        {"connectivityTimeout": "soon"},
        {"connectivityTimeout": 0},
        {"connectivityTimeout": "nan"},
        {"connectivityTimeout": True},
        {"connectivityCheck": "perhaps"},
        [],
    ],
)
def test_bad_options_are_refused(options: Any) -> None:
    with pytest.raises(ne.BadNetworkParameters):
        SetupRequest.from_wire({}, {}, options)


@pytest.mark.parametrize(
    ("networks", "bondings", "error"),
    [
        ([], {}, ne.BadNetworkParameters),
        ({1: {}}, {}, ne.BadNetworkParameters),
        ({"a/b": {"remove": True}}, {}, ne.BadNetworkParameters),
        ({"n": {"remove": "sure"}}, {}, ne.BadNetworkParameters),
        ({}, {"bond/0": {"remove": True}}, ne.BadBonding),
        ({}, {"bond0": {"nics": []}}, ne.BadBonding),
    ],
)
def test_bad_requests_are_refused(networks: Any, bondings: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        SetupRequest.from_wire(networks, bondings, {})


@given(net_configs, net_configs)
def test_request_between_leads_from_one_configuration_to_the_other(
    current: NetConfig, target: NetConfig
) -> None:
    holders = [name for name, attrs in target.networks.items() if attrs.default_route]
    target = NetConfig(
        networks={
            name: attrs if name in holders[:1] else _without_default_route(attrs)
            for name, attrs in target.networks.items()
        },
        bonds=target.bonds,
    )
    request = request_between(current, target)
    assert merge(current, request) == target
    assert request.options.connectivity_check is False


@given(net_configs)
def test_wire_form_of_a_request_parses_back_to_it(config: NetConfig) -> None:
    request = request_between(NetConfig(networks={"gone": NetworkAttrs()}), config)
    assert SetupRequest.from_wire(*request.to_wire()) == request


def _without_default_route(attrs: NetworkAttrs) -> NetworkAttrs:
    data = attrs.to_dict()
    data["default_route"] = False
    return NetworkAttrs.from_dict(data)


def test_merge_replaces_whole_entries_and_keeps_the_rest() -> None:
    running = NetConfig(
        networks={"a": NetworkAttrs(nic="eth0", mtu=9000), "b": NetworkAttrs(nic="eth3")},
        bonds={"bond0": BOND},
    )
    request = SetupRequest.from_wire(
        {"a": {"nic": "eth0", "vlan": 5}, "b": {"remove": True}}, {}, {}
    )
    desired = merge(running, request)
    assert desired.networks == {"a": NetworkAttrs(nic="eth0", vlan=5)}  # mtu back to default
    assert desired.bonds == {"bond0": BOND}


def test_merge_removes_bonds() -> None:
    running = NetConfig(bonds={"bond0": BOND})
    assert merge(running, SetupRequest(removed_bonds=frozenset({"bond0"}))).bonds == {}


def test_merge_moves_the_default_route_and_its_nameservers() -> None:
    old = NetworkAttrs(nic="eth0", default_route=True, nameservers=("192.0.2.53",))
    running = NetConfig(networks={"mgmt": old})
    request = SetupRequest(networks={"new": NetworkAttrs(nic="eth1", default_route=True)})
    desired = merge(running, request)
    assert desired.networks["mgmt"] == NetworkAttrs(nic="eth0")
    assert desired.networks["new"].default_route


def test_merge_keeps_the_default_route_when_the_request_does_not_take_it() -> None:
    running = NetConfig(networks={"mgmt": NetworkAttrs(nic="eth0", default_route=True)})
    desired = merge(running, SetupRequest(networks={"x": NetworkAttrs(nic="eth1")}))
    assert desired.networks["mgmt"].default_route


def test_removing_what_does_not_exist_is_refused() -> None:
    with pytest.raises(ne.BadBridge) as info:
        merge(NetConfig(), SetupRequest(removed_networks=frozenset({"ghost"})))
    assert info.value.context["network"] == "ghost"
    with pytest.raises(ne.BadBonding) as bond_info:
        merge(NetConfig(), SetupRequest(removed_bonds=frozenset({"bond7"})))
    assert bond_info.value.context["bond"] == "bond7"
