"""``Host.getCapabilities``: everything the engine needs to admit a host into a cluster.

The engine decides from this reply whether a host may join a cluster (CPU model and flags,
emulated machine types, cluster levels, KVM, FIPS...), how big it is (CPU topology, memory,
NUMA) and what it runs (distribution, kernel, package versions), and it reads the network
inventory to match its logical networks. The keys and their quirky types (many numbers as
strings, booleans as ``"true"``) are VDSM's, because that is what the engine parses.

Sources: /proc and /sys below ``root`` (pure readers in the sibling modules), libvirt for the
capabilities documents and the daemon versions, the package manager and ``findmnt`` through the
command runner, and iproute2 for networks (:mod:`virthost.host.network`). libvirt comes through
a factory returning a connection, so the caller decides how the libvirt calls are time-boxed;
the commands are time-boxed with ``CapabilitiesConfig.command_timeout`` each.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import virthost
from virthost.common.commands import Runner
from virthost.host import (
    cpuinfo,
    libvirtcaps,
    meminfo,
    network,
    numa,
    osinfo,
    packages,
)
from virthost.host.libvirtcaps import DomainCpuCaps, LibvirtHostCaps

log = logging.getLogger("virthost.host.capabilities")

SUPPORTED_ENGINES = ("4.2", "4.3", "4.4", "4.5")
# Cluster level -> the oldest libvirt (major, minor) providing what that level needs.
_CLUSTER_LEVEL_LIBVIRT = (
    ("4.2", (0, 0)),
    ("4.3", (0, 0)),
    ("4.4", (0, 0)),
    ("4.5", (6, 6)),
    ("4.6", (7, 0)),
    ("4.7", (7, 10)),
)
_FILE_BLOCK_SIZES = [0, 512, 4096]  # 0: detect the storage's block size
DEFAULT_BLOCK_SIZES: dict[str, list[int]] = {
    "FCP": [512],
    "ISCSI": [512],
    "GLUSTERFS": _FILE_BLOCK_SIZES,
    "LOCALFS": _FILE_BLOCK_SIZES,
    "NFS": _FILE_BLOCK_SIZES,
    "POSIXFS": _FILE_BLOCK_SIZES,
}


class LibvirtConnection(Protocol):
    """The libvirt calls capabilities need (``libvirt.virConnect`` provides them)."""

    def getCapabilities(self) -> str: ...

    def getDomainCapabilities(
        self,
        emulatorbin: str | None,
        arch: str | None,
        machine: str | None,
        virttype: str | None,
        flags: int = 0,
    ) -> str: ...

    def getVersion(self) -> int: ...

    def getLibVersion(self) -> int: ...


@dataclass(frozen=True)
class CapabilitiesConfig:
    """Settings VDSM keeps in vdsm.conf; memory in MiB."""

    host_mem_reserve_mib: int = 256
    extra_mem_reserve_mib: int = 65
    guest_overhead_mib: int = 65
    software_version: str = virthost.__version__
    software_revision: str = "0"
    version_name: str = "virthost"
    supported_engines: tuple[str, ...] = SUPPORTED_ENGINES
    report_threads_as_cores: bool = False
    domain_virt_type: str | None = None  # None: "kvm" with /dev/kvm, else "qemu"
    arch: str | None = None  # None: this machine's
    command_timeout: float = 10.0
    hidden_nics: tuple[str, ...] = ()
    domain_versions: tuple[int, ...] = (0, 2, 3, 4, 5)
    supported_block_size: Mapping[str, list[int]] = field(
        default_factory=lambda: DEFAULT_BLOCK_SIZES
    )


@dataclass(frozen=True)
class LibvirtFacts:
    caps: LibvirtHostCaps
    domcaps: DomainCpuCaps | None
    lib_version: str | None
    qemu_version: str | None


def read_libvirt_facts(conn: LibvirtConnection, arch: str, virt_type: str) -> LibvirtFacts:
    """Both capabilities documents and the versions; only the first one is mandatory."""
    caps = libvirtcaps.parse_capabilities(conn.getCapabilities())
    domcaps = None
    try:
        domcaps = libvirtcaps.parse_domain_capabilities(
            conn.getDomainCapabilities(None, arch, None, virt_type, 0)
        )
    except Exception as exc:  # libvirtError or bad XML: fewer cpuFlags, not no capabilities
        log.warning("No %s domain capabilities for %s: %s", virt_type, arch, exc)
    lib_version = qemu_version = None
    try:
        lib_version = libvirtcaps.version_string(conn.getLibVersion())
        qemu_version = libvirtcaps.version_string(conn.getVersion())
    except Exception as exc:
        log.warning("Cannot read libvirt/QEMU versions: %s", exc)
    return LibvirtFacts(caps, domcaps, lib_version, qemu_version)


def cluster_levels(libvirt_version: str | None) -> list[str]:
    """Cluster levels this host supports, limited by the libvirt version."""
    try:
        major, minor = (int(part) for part in (libvirt_version or "").split(".")[:2])
    except ValueError:
        major, minor = 0, 0
    return [level for level, needed in _CLUSTER_LEVEL_LIBVIRT if (major, minor) >= needed]


def _cpu_keys(root: str, config: CapabilitiesConfig, facts: LibvirtFacts) -> dict[str, Any]:
    info = cpuinfo.read_cpuinfo(root)
    placements = cpuinfo.read_cpu_placements(root)
    counts = cpuinfo.read_cpu_counts(root)
    nodes = numa.read_numa_nodes(root)
    node_of = numa.cpu_to_node(nodes)
    cores = counts.threads if config.report_threads_as_cores else counts.cores
    return {
        "cpuCores": str(cores),
        "cpuThreads": str(counts.threads),
        "cpuSockets": str(counts.sockets),
        "onlineCpus": ",".join(str(c) for c in cpuinfo.read_online_cpus(root)),
        "cpuTopology": [
            {
                "cpu_id": p.cpu_id,
                "numa_cell_id": node_of.get(p.cpu_id, 0),
                "socket_id": p.socket_id,
                "die_id": p.die_id,
                "core_id": p.core_id,
            }
            for p in placements
        ],
        "cpuSpeed": info.speed_mhz,
        "cpuModel": info.model,
        "cpuFlags": libvirtcaps.cpu_flags(info.flags, facts.domcaps),
        "numaNodes": numa.numa_nodes_caps(nodes),
        "numaNodeDistance": numa.numa_distance_caps(nodes),
        "autoNumaBalancing": numa.autonuma_status(root),
    }


def _host_keys(root: str, config: CapabilitiesConfig) -> dict[str, Any]:
    mem = meminfo.read_meminfo(root)
    reserved = config.host_mem_reserve_mib + config.extra_mem_reserve_mib
    return {
        "kvmEnabled": "true" if osinfo.kvm_enabled(root) else "false",
        "vmTypes": ["kvm"],
        "memSize": str(meminfo.total_mib(mem)),
        "reservedMem": str(reserved),
        "guestOverhead": str(config.guest_overhead_mib),
        "operatingSystem": osinfo.operating_system(root),
        "kernelArgs": osinfo.kernel_args(root),
        "realtimeKernel": osinfo.is_realtime_kernel(osinfo.uname_version()),
        "nestedVirtualization": osinfo.nested_virtualization(root),
        "selinux": {"mode": osinfo.selinux_mode(root)},
        "fipsEnabled": osinfo.fips_enabled(root),
        "hugepages": osinfo.hugepage_sizes(root),
        "rngSources": osinfo.rng_sources(root),
        "kdumpStatus": osinfo.kdump_status(root),
        "ISCSIInitiatorName": osinfo.iscsi_initiator_name(root),
        "hooks": {},
        "liveSnapshot": "true",
        "liveMerge": "true",
        "domain_versions": list(config.domain_versions),
        "supported_block_size": {k: list(v) for k, v in config.supported_block_size.items()},
    }


def collect_capabilities(
    libvirt_conn_factory: Callable[[], LibvirtConnection],
    runner: Runner,
    host_uuid: str,
    *,
    root: str = "/",
    config: CapabilitiesConfig | None = None,
    network_caps: Mapping[str, Any] | None = None,
    net_config_dirty: bool = False,
) -> dict[str, Any]:
    """Build the ``Host.getCapabilities`` reply.

    ``network_caps``, when given, is used instead of reading the network inventory (the caller
    may already hold a fresh one). libvirt or ``ip`` failures propagate; optional parts (domain
    capabilities, package versions, the /boot UUID) are left out or empty when unavailable.
    """
    config = config or CapabilitiesConfig()
    arch = config.arch or os.uname().machine
    kvm = osinfo.kvm_enabled(root)
    virt_type = config.domain_virt_type or ("kvm" if kvm else "qemu")
    facts = read_libvirt_facts(libvirt_conn_factory(), arch, virt_type)
    timeout = config.command_timeout

    caps: dict[str, Any] = {"uuid": host_uuid}
    caps.update(_cpu_keys(root, config, facts))
    caps.update(_host_keys(root, config))
    caps["emulatedMachines"] = facts.caps.emulated_machines(arch)
    if facts.caps.tsc_frequency:
        caps["tscFrequency"] = facts.caps.tsc_frequency
        caps["tscScaling"] = facts.caps.tsc_scaling
    caps["packages2"] = packages.package_versions(
        runner,
        timeout,
        own_name="virthost",
        own_version=config.software_version,
        libvirt_version=facts.lib_version,
        qemu_version=facts.qemu_version,
        root=root,
    )
    caps.update(
        {
            "version_name": config.version_name,
            "software_version": config.software_version,
            "software_revision": config.software_revision,
            "supportedENGINEs": list(config.supported_engines),
            "clusterLevels": cluster_levels(facts.lib_version),
        }
    )
    boot = osinfo.boot_uuid(runner, timeout)
    if boot:
        caps["boot_uuid"] = boot
    caps["hostname"] = socket.gethostname()
    caps["fqdn"] = socket.getfqdn()
    if network_caps is None:
        network_caps = network.network_capabilities(
            runner, root=root, timeout=timeout, hidden=config.hidden_nics
        )
    caps.update(network_caps)
    caps["netConfigDirty"] = str(net_config_dirty)
    return caps
