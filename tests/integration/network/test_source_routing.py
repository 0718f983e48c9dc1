"""Per-network source routing applied with netlink in real network namespaces.

The host namespace has two veth "nics" whose peers sit, up, in a switch namespace. Two
networks each have a gateway; only one holds the default route. What the applier did is read
back with ``ip -n NS -json rule`` and ``ip -n NS -json route show table N``, independently of
the applier's own state reader, and ``ip route get ... from ADDR`` shows where the kernel
would send a packet leaving from each network's address.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from virthost.network import errors as ne
from virthost.network.model import NetConfig, NetworkAttrs
from virthost.network.netlink import NetlinkApplier
from virthost.network.netlink.routing import source_table_id

from .nshost import NamespaceHost

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
]

pyroute2 = pytest.importorskip("pyroute2")

NICS = ("vhnic0", "vhnic1")
EMPTY = NetConfig()
# Bridged, holds the host's default route.
UPLINK = NetworkAttrs(
    nic="vhnic0", ipaddr="10.77.0.1", prefix=24, gateway="10.77.0.254", default_route=True
)
# Bridgeless on the second nic, with a gateway of its own but not the default route.
STORAGE = NetworkAttrs(
    nic="vhnic1", bridged=False, ipaddr="10.78.0.1", prefix=24, gateway="10.78.0.254"
)
BOTH = NetConfig(networks={"uplink": UPLINK, "storage": STORAGE})
UPLINK_TABLE = source_table_id("uplink")
STORAGE_TABLE = source_table_id("vhnic1")
OUTSIDE = "192.0.2.10"  # beyond both gateways


class Host(NamespaceHost):
    def rules(self, table: int) -> set[tuple[str, str]]:
        """``(selector, subnet)`` of the rules looking up ``table``."""
        found = set()
        for rule in self.ip("-4", "rule", "show"):
            if rule.get("table") != str(table):
                continue
            if rule.get("src", "all") != "all":
                found.add(("from", f"{rule['src']}/{rule.get('srclen', 32)}"))
            if "dst" in rule:
                found.add(("to", f"{rule['dst']}/{rule.get('dstlen', 32)}"))
        return found

    def table(self, table: int) -> set[tuple[str, str | None, str, str | None]]:
        """``(dst, gateway, dev, prefsrc)`` of the routes of ``table`` (empty if the kernel
        never had that table)."""
        shown = subprocess.run(
            ["ip", "-n", self.netns, "-json", "-4", "route", "show", "table", str(table)],
            capture_output=True,
            text=True,
            timeout=10,
        )
        if shown.returncode != 0:
            assert "table does not exist" in shown.stderr, shown.stderr
            return set()
        return {
            (r["dst"], r.get("gateway"), r["dev"], r.get("prefsrc"))
            for r in json.loads(shown.stdout or "[]")
        }

    def main_defaults(self) -> list[tuple[str, str]]:
        return [
            (r["gateway"], r["dev"])
            for r in self.ip("-4", "route", "show")
            if r.get("dst") == "default"
        ]

    def route_from(self, source: str) -> tuple[str | None, str]:
        (route,) = self.ip("-4", "route", "get", OUTSIDE, "from", source)
        return route.get("gateway"), route["dev"]


@pytest.fixture
def host() -> Iterator[Host]:
    suffix = uuid.uuid4().hex[:8]
    name, switch = f"vhhost-{suffix}", f"vhswitch-{suffix}"
    pyroute2.netns.create(name)
    try:
        pyroute2.netns.create(switch)
        try:
            with pyroute2.NetNS(name) as ns:
                for position, nic in enumerate(NICS):
                    ns.link("add", ifname=nic, kind="veth", peer=f"vhpeer{position}")
                    peer = ns.link_lookup(ifname=f"vhpeer{position}")[0]
                    ns.link("set", index=peer, net_ns_fd=switch)
                ns.link("set", index=ns.link_lookup(ifname="lo")[0], state="up")
            with pyroute2.NetNS(switch) as ns:
                for position in range(len(NICS)):
                    index = ns.link_lookup(ifname=f"vhpeer{position}")[0]
                    ns.link("set", index=index, state="up")
            yield Host(name, NetlinkApplier(name, timeout=60))
        finally:
            pyroute2.netns.remove(switch)
    finally:
        pyroute2.netns.remove(name)


def test_each_network_leaves_through_its_own_gateway(host: Host) -> None:
    host.apply(EMPTY, BOTH)

    assert host.main_defaults() == [("10.77.0.254", "uplink")]
    assert host.rules(UPLINK_TABLE) == {("from", "10.77.0.0/24"), ("to", "10.77.0.0/24")}
    assert host.rules(STORAGE_TABLE) == {("from", "10.78.0.0/24"), ("to", "10.78.0.0/24")}
    assert host.table(UPLINK_TABLE) == {
        ("default", "10.77.0.254", "uplink", None),
        ("10.77.0.0/24", None, "uplink", "10.77.0.1"),
    }
    assert host.table(STORAGE_TABLE) == {
        ("default", "10.78.0.254", "vhnic1", None),
        ("10.78.0.0/24", None, "vhnic1", "10.78.0.1"),
    }
    # What it is for: a packet from the storage address does not follow the default route.
    assert host.route_from("10.78.0.1") == ("10.78.0.254", "vhnic1")
    assert host.route_from("10.77.0.1") == ("10.77.0.254", "uplink")


def test_reapplying_changes_nothing_and_repairs_what_was_lost(host: Host) -> None:
    host.apply(EMPTY, BOTH)
    assert host.apply(BOTH, BOTH) == []
    assert host.apply(EMPTY, BOTH) == []

    subprocess.run(
        [
            "ip",
            "-n",
            host.netns,
            "rule",
            "del",
            "from",
            "10.78.0.0/24",
            "table",
            str(STORAGE_TABLE),
        ],
        check=True,
        timeout=10,
    )
    assert host.apply(BOTH, BOTH) == [
        f"AddRule selector=from subnet=10.78.0.0/24 table={STORAGE_TABLE}"
    ]
    assert host.rules(STORAGE_TABLE) == {("from", "10.78.0.0/24"), ("to", "10.78.0.0/24")}


def test_removal_leaves_no_rule_and_no_table_route(host: Host) -> None:
    host.apply(EMPTY, BOTH)
    host.apply(BOTH, EMPTY)

    for table in (UPLINK_TABLE, STORAGE_TABLE):
        assert host.rules(table) == set()
        assert host.table(table) == set()
    assert host.main_defaults() == []


def test_removing_one_network_keeps_the_other_ones_table(host: Host) -> None:
    host.apply(EMPTY, BOTH)
    host.apply(BOTH, NetConfig(networks={"storage": STORAGE}))

    assert host.rules(UPLINK_TABLE) == set() and host.table(UPLINK_TABLE) == set()
    assert host.rules(STORAGE_TABLE) == {("from", "10.78.0.0/24"), ("to", "10.78.0.0/24")}
    assert host.route_from("10.78.0.1") == ("10.78.0.254", "vhnic1")


def test_gateway_and_address_changes_in_place(host: Host) -> None:
    host.apply(EMPTY, BOTH)
    new_gateway = NetworkAttrs(
        nic="vhnic1", bridged=False, ipaddr="10.78.0.1", prefix=24, gateway="10.78.0.253"
    )
    moved = NetConfig(networks={"uplink": UPLINK, "storage": new_gateway})
    done = host.apply(BOTH, moved)
    assert not any(step.startswith("DelRule") for step in done)
    assert host.route_from("10.78.0.1") == ("10.78.0.253", "vhnic1")

    renumbered = NetworkAttrs(
        nic="vhnic1", bridged=False, ipaddr="10.79.0.1", prefix=24, gateway="10.79.0.254"
    )
    host.apply(moved, NetConfig(networks={"uplink": UPLINK, "storage": renumbered}))
    assert host.rules(STORAGE_TABLE) == {("from", "10.79.0.0/24"), ("to", "10.79.0.0/24")}
    assert host.table(STORAGE_TABLE) == {
        ("default", "10.79.0.254", "vhnic1", None),
        ("10.79.0.0/24", None, "vhnic1", "10.79.0.1"),
    }


def test_dropping_the_gateway_drops_the_table(host: Host) -> None:
    host.apply(EMPTY, BOTH)
    plain = NetworkAttrs(nic="vhnic1", bridged=False, ipaddr="10.78.0.1", prefix=24)
    host.apply(BOTH, NetConfig(networks={"uplink": UPLINK, "storage": plain}))

    assert host.rules(STORAGE_TABLE) == set() and host.table(STORAGE_TABLE) == set()
    assert host.route_from("10.78.0.1") == ("10.77.0.254", "uplink")


def test_unreachable_gateway_fails_on_the_table_route_and_is_undone(host: Host) -> None:
    stray = NetworkAttrs(
        nic="vhnic1", bridged=False, ipaddr="10.78.0.1", prefix=24, gateway="198.51.100.1"
    )
    broken = NetConfig(networks={"uplink": UPLINK, "storage": stray})
    with pytest.raises(ne.BadAddress, match=r"AddTableRoute .*198\.51\.100\.1"):
        host.apply(EMPTY, broken)
    assert host.table(STORAGE_TABLE) == {("10.78.0.0/24", None, "vhnic1", "10.78.0.1")}

    host.apply(broken, EMPTY)
    assert host.rules(STORAGE_TABLE) == set() and host.table(STORAGE_TABLE) == set()
    assert host.rules(UPLINK_TABLE) == set() and host.table(UPLINK_TABLE) == set()
