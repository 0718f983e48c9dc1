"""Applying configurations with netlink in real network namespaces.

Each test gets a namespace playing the host, with a veth pair whose inside end is the host's
"nic" and whose other end sits in a second namespace (the switch side); nothing is created in
the root namespace. What the applier did is checked with ``ip -n NS -json``, independently
of the applier's own state reader.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from virthost.common import errors
from virthost.common.commands import CommandRunner
from virthost.network import errors as ne
from virthost.network.model import BondAttrs, NetConfig, NetworkAttrs
from virthost.network.netlink import NetlinkApplier
from virthost.supervisor.netops import NetworkOperations

from .nshost import NamespaceHost

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
]

pyroute2 = pytest.importorskip("pyroute2")

NIC = "vhnic0"
EMPTY = NetConfig()
BLUE = NetworkAttrs(
    nic=NIC,
    mtu=9000,
    ipaddr="10.77.0.1",
    prefix=24,
    gateway="10.77.0.254",
    default_route=True,
    ipv6addrs=("fd77::1/64",),
    ipv6gateway="fd77::fe",
)


@dataclass
class Host(NamespaceHost):
    peer_netns: str = ""

    def link(self, name: str) -> dict[str, Any] | None:
        return next(
            (link for link in self.ip("-details", "link", "show") if link["ifname"] == name), None
        )

    def addresses(self, name: str) -> set[str]:
        found = set()
        for entry in self.ip("addr", "show"):
            if entry["ifname"] == name:
                for info in entry.get("addr_info", []):
                    if info.get("scope") == "global":
                        found.add(f"{info['local']}/{info['prefixlen']}")
        return found

    def default_routes(self, family: str) -> list[dict[str, Any]]:
        return [r for r in self.ip(family, "route", "show") if r.get("dst") == "default"]

    def summary(self) -> dict[str, Any]:
        """What a configuration decides, for comparing two moments."""
        links = {
            link["ifname"]: (link.get("master"), link["mtu"], "UP" in link["flags"])
            for link in self.ip("-details", "link", "show")
        }
        addresses = {name: sorted(self.addresses(name)) for name in links}
        routes = [
            (r.get("gateway"), r.get("dev")) for f in ("-4", "-6") for r in self.default_routes(f)
        ]
        return {"links": links, "addresses": addresses, "routes": routes}


@pytest.fixture
def host() -> Iterator[Host]:
    suffix = uuid.uuid4().hex[:8]
    name, peer = f"vhhost-{suffix}", f"vhpeer-{suffix}"
    pyroute2.netns.create(name)
    try:
        pyroute2.netns.create(peer)
        try:
            with pyroute2.NetNS(name) as ns:
                ns.link("add", ifname=NIC, kind="veth", peer="vhpeer0")
                ns.link("set", index=ns.link_lookup(ifname="vhpeer0")[0], net_ns_fd=peer)
                ns.link("set", index=ns.link_lookup(ifname="lo")[0], state="up")
            yield Host(name, NetlinkApplier(name, timeout=60), peer_netns=peer)
        finally:
            pyroute2.netns.remove(peer)
    finally:
        pyroute2.netns.remove(name)


def test_bridged_static_network_with_mtu_ipv6_and_default_routes(host: Host) -> None:
    host.apply(EMPTY, NetConfig(networks={"blue": BLUE}))

    bridge = host.link("blue")
    assert bridge is not None and bridge["linkinfo"]["info_kind"] == "bridge"
    assert bridge["mtu"] == 9000 and "UP" in bridge["flags"]
    nic = host.link(NIC)
    assert nic is not None and nic["master"] == "blue" and nic["mtu"] == 9000
    assert host.addresses("blue") == {"10.77.0.1/24", "fd77::1/64"}
    assert [(r["gateway"], r["dev"]) for r in host.default_routes("-4")] == [
        ("10.77.0.254", "blue")
    ]
    assert [(r["gateway"], r["dev"]) for r in host.default_routes("-6")] == [("fd77::fe", "blue")]


def test_applying_the_same_configuration_again_changes_nothing(host: Host) -> None:
    desired = NetConfig(networks={"blue": BLUE})
    assert host.apply(EMPTY, desired)
    before = host.summary()
    assert host.apply(desired, desired) == []
    assert host.apply(EMPTY, desired) == []
    assert host.summary() == before


def test_removal_deletes_the_bridge_and_restores_the_nic(host: Host) -> None:
    pristine = host.summary()
    desired = NetConfig(networks={"blue": BLUE})
    host.apply(EMPTY, desired)
    host.apply(desired, EMPTY)

    assert host.link("blue") is None
    nic = host.link(NIC)
    assert nic is not None and nic.get("master") is None and nic["mtu"] == 1500
    assert host.default_routes("-4") == [] and host.default_routes("-6") == []
    assert host.summary()["addresses"] == pristine["addresses"]


def test_mtu_and_address_change_in_place(host: Host) -> None:
    first = NetConfig(networks={"blue": BLUE})
    host.apply(EMPTY, first)
    smaller = NetworkAttrs(nic=NIC, mtu=1400, ipaddr="10.77.0.9", prefix=24)
    done = host.apply(first, NetConfig(networks={"blue": smaller}))

    assert not any(step.startswith("DelLink") for step in done)
    assert host.link("blue")["mtu"] == 1400  # type: ignore[index]
    assert host.link(NIC)["mtu"] == 1400  # type: ignore[index]
    assert host.addresses("blue") == {"10.77.0.9/24"}
    assert host.default_routes("-4") == []


def test_bridgeless_network_and_bridge_options(host: Host) -> None:
    net = NetworkAttrs(nic=NIC, bridged=False, ipaddr="10.77.0.1", prefix=24)
    lonely = NetworkAttrs(stp=True, bridge_opts=(("forward_delay", "200"),))
    host.apply(EMPTY, NetConfig(networks={"plain": net, "lonely": lonely}))

    assert host.addresses(NIC) == {"10.77.0.1/24"}
    bridge = host.link("lonely")
    assert bridge is not None
    data = bridge["linkinfo"]["info_data"]
    assert data["stp_state"] == 1 and data["forward_delay"] == 200


def test_failure_midway_leaves_a_partial_state_that_reapplying_restores(host: Host) -> None:
    previous = NetConfig(
        networks={"blue": NetworkAttrs(nic=NIC, mtu=1500, ipaddr="10.77.0.1", prefix=24)}
    )
    host.apply(EMPTY, previous)
    before = host.summary()
    # The kernel refuses a gateway that no address of the device can reach.
    unreachable = NetworkAttrs(
        nic=NIC, mtu=9000, ipaddr="10.77.1.1", prefix=24, gateway="192.0.2.1", default_route=True
    )
    broken = NetConfig(
        networks={"blue": unreachable, "extra": NetworkAttrs(ipaddr="10.9.9.9", prefix=24)}
    )

    with pytest.raises(ne.BadAddress, match=r"AddDefaultRoute .*192\.0\.2\.1.*done before it"):
        host.apply(previous, broken)
    # Everything before the failing step holds; nothing after it was tried.
    assert host.addresses("blue") == {"10.77.1.1/24"}
    assert host.link("extra") is not None and host.link(NIC)["mtu"] == 9000  # type: ignore[index]
    assert host.default_routes("-4") == []

    host.apply(broken, previous)
    assert host.summary() == before


def test_malformed_address_names_the_step_and_is_undone(host: Host) -> None:
    bogus = NetConfig(networks={"blue": NetworkAttrs(nic=NIC, ipv6addrs=("fd77::1/129",))})
    with pytest.raises(ne.BadAddress, match="AddAddress"):
        host.apply(EMPTY, bogus)
    assert host.link("blue") is not None  # built before the address step failed
    host.apply(bogus, EMPTY)
    assert host.link("blue") is None


def test_missing_nic_is_a_bad_nic_error(host: Host) -> None:
    with pytest.raises(ne.BadNic, match="nosuchnic"):
        host.apply(EMPTY, NetConfig(networks={"blue": NetworkAttrs(nic="nosuchnic")}))


@pytest.mark.skipif(
    not Path("/sys/module/8021q").exists(), reason="this kernel has no 802.1q (VLAN) support"
)
def test_vlan_network_on_a_nic(host: Host) -> None:
    desired = NetConfig(networks={"red": NetworkAttrs(nic=NIC, vlan=10, mtu=1400)})
    host.apply(EMPTY, desired)
    vlan = host.link(f"{NIC}.10")
    assert vlan is not None and vlan["linkinfo"]["info_data"]["id"] == 10
    assert vlan["master"] == "red" and vlan["mtu"] == 1400
    assert host.apply(desired, desired) == []
    host.apply(desired, EMPTY)
    assert host.link(f"{NIC}.10") is None and host.link("red") is None


@pytest.mark.skipif(
    not Path("/sys/class/net/bonding_masters").exists(),
    reason="this kernel has no bonding support",
)
def test_bond_with_a_bridged_network(host: Host) -> None:
    bond = BondAttrs(nics=(NIC,), options="miimon=100 mode=active-backup")
    desired = NetConfig(networks={"green": NetworkAttrs(bonding="bond0")}, bonds={"bond0": bond})
    host.apply(EMPTY, desired)
    assert host.link(NIC)["master"] == "bond0"  # type: ignore[index]
    assert host.link("bond0")["master"] == "green"  # type: ignore[index]
    assert host.apply(desired, desired) == []
    host.apply(desired, EMPTY)
    assert host.link("bond0") is None and host.link(NIC).get("master") is None  # type: ignore[union-attr]


def test_vlan_on_a_kernel_without_8021q_is_a_coded_error(host: Host) -> None:
    if Path("/sys/module/8021q").exists():
        pytest.skip("this kernel has 802.1q: the refusal cannot be seen")
    desired = NetConfig(networks={"red": NetworkAttrs(nic=NIC, vlan=10)})
    with pytest.raises(ne.BadVlan, match=r"no 802\.1q support"):
        host.apply(EMPTY, desired)


def test_supervisor_operations_in_a_namespace(host: Host) -> None:
    ops = NetworkOperations(CommandRunner(), host.netns, timeout=60)
    desired = NetConfig(networks={"blue": BLUE}).to_dict()
    report = ops.setup_networks(EMPTY.to_dict(), desired)
    assert {"step": "AddBridge", "name": "blue"} in report["done"]
    again = ops.setup_networks(desired, desired)
    assert again["done"] == [] and again["skipped"]
    state = ops.network_state()
    assert state["links"][NIC]["master"] == "blue"
    assert {
        "iface": "blue",
        "address": "10.77.0.1",
        "prefix": 24,
        "family": 4,
        "scope": 0,
    } in state["addresses"]
    with pytest.raises(errors.InvalidParameter, match="desired"):
        ops.setup_networks(EMPTY.to_dict(), {"networks": {"x": {"nic": 3}}})


def test_dhcp_network_gets_its_lease_and_router(host: Host, tmp_path: Path) -> None:
    """busybox udhcpd serves on the switch side; the bridge leases through udhcpc."""
    with pyroute2.NetNS(host.peer_netns) as peer:
        index = peer.link_lookup(ifname="vhpeer0")[0]
        peer.addr("add", index=index, address="10.77.0.254", prefixlen=24)
        peer.link("set", index=index, state="up")
    conf = tmp_path / "udhcpd.conf"
    conf.write_text(
        "start 10.77.0.100\nend 10.77.0.110\ninterface vhpeer0\n"
        f"lease_file {tmp_path}/leases\npidfile {tmp_path}/pid\n"
        "option subnet 255.255.255.0\noption router 10.77.0.254\n"
    )
    (tmp_path / "leases").touch()
    server = subprocess.Popen(
        ["ip", "netns", "exec", host.peer_netns, "busybox", "udhcpd", "-f", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        ops = NetworkOperations(CommandRunner(), host.netns, timeout=60)
        net = NetworkAttrs(nic=NIC, bootproto="dhcp", default_route=True)
        desired = NetConfig(networks={"blue": net})
        ops.setup_networks(EMPTY.to_dict(), desired.to_dict())
        (leased,) = host.addresses("blue")
        assert leased.startswith("10.77.0.1") and leased.endswith("/24")
        assert [(r["gateway"], r["dev"]) for r in host.default_routes("-4")] == [
            ("10.77.0.254", "blue")
        ]
        assert ops.setup_networks(desired.to_dict(), desired.to_dict())["done"] == []
        ops.setup_networks(desired.to_dict(), EMPTY.to_dict())
        assert host.link("blue") is None
    finally:
        server.terminate()
        server.wait(timeout=10)
