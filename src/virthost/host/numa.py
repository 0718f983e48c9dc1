"""NUMA topology of the host from /sys/devices/system/node.

The engine pins vCPUs and places virtual NUMA nodes against the host's nodes, so capabilities
carry, per node, its CPUs, its memory and the huge pages it holds (``numaNodes``) plus the
distance matrix (``numaNodeDistance``); statistics carry each node's free memory and let the
engine group per-CPU usage by node. Kernels built without NUMA have no node directory at all;
the host is then reported as a single node 0 owning every online CPU and all memory, which is
also what libvirt does.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from virthost.host import cpuinfo, hostfs, meminfo

_SYS_NODE = "/sys/devices/system/node"
_LOCAL_DISTANCE = 10
_NODE_DIR = re.compile(r"^node(\d+)$")
_HUGEPAGE_DIR = re.compile(r"^hugepages-(\d+)kB$")


@dataclass(frozen=True)
class NumaNode:
    """One node; memory in KiB, ``hugepages`` maps a page size in KiB to the pages reserved."""

    index: int
    cpus: tuple[int, ...]
    total_kib: int
    free_kib: int
    distances: tuple[int, ...]
    hugepages: dict[int, int] = field(default_factory=dict)


def parse_node_meminfo(text: str) -> dict[str, int]:
    """A node's ``meminfo`` (``Node 0 MemTotal:  5335244 kB``) as ``{"MemTotal": 5335244}``."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        if ":" not in line:
            continue
        key, rest = line.split(":", 1)
        words = key.split()
        fields = rest.split()
        if not words or not fields:
            continue
        try:
            values[words[-1]] = int(fields[0])
        except ValueError:
            continue
    return values


def hugepage_size_from_dir(name: str) -> int | None:
    """``"hugepages-2048kB"`` -> 2048."""
    match = _HUGEPAGE_DIR.match(name)
    return int(match.group(1)) if match else None


def _node_hugepages(root: str, node_dir: str) -> dict[int, int]:
    pages: dict[int, int] = {}
    for name in hostfs.list_dir(root, f"{node_dir}/hugepages"):
        size = hugepage_size_from_dir(name)
        if size is not None:
            pages[size] = hostfs.read_int(root, f"{node_dir}/hugepages/{name}/nr_hugepages") or 0
    return pages


def node_indexes(root: str = "/") -> list[int]:
    indexes = []
    for name in hostfs.list_dir(root, _SYS_NODE):
        match = _NODE_DIR.match(name)
        if match:
            indexes.append(int(match.group(1)))
    return sorted(indexes)


def _single_node(root: str) -> NumaNode:
    mem = meminfo.read_meminfo(root)
    return NumaNode(
        index=0,
        cpus=tuple(cpuinfo.read_online_cpus(root)),
        total_kib=mem.get("MemTotal", 0),
        free_kib=mem.get("MemFree", 0),
        distances=(_LOCAL_DISTANCE,),
        hugepages={},
    )


def read_numa_nodes(root: str = "/") -> list[NumaNode]:
    """Every NUMA node of the host (a synthetic node 0 when the kernel exposes none)."""
    indexes = node_indexes(root)
    if not indexes:
        return [_single_node(root)]
    nodes = []
    for index in indexes:
        node_dir = f"{_SYS_NODE}/node{index}"
        mem = parse_node_meminfo(hostfs.read_text(root, f"{node_dir}/meminfo") or "")
        distance_text = hostfs.read_line(root, f"{node_dir}/distance") or ""
        nodes.append(
            NumaNode(
                index=index,
                cpus=tuple(
                    cpuinfo.parse_cpu_list(hostfs.read_line(root, f"{node_dir}/cpulist") or "")
                ),
                total_kib=mem.get("MemTotal", 0),
                free_kib=mem.get("MemFree", 0),
                distances=tuple(int(d) for d in distance_text.split()),
                hugepages=_node_hugepages(root, node_dir),
            )
        )
    return nodes


def cpu_to_node(nodes: Sequence[NumaNode]) -> dict[int, int]:
    return {cpu: node.index for node in nodes for cpu in node.cpus}


def base_page_kib() -> int:
    return os.sysconf("SC_PAGE_SIZE") // 1024


def numa_nodes_caps(nodes: Sequence[NumaNode], page_kib: int | None = None) -> dict[str, Any]:
    """VDSM's ``numaNodes``: ``{"0": {"cpus": [...], "totalMemory": "MiB", "hugepages": ...}}``.

    ``hugepages`` maps each page size in KiB (the base page size included, as libvirt reports
    it) to ``{"totalPages": "N"}``; base pages are the memory not reserved as huge pages.
    """
    page = page_kib if page_kib is not None else base_page_kib()
    result: dict[str, Any] = {}
    for node in nodes:
        huge_kib = sum(size * count for size, count in node.hugepages.items())
        pages: dict[str, dict[str, str]] = {
            str(page): {"totalPages": str(max(node.total_kib - huge_kib, 0) // page)}
        }
        for size, count in sorted(node.hugepages.items()):
            pages[str(size)] = {"totalPages": str(count)}
        result[str(node.index)] = {
            "cpus": list(node.cpus),
            "totalMemory": str(node.total_kib // 1024),
            "hugepages": pages,
        }
    return result


def numa_distance_caps(nodes: Sequence[NumaNode]) -> dict[str, list[int]]:
    """VDSM's ``numaNodeDistance``: each node's distances to all nodes, in node order."""
    return {str(node.index): list(node.distances) for node in nodes}


def autonuma_status(root: str = "/") -> int:
    """VDSM's ``autoNumaBalancing``: 0 disabled, 1 enabled, 2 unknown."""
    value = hostfs.read_line(root, "/proc/sys/kernel/numa_balancing")
    if value == "0":
        return 0
    if value == "1":
        return 1
    return 2
