"""One snapshot of the host's counters, taken by the periodic host-sampling job.

``Host.getStats`` reports rates (CPU usage, network throughput), which need two readings of
cumulative kernel counters some seconds apart. A :class:`HostSample` is one such reading: CPU
time per CPU and in total (/proc/stat), the daemon's own CPU time, threads and RSS
(/proc/<pid>/stat), load average, memory, NUMA free memory, interface counters, transparent
and explicit huge pages, and KSM activity (including the ``ksmd`` kernel thread's CPU time).

Samples are immutable so the sampler can hand them to API threads without copying. Parsers are
pure functions over file text; :func:`read_sample` does the file reads below ``root``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from virthost.host import hostfs, meminfo, netdev, numa

_KSM = "/sys/kernel/mm/ksm"
_THP_ENABLED = "/sys/kernel/mm/transparent_hugepage/enabled"
_HUGEPAGES = "/sys/kernel/mm/hugepages"
_HUGEPAGE_FIELDS = (
    "free_hugepages",
    "nr_hugepages",
    "nr_hugepages_mempolicy",
    "nr_overcommit_hugepages",
    "resv_hugepages",
    "surplus_hugepages",
)


@dataclass(frozen=True)
class CpuTimes:
    """Clock ticks spent in user (incl. nice), system and idle mode."""

    user: int
    sys: int
    idle: int


@dataclass(frozen=True)
class ProcStat:
    total: CpuTimes
    per_cpu: dict[int, CpuTimes]
    boot_time: int | None


@dataclass(frozen=True)
class ProcessSample:
    """A process's CPU clock ticks, thread count and resident memory."""

    user_ticks: int
    sys_ticks: int
    threads: int
    rss_kib: int


@dataclass(frozen=True)
class KsmSample:
    run: bool
    pages_to_scan: int
    pages_sharing: int
    merge_across_nodes: bool
    ksmd_ticks: int | None


@dataclass(frozen=True)
class HostSample:
    """Everything read in one sampling tick; ``mono`` orders samples, ``wall`` is reported."""

    mono: float
    wall: float
    stat: ProcStat
    process: ProcessSample | None
    loadavg5: str
    meminfo: dict[str, int]
    interfaces: dict[str, netdev.InterfaceSample]
    numa_memory: dict[int, tuple[int, int]]
    cpu_nodes: dict[int, int]
    thp_state: str
    hugepages: dict[str, dict[str, int]] = field(default_factory=dict)
    ksm: KsmSample | None = None


def _cpu_times(fields: list[str]) -> CpuTimes:
    values = [int(f) for f in fields[:4]] + [0] * (4 - min(len(fields), 4))
    user, nice, system, idle = values[:4]
    return CpuTimes(user=user + nice, sys=system, idle=idle)


def parse_proc_stat(text: str) -> ProcStat:
    """The ``cpu``/``cpuN`` lines and ``btime`` of /proc/stat."""
    total = CpuTimes(0, 0, 0)
    per_cpu: dict[int, CpuTimes] = {}
    boot_time = None
    for line in text.splitlines():
        fields = line.split()
        if not fields:
            continue
        if fields[0] == "cpu":
            total = _cpu_times(fields[1:])
        elif fields[0].startswith("cpu") and fields[0][3:].isdigit():
            per_cpu[int(fields[0][3:])] = _cpu_times(fields[1:])
        elif fields[0] == "btime" and len(fields) > 1:
            boot_time = int(fields[1])
    return ProcStat(total=total, per_cpu=per_cpu, boot_time=boot_time)


def parse_pid_stat(text: str, page_kib: int) -> ProcessSample:
    """/proc/<pid>/stat; the command name may contain spaces, so split after its ``)``."""
    fields = text[text.rindex(")") + 2 :].split()
    # fields[0] is field 3 of proc(5): utime 14, stime 15, num_threads 20, rss 24.
    return ProcessSample(
        user_ticks=int(fields[11]),
        sys_ticks=int(fields[12]),
        threads=int(fields[17]),
        rss_kib=int(fields[21]) * page_kib,
    )


def parse_loadavg(text: str) -> str:
    """The 5-minute load average, as printed (VDSM's ``cpuLoad``)."""
    fields = text.split()
    return fields[1] if len(fields) > 1 else "0.00"


def parse_thp_state(text: str) -> str:
    """The bracketed choice of a sysfs selector: ``"always [madvise] never"`` -> madvise."""
    start, end = text.find("["), text.find("]")
    return text[start + 1 : end] if 0 <= start < end else "never"


def read_process(root: str, pid: int, page_kib: int) -> ProcessSample | None:
    text = hostfs.read_text(root, f"/proc/{pid}/stat")
    if not text:
        return None
    try:
        return parse_pid_stat(text, page_kib)
    except (ValueError, IndexError):
        return None


def find_process(root: str, comm: str) -> int | None:
    """PID of the first process whose ``comm`` is ``comm`` (used once, to find ``ksmd``)."""
    for name in hostfs.list_dir(root, "/proc"):
        if name.isdigit() and hostfs.read_line(root, f"/proc/{name}/comm") == comm:
            return int(name)
    return None


def read_ksm(root: str, ksmd_pid: int | None, page_kib: int) -> KsmSample | None:
    run = hostfs.read_int(root, f"{_KSM}/run")
    if run is None:
        return None
    ksmd = read_process(root, ksmd_pid, page_kib) if ksmd_pid is not None else None
    return KsmSample(
        run=run == 1,
        pages_to_scan=hostfs.read_int(root, f"{_KSM}/pages_to_scan") or 0,
        pages_sharing=hostfs.read_int(root, f"{_KSM}/pages_sharing") or 0,
        merge_across_nodes=hostfs.read_int(root, f"{_KSM}/merge_across_nodes") == 1,
        ksmd_ticks=ksmd.user_ticks + ksmd.sys_ticks if ksmd else None,
    )


def read_hugepages(root: str = "/") -> dict[str, dict[str, int]]:
    """Per huge page size (KiB, as a string key): the kernel's counters plus
    ``vm.free_hugepages`` (pages VMs may still take; nothing is reserved for the host)."""
    state: dict[str, dict[str, int]] = {}
    for name in hostfs.list_dir(root, _HUGEPAGES):
        size = numa.hugepage_size_from_dir(name)
        if size is None:
            continue
        values = {
            key: hostfs.read_int(root, f"{_HUGEPAGES}/{name}/{key}") or 0
            for key in _HUGEPAGE_FIELDS
        }
        values["vm.free_hugepages"] = values["free_hugepages"]
        state[str(size)] = values
    return state


def read_sample(
    root: str,
    pid: int,
    *,
    mono: float,
    wall: float,
    ksmd_pid: int | None = None,
    page_kib: int | None = None,
    skip_interfaces: tuple[str, ...] = ("lo",),
) -> HostSample:
    """Read every counter the host statistics need."""
    page = page_kib if page_kib is not None else os.sysconf("SC_PAGE_SIZE") // 1024
    nodes = numa.read_numa_nodes(root)
    return HostSample(
        mono=mono,
        wall=wall,
        stat=parse_proc_stat(hostfs.read_text(root, "/proc/stat") or ""),
        process=read_process(root, pid, page),
        loadavg5=parse_loadavg(hostfs.read_text(root, "/proc/loadavg") or ""),
        meminfo=meminfo.read_meminfo(root),
        interfaces=netdev.read_interfaces(root, skip_interfaces),
        numa_memory={node.index: (node.total_kib, node.free_kib) for node in nodes},
        cpu_nodes=numa.cpu_to_node(nodes),
        thp_state=parse_thp_state(hostfs.read_text(root, _THP_ENABLED) or ""),
        hugepages=read_hugepages(root),
        ksm=read_ksm(root, ksmd_pid, page),
    )
