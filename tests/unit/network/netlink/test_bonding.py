"""Bond options in sysfs words become pyroute2's netlink keywords, or are refused."""

from __future__ import annotations

import pytest

from virthost.network import errors as ne
from virthost.network.netlink.bonding import kernel_bond_options
from virthost.network.netlink.dhcp import parse_lease


def test_named_and_numeric_options_become_netlink_values() -> None:
    options = [("mode", "802.3ad"), ("miimon", "100"), ("lacp_rate", "fast"), ("primary", "eth1")]
    assert kernel_bond_options("bond0", options, {"eth1": 7}.__getitem__) == {
        "bond_mode": 4,
        "bond_miimon": 100,
        "bond_ad_lacp_rate": 1,
        "bond_primary": 7,
    }


def test_arp_targets_are_a_list_of_ipv4_addresses() -> None:
    result = kernel_bond_options("b", [("arp_ip_target", "10.0.0.1,10.0.0.2")], len)
    assert result == {"bond_arp_ip_target": ["10.0.0.1", "10.0.0.2"]}


@pytest.mark.parametrize(
    "option", [("mode", "fastest"), ("active_slave", "eth1"), ("arp_ip_target", "fd00::1")]
)
def test_options_netlink_cannot_carry_are_refused_naming_the_bond(
    option: tuple[str, str],
) -> None:
    with pytest.raises(ne.BadBonding, match="'bond7'"):
        kernel_bond_options("bond7", [option], len)


def test_lease_is_read_from_the_script_output() -> None:
    out = "udhcpc: started\nvirthost-lease ip=10.1.2.3 subnet=255.255.255.0 router=10.1.2.1\n"
    lease = parse_lease(out)
    assert lease is not None and lease.cidr == "10.1.2.3/24" and lease.router == "10.1.2.1"
    assert parse_lease("udhcpc: no lease, failing\n") is None
