"""/proc/meminfo figures and the NUMA topology from sysfs."""

from __future__ import annotations

from pathlib import Path

from unit.host.host_fakes import data_text, make_tree
from virthost.host import meminfo, numa

MEMINFO = """\
MemTotal:       16384000 kB
MemFree:         4096000 kB
MemAvailable:   10000000 kB
Buffers:          102400 kB
Cached:          2048000 kB
SwapTotal:       2097148 kB
SwapFree:        1048576 kB
AnonHugePages:    409600 kB
SReclaimable:     204800 kB
HugePages_Total:       0
Hugepagesize:       2048 kB
"""

NODE0_MEMINFO = """\
Node 0 MemTotal:        8388608 kB
Node 0 MemFree:         2097152 kB
Node 0 MemUsed:         6291456 kB
Node 0 HugePages_Total:     0
"""
NODE1_MEMINFO = NODE0_MEMINFO.replace("Node 0", "Node 1").replace("2097152", "4194304")


def test_parse_meminfo_keeps_numbers_without_units() -> None:
    values = meminfo.parse_meminfo(MEMINFO)
    assert values["MemTotal"] == 16384000
    assert values["HugePages_Total"] == 0
    assert values["Hugepagesize"] == 2048


def test_vdsm_memory_figures() -> None:
    values = meminfo.parse_meminfo(MEMINFO)
    assert meminfo.total_mib(values) == 16000
    # free + cached + buffers + reclaimable slab = 6451200 kB
    assert meminfo.free_mib(values) == 6300
    # free + cached + buffers = 6246400 of 16384000 -> 38.125 % free -> 62 % used
    assert meminfo.used_percent(values) == 62
    assert meminfo.used_percent({}) == 0


def test_this_machines_meminfo_parses() -> None:
    values = meminfo.parse_meminfo(data_text("proc_meminfo.txt"))
    assert values["MemTotal"] > 0 and "MemFree" in values and "SwapTotal" in values


def _two_node_tree(tmp_path: Path) -> str:
    base = "/sys/devices/system/node"
    return make_tree(
        tmp_path,
        {
            f"{base}/online": "0-1\n",
            f"{base}/node0/cpulist": "0-1,4-5\n",
            f"{base}/node0/meminfo": NODE0_MEMINFO,
            f"{base}/node0/distance": "10 21\n",
            f"{base}/node0/hugepages/hugepages-2048kB/nr_hugepages": "512\n",
            f"{base}/node0/hugepages/hugepages-1048576kB/nr_hugepages": "1\n",
            f"{base}/node1/cpulist": "2-3,6-7\n",
            f"{base}/node1/meminfo": NODE1_MEMINFO,
            f"{base}/node1/distance": "21 10\n",
            f"{base}/node1/hugepages/hugepages-2048kB/nr_hugepages": "0\n",
        },
    )


def test_read_two_nodes(tmp_path: Path) -> None:
    nodes = numa.read_numa_nodes(_two_node_tree(tmp_path))
    assert [n.index for n in nodes] == [0, 1]
    assert nodes[0].cpus == (0, 1, 4, 5)
    assert nodes[1].free_kib == 4194304
    assert nodes[0].distances == (10, 21)
    assert nodes[0].hugepages == {2048: 512, 1048576: 1}
    assert numa.cpu_to_node(nodes)[6] == 1


def test_capabilities_format(tmp_path: Path) -> None:
    nodes = numa.read_numa_nodes(_two_node_tree(tmp_path))
    caps = numa.numa_nodes_caps(nodes, page_kib=4)
    assert caps["0"]["cpus"] == [0, 1, 4, 5]
    assert caps["0"]["totalMemory"] == "8192"
    # 8 GiB minus 1 GiB minus 512 x 2 MiB of huge pages, in 4 KiB pages.
    assert caps["0"]["hugepages"] == {
        "4": {"totalPages": str((8388608 - 1048576 - 1048576) // 4)},
        "2048": {"totalPages": "512"},
        "1048576": {"totalPages": "1"},
    }
    assert numa.numa_distance_caps(nodes) == {"0": [10, 21], "1": [21, 10]}


def test_kernel_without_numa_is_one_node(tmp_path: Path) -> None:
    root = make_tree(
        tmp_path, {"/proc/meminfo": MEMINFO, "/sys/devices/system/cpu/online": "0-3\n"}
    )
    [node] = numa.read_numa_nodes(root)
    assert node.index == 0 and node.cpus == (0, 1, 2, 3)
    assert node.total_kib == 16384000 and node.distances == (10,)


def test_autonuma_status(tmp_path: Path) -> None:
    assert numa.autonuma_status(str(tmp_path)) == 2
    root = make_tree(tmp_path, {"/proc/sys/kernel/numa_balancing": "1\n"})
    assert numa.autonuma_status(root) == 1
