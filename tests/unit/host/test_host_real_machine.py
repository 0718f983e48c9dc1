"""The readers against this machine's /proc, /sys, libvirt and iproute2 (fast, read-only)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from virthost.common.commands import CommandRunner
from virthost.host import capabilities, cpuinfo, hardware, meminfo, network, numa, osinfo


@pytest.fixture(scope="module")
def libvirt_conn() -> Iterator[Any]:
    libvirt = pytest.importorskip("libvirt")
    try:
        conn = libvirt.open("qemu:///system")
    except libvirt.libvirtError as exc:
        pytest.skip(f"libvirtd not reachable: {exc}")
    yield conn
    conn.close()


def test_cpu_matches_the_kernel() -> None:
    online = cpuinfo.read_online_cpus()
    assert len(online) == len(os.sched_getaffinity(0)) or len(online) >= 1
    counts = cpuinfo.read_cpu_counts()
    assert counts.threads == len(online)
    assert 1 <= counts.sockets <= counts.cores <= counts.threads
    info = cpuinfo.read_cpuinfo()
    assert info.model and info.flags


def test_memory_and_numa() -> None:
    mem = meminfo.read_meminfo()
    assert meminfo.total_mib(mem) > 0 and 0 <= meminfo.used_percent(mem) <= 100
    nodes = numa.read_numa_nodes()
    assert nodes and all(node.total_kib > 0 for node in nodes)
    assert sorted(numa.cpu_to_node(nodes)) == cpuinfo.read_online_cpus()


def test_os_facts() -> None:
    system = osinfo.operating_system()
    assert system["name"] and system["pretty_name"]
    assert osinfo.kernel_args()
    assert osinfo.selinux_mode() in ("-1", "0", "1")


def test_hardware_info_never_raises() -> None:
    info = hardware.read_hardware_info(CommandRunner(), timeout=10.0)
    assert set(info) <= {
        "systemManufacturer",
        "systemProductName",
        "systemVersion",
        "systemSerialNumber",
        "systemUUID",
        "systemFamily",
    }


def test_network_inventory_and_statistics() -> None:
    caps = network.network_capabilities(CommandRunner(), timeout=10.0)
    names = set(os.listdir("/sys/class/net")) - {"lo"}
    reported = set(caps["nics"]) | set(caps["bridges"]) | set(caps["bondings"]) | set(caps["vlans"])
    assert reported <= names
    stats = network.network_statistics()
    assert set(stats["network"]) <= names


def test_full_capabilities(libvirt_conn: Any) -> None:
    caps = capabilities.collect_capabilities(
        lambda: libvirt_conn, CommandRunner(), "00000000-0000-0000-0000-000000000001"
    )
    assert caps["emulatedMachines"]
    assert int(caps["cpuThreads"]) == len(cpuinfo.read_online_cpus())
    assert caps["packages2"]["libvirt"]["version"].count(".") == 2
    assert caps["clusterLevels"][0] == "4.2"
    assert caps["kvmEnabled"] in ("true", "false")
    assert "nics" in caps and "supportsIPv6" in caps
    if caps["kvmEnabled"] == "true":
        assert any(flag.startswith("model_") for flag in caps["cpuFlags"].split(","))
