"""The network inventory reader (scripted ``ip``, then a real namespace) and statistics."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from unit.host.host_fakes import FakeRunner, data_text, make_tree, result
from virthost.common import errors
from virthost.common.commands import CommandResult, CommandRunner
from virthost.host import network

NET_DEV = (
    "Inter-|   Receive                                                |  Transmit\n"
    " face |bytes    packets errs drop fifo frame compressed multicast|"
    "bytes    packets errs drop fifo colls carrier compressed\n"
    "    lo: 3193 29 0 0 0 0 0 0 3193 29 0 0 0 0 0 0\n"
    "  eth0: 101735104 2614 1 2 0 0 0 0 134420 1420 3 4 0 0 0 0\n"
    " vnet0: 5000 10 0 7 0 0 0 0 6000 12 0 1 0 0 0 0\n"
)


def _ip_runner() -> FakeRunner:
    def reply(name: str) -> CommandResult:
        return result(("ip",), data_text(name))

    return FakeRunner(
        {
            ("ip", "-json", "-details", "link", "show"): reply("ip_link_host.json"),
            ("ip", "-json", "addr", "show"): reply("ip_addr_host.json"),
            ("ip", "-json", "-4", "route", "show"): reply("ip_route4_host.json"),
            ("ip", "-json", "-6", "route", "show"): reply("ip_route6_host.json"),
        }
    )


def test_reader_combines_ip_and_sysfs(tmp_path: Path) -> None:
    root = make_tree(
        tmp_path,
        {
            "/sys/class/net/eth0/speed": "25000\n",
            "/proc/sys/net/ipv6/conf/eth0/autoconf": "0\n",
            "/proc/net/if_inet6": "",
            "/etc/resolv.conf": "nameserver 192.0.2.53\n",
        },
    )
    runner = _ip_runner()
    caps = network.network_capabilities(runner, root=root, timeout=3.0)
    eth0 = caps["nics"]["eth0"]
    assert eth0["speed"] == 25000 and eth0["ipv6autoconf"] is False
    assert caps["nics"]["ifb0"]["speed"] == 0
    assert caps["nameservers"] == ["192.0.2.53"] and caps["supportsIPv6"] is True
    assert all(timeout == 3.0 for _, timeout, _ in runner.calls)
    assert len(runner.calls) == 4


def test_netns_runs_ip_inside_the_namespace() -> None:
    seen: list[Sequence[str]] = []

    def answer(argv: Sequence[str]) -> CommandResult:
        seen.append(argv)
        if argv[1:3] == ("netns", "exec"):
            return result(argv, "/sys/class/net/eth0/speed:1000\n", rc=2)
        return result(argv, "[]")

    runner = FakeRunner({("ip",): answer})
    runner.replies[("ip", "-n", "ns1", "-json", "-details", "link", "show")] = result(
        ("ip",), data_text("ip_link_host.json")
    )
    caps = network.network_capabilities(runner, netns="ns1")
    assert caps["nics"]["eth0"]["speed"] == 1000
    assert all(argv[:3] == ("ip", "-n", "ns1") for argv in seen if argv[1] != "netns")
    grep = [argv for argv in seen if argv[1] == "netns"]
    assert grep and grep[0][:6] == ("ip", "netns", "exec", "ns1", "grep", "-s")


def test_ip_failure_propagates() -> None:
    runner = FakeRunner({("ip",): errors.CommandTimeout("ip hung")})
    with pytest.raises(errors.CommandTimeout):
        network.network_capabilities(runner)
    garbage = FakeRunner({("ip",): result(("ip",), "not json")})
    with pytest.raises(errors.CommandError):
        network.network_capabilities(garbage)


def test_network_statistics(tmp_path: Path) -> None:
    root = make_tree(
        tmp_path,
        {
            "/proc/net/dev": NET_DEV,
            "/sys/class/net/eth0/speed": "10000\n",
            "/sys/class/net/eth0/operstate": "up\n",
            "/sys/class/net/vnet0/speed": "-1\n",
            "/sys/class/net/vnet0/operstate": "unknown\n",
        },
    )
    report = network.network_statistics(root, now=1700000000.5)
    assert sorted(report["network"]) == ["eth0", "vnet0"]
    assert report["network"]["eth0"] == {
        "name": "eth0",
        "rx": "101735104",
        "tx": "134420",
        "rxErrors": "1",
        "txErrors": "3",
        "rxDropped": "2",
        "txDropped": "4",
        "speed": "10000",
        "state": "up",
        "sampleTime": 1700000000.5,
    }
    assert report["network"]["vnet0"]["speed"] == "1000"  # unknown speed, VDSM's default
    assert report["rxDropped"] == 9 and report["txDropped"] == 5


# --- a real namespace -----------------------------------------------------------------------


def _can_use_netns() -> bool:
    return os.geteuid() == 0 and shutil.which("ip") is not None


@pytest.fixture
def scratch_netns() -> Iterator[str]:
    if not _can_use_netns():
        pytest.skip("needs root and iproute2")
    name = f"vhtest-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True, timeout=10)
    try:
        for args in (
            ["link", "add", "br0", "type", "bridge", "stp_state", "1"],
            ["link", "add", "vA", "type", "veth", "peer", "name", "vB"],
            ["link", "set", "vA", "master", "br0"],
            ["link", "set", "vB", "mtu", "9000"],
            ["link", "set", "br0", "up"],
            ["link", "set", "vA", "up"],
            ["link", "set", "vB", "up"],
            ["addr", "add", "10.88.0.1/24", "dev", "br0"],
            ["addr", "add", "10.88.0.2/24", "dev", "br0"],
            ["addr", "add", "fd88::1/64", "dev", "br0", "nodad"],
            ["route", "add", "default", "via", "10.88.0.254"],
            ["addr", "add", "10.99.0.1/24", "dev", "vB"],
        ):
            subprocess.run(["ip", "-n", name, *args], check=True, timeout=10)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False, timeout=10)


def test_inventory_of_a_real_namespace(scratch_netns: str) -> None:
    caps = network.network_capabilities(CommandRunner(), netns=scratch_netns, timeout=10.0)
    assert sorted(caps["nics"]) == ["vA", "vB"]
    assert list(caps["bridges"]) == ["br0"]
    bridge = caps["bridges"]["br0"]
    assert bridge["ports"] == ["vA"] and bridge["stp"] == "on"
    assert bridge["addr"] == "10.88.0.1" and bridge["netmask"] == "255.255.255.0"
    assert bridge["ipv4addrs"] == ["10.88.0.1/24", "10.88.0.2/24"]
    assert bridge["ipv6addrs"] == ["fd88::1/64"]
    assert bridge["gateway"] == "10.88.0.254" and bridge["ipv4defaultroute"] is True
    assert bridge["opts"]["stp_state"] == "1"
    veth = caps["nics"]["vB"]
    assert veth["mtu"] == 9000 and veth["ipv4addrs"] == ["10.99.0.1/24"]
    assert veth["speed"] == 10000  # veth reports 10 Gb/s in sysfs, read inside the namespace
    assert veth["ipv6autoconf"] is True
    assert caps["nics"]["vA"]["hwaddr"] != veth["hwaddr"]
    assert caps["vlans"] == {} and caps["bondings"] == {}
