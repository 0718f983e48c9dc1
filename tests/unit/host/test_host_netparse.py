"""VDSM network capabilities from iproute2 JSON (captured here, or written for bonds/VLANs)."""

from __future__ import annotations

import json
from typing import Any

from unit.host.host_fakes import data_text
from virthost.host import netparse
from virthost.host.netparse import LinkExtras


def _json(name: str) -> Any:
    return json.loads(data_text(name))


ROUTES4 = [
    {"dst": "default", "gateway": "192.168.10.1", "dev": "ovirtmgmt", "flags": []},
    {"dst": "default", "gateway": "10.9.9.1", "dev": "bond0.100", "table": "100", "flags": []},
    {"dst": "192.168.10.0/24", "dev": "ovirtmgmt", "protocol": "kernel", "scope": "link"},
]
ROUTES6 = [{"dst": "default", "gateway": "fe80::1", "dev": "ovirtmgmt", "metric": 1024}]


def _bond_vlan_caps() -> dict[str, Any]:
    extras = LinkExtras(
        speed={"ens1f0": 10000, "ens1f1": 10000, "bond0": 20000, "vnet0": 10},
        ipv6_autoconf={"ovirtmgmt": True},
    )
    return netparse.build_network_caps(
        _json("ip_links_bond_vlan.json"),
        _json("ip_addrs_bond_vlan.json"),
        ROUTES4,
        ROUTES6,
        extras,
        nameservers=["192.168.10.1"],
        hidden=["w*"],
    )


def test_device_classification() -> None:
    caps = _bond_vlan_caps()
    assert sorted(caps["nics"]) == ["ens1f0", "ens1f1", "vnet0"]  # lo, ovs, hidden wlp skipped
    assert list(caps["bondings"]) == ["bond0"]
    assert list(caps["vlans"]) == ["bond0.100"]
    assert list(caps["bridges"]) == ["ovirtmgmt"]
    assert caps["networks"] == {}
    assert caps["nameservers"] == ["192.168.10.1"] and caps["supportsIPv6"] is True


def test_bridge_with_addresses_and_gateways() -> None:
    bridge = _bond_vlan_caps()["bridges"]["ovirtmgmt"]
    assert bridge["ports"] == ["bond0.100", "vnet0"]
    assert bridge["stp"] == "off"
    # The primary address in the gateway's subnet wins over the first one.
    assert bridge["addr"] == "192.168.10.5" and bridge["netmask"] == "255.255.255.0"
    assert bridge["ipv4addrs"] == ["10.0.0.9/16", "192.168.10.5/24", "192.168.10.6/24"]
    assert bridge["ipv6addrs"] == ["2001:db8:10::5/64"]
    assert bridge["gateway"] == "192.168.10.1" and bridge["ipv6gateway"] == "fe80::1"
    assert bridge["ipv4defaultroute"] is True
    assert bridge["dhcpv4"] is True and bridge["dhcpv6"] is False
    assert bridge["ipv6autoconf"] is True
    assert bridge["mtu"] == 1500
    assert bridge["opts"]["forward_delay"] == "1500"
    assert bridge["opts"]["multicast_snooping"] == "1"
    assert "gc_timer" not in bridge["opts"]


def test_bond_and_its_slaves() -> None:
    caps = _bond_vlan_caps()
    bond = caps["bondings"]["bond0"]
    assert bond["slaves"] == ["ens1f0", "ens1f1"]
    assert bond["opts"] == {
        "mode": "4",
        "miimon": "100",
        "xmit_hash_policy": "layer3+4",
        "lacp_rate": "fast",
    }
    assert bond["hwaddr"] == "3c:fd:fe:a0:10:01" and bond["speed"] == 20000
    assert bond["ad_aggregator_id"] == "1" and bond["ad_partner_mac"] == "00:1c:73:aa:bb:cc"
    assert bond["switch"] == "legacy" and bond["active_slave"] == ""
    slave = caps["nics"]["ens1f1"]
    assert slave["permhwaddr"] == "3c:fd:fe:a0:10:02"
    assert slave["hwaddr"] == "3c:fd:fe:a0:10:01"
    assert slave["ad_aggregator_id"] == "1"
    assert slave["speed"] == 10000 and slave["mtu"] == 9000


def test_vlan_ignores_other_routing_tables() -> None:
    vlan = _bond_vlan_caps()["vlans"]["bond0.100"]
    assert vlan["iface"] == "bond0" and vlan["vlanid"] == 100
    assert vlan["gateway"] == "" and vlan["ipv4defaultroute"] is False
    assert vlan["addr"] == "" and vlan["netmask"] == "" and vlan["ipv4addrs"] == []


def test_tap_is_a_nic_without_addresses() -> None:
    tap = _bond_vlan_caps()["nics"]["vnet0"]
    assert tap["hwaddr"] == "fe:1a:4a:16:01:51" and tap["speed"] == 10
    assert tap["ipv6addrs"] == [] and "permhwaddr" not in tap


def test_this_machines_inventory() -> None:
    caps = netparse.build_network_caps(
        _json("ip_link_host.json"),
        _json("ip_addr_host.json"),
        _json("ip_route4_host.json"),
        _json("ip_route6_host.json"),
        LinkExtras(),
    )
    eth0 = caps["nics"]["eth0"]
    assert eth0["addr"] == "192.0.2.2" and eth0["netmask"] == "255.255.255.0"
    assert eth0["gateway"] == "192.0.2.1" and eth0["ipv6gateway"] == "fd00::1"
    assert eth0["ipv6addrs"] == ["fd00::2/64"]
    assert eth0["mtu"] == 1400 and eth0["hwaddr"] == "02:fc:00:00:00:01"
    assert "lo" not in caps["nics"]
    assert caps["bridges"] == {} and caps["bondings"] == {} and caps["vlans"] == {}


def test_captured_namespace_with_bridge_and_veth() -> None:
    caps = netparse.build_network_caps(
        _json("ip_links_netns.json"),
        _json("ip_addrs_netns.json"),
        _json("ip_r4_netns.json"),
        _json("ip_r6_netns.json"),
        LinkExtras(speed={"vA": 10000, "vB": 10000}),
    )
    assert sorted(caps["nics"]) == ["vA", "vB"]
    bridge = caps["bridges"]["br0"]
    assert bridge["ports"] == ["vA"] and bridge["stp"] == "on"
    assert bridge["ipv4addrs"] == ["10.77.0.1/24"] and bridge["ipv6addrs"] == ["fd77::1/64"]
    assert bridge["gateway"] == "10.77.0.254" and bridge["ipv6gateway"] == "fd77::fe"
    assert caps["nics"]["vA"]["speed"] == 10000


def test_parse_resolv_conf() -> None:
    text = "# generated\nsearch example.com\nnameserver 10.0.0.1\nnameserver  fd00::53\noptions x\n"
    assert netparse.parse_resolv_conf(text) == ["10.0.0.1", "fd00::53"]
