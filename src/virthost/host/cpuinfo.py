"""The host CPU as the engine sees it: model, flags, speed, topology and online CPUs.

The engine places a host in a cluster by its CPU (model and flags) and sizes VMs by its topology
(sockets, cores, threads), so these values go into ``Host.getCapabilities``. ``/proc/cpuinfo``
gives the model, flags and clock for every architecture (with different key names on x86, ARM,
POWER and s390); sysfs gives the topology of each online CPU, which is more reliable than the
optional ``physical id`` / ``core id`` lines of cpuinfo, which are only used as a fallback.

Parsing functions take text and are pure; ``read_*`` functions take the root of the file tree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from virthost.host import hostfs

_PROC_CPUINFO = "/proc/cpuinfo"
_SYS_CPU = "/sys/devices/system/cpu"


@dataclass(frozen=True)
class CpuInfo:
    """What /proc/cpuinfo says; ``speed_mhz`` is kept as the text the kernel printed."""

    model: str
    flags: tuple[str, ...]
    speed_mhz: str
    sockets: int
    cores: int
    threads: int


@dataclass(frozen=True)
class CpuPlacement:
    """Where one online logical CPU sits (VDSM's ``cpuTopology`` entries)."""

    cpu_id: int
    socket_id: int
    die_id: int
    core_id: int


@dataclass(frozen=True)
class CpuCounts:
    sockets: int
    cores: int
    threads: int


def parse_cpu_list(text: str) -> list[int]:
    """Expand a kernel CPU list such as ``"0-3,8,10-11"`` (empty text gives ``[]``)."""
    cpus: list[int] = []
    for part in text.strip().split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            first, last = part.split("-", 1)
            cpus.extend(range(int(first), int(last) + 1))
        else:
            cpus.append(int(part))
    return cpus


def _processor_blocks(text: str) -> list[dict[str, str]]:
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
                current = {}
            continue
        if ":" not in line:
            continue
        key, value = line.split(":", 1)
        current.setdefault(key.strip(), value.strip())
    if current:
        blocks.append(current)
    return blocks


def _first(blocks: list[dict[str, str]], *keys: str) -> str | None:
    for key in keys:
        for block in blocks:
            if key in block:
                return block[key]
    return None


def _speed(blocks: list[dict[str, str]]) -> str:
    value = _first(blocks, "cpu MHz", "cpu MHz dynamic")
    if value is not None:
        return value
    clock = _first(blocks, "clock")  # POWER: "3425.000000MHz"
    if clock is not None:
        return clock[:-3] if clock.lower().endswith("mhz") else clock
    bogomips = _first(blocks, "BogoMIPS")  # ARM has no clock line
    return bogomips if bogomips is not None else "unavailable"


def _model(blocks: list[dict[str, str]]) -> str:
    value = _first(blocks, "model name", "cpu", "CPU part")
    if value is not None:
        return value
    for block in blocks:  # s390: "processor 0: version = ..., machine = 3906"
        for key, line in block.items():
            if key.startswith("processor "):
                match = re.search(r"\bmachine\s*=\s*(\w+)", line)
                if match:
                    return match.group(1)
    return "unavailable"


def parse_cpuinfo(text: str) -> CpuInfo:
    """Model, flags, speed and a best-effort topology from /proc/cpuinfo text."""
    blocks = _processor_blocks(text)
    flags_text = _first(blocks, "flags", "Features", "features") or ""
    processors = [b for b in blocks if "processor" in b]
    threads = len(processors) or 1
    sockets = {b.get("physical id", "0") for b in processors}
    if all("core id" in b for b in processors) and processors:
        cores = len({(b.get("physical id", "0"), b["core id"]) for b in processors})
    else:
        cores = threads
    return CpuInfo(
        model=_model(blocks),
        flags=tuple(flags_text.split()),
        speed_mhz=_speed(blocks),
        sockets=max(len(sockets), 1),
        cores=cores,
        threads=threads,
    )


def count_topology(placements: list[CpuPlacement]) -> CpuCounts:
    """Sockets, physical cores and logical CPUs among ``placements`` (which must not be empty)."""
    sockets = {p.socket_id for p in placements}
    cores = {(p.socket_id, p.die_id, p.core_id) for p in placements}
    return CpuCounts(sockets=len(sockets), cores=len(cores), threads=len(placements))


def read_cpuinfo(root: str = "/") -> CpuInfo:
    return parse_cpuinfo(hostfs.read_text(root, _PROC_CPUINFO) or "")


def read_online_cpus(root: str = "/") -> list[int]:
    """Online logical CPUs; falls back to the ``processor`` entries of /proc/cpuinfo."""
    text = hostfs.read_line(root, f"{_SYS_CPU}/online")
    if text:
        return parse_cpu_list(text)
    blocks = _processor_blocks(hostfs.read_text(root, _PROC_CPUINFO) or "")
    return [int(b["processor"]) for b in blocks if b.get("processor", "").isdigit()]


def read_cpu_placements(root: str = "/") -> list[CpuPlacement]:
    """The sysfs topology of every online CPU (empty when sysfs has no topology)."""
    placements: list[CpuPlacement] = []
    for cpu in read_online_cpus(root):
        base = f"{_SYS_CPU}/cpu{cpu}/topology"
        socket_id = hostfs.read_int(root, f"{base}/physical_package_id")
        core_id = hostfs.read_int(root, f"{base}/core_id")
        if socket_id is None or core_id is None:
            return []
        die_id = hostfs.read_int(root, f"{base}/die_id") or 0
        placements.append(CpuPlacement(cpu, max(socket_id, 0), max(die_id, 0), core_id))
    return placements


def read_cpu_counts(root: str = "/") -> CpuCounts:
    """Topology counts from sysfs, or from /proc/cpuinfo when sysfs lacks them."""
    placements = read_cpu_placements(root)
    if placements:
        return count_topology(placements)
    info = read_cpuinfo(root)
    return CpuCounts(sockets=info.sockets, cores=info.cores, threads=info.threads)
