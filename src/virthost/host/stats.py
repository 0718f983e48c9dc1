"""``Host.getStats``: host load computed from the two latest samples, in VDSM's wire format.

A periodic job calls :meth:`HostStatsSampler.sample` (every 15 s in VDSM); API threads call
:meth:`HostStatsSampler.stats`, which never touches the system: it only combines the two cached
samples, so a slow /proc or /sys read can delay a sample but never an API reply. A lock guards
the two-sample window; samples are immutable, so the computation runs outside the lock.

Formats follow VDSM, whose engine-facing numbers are mostly strings: percentages are
``"%.2f"`` strings (CPU percentages are of all CPUs together; per-CPU ones of that CPU), integer
counters like ``memUsed`` are ``"%d"`` strings, while memory sizes in MiB (``memFree``,
``swapTotal``...), VM counts and KSM values stay numbers. ``cpuLoad`` is the 5-minute load
average as the kernel printed it. ``elapsedTime`` (daemon uptime) and ``dateTime`` are computed
at call time, so they advance between calls even when no new sample was taken.

The caller adds what this module cannot know: ``storageDomains``, ``haStats``, ``momStatus``,
``v2vJobs`` and ``multipathHealth``.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from virthost.host import meminfo, netdev
from virthost.host.samples import CpuTimes, HostSample, find_process, read_sample

DEFAULT_HOST_MEM_RESERVE_MIB = 256


@dataclass(frozen=True)
class VmSummary:
    """VM figures the VM container knows; memory in MiB."""

    count: int = 0
    active: int = 0
    incoming: int = 0
    outgoing: int = 0
    committed_mib: int = 0
    resident_mib: int = 0


@dataclass(frozen=True)
class ProcessHealth:
    """The daemon's own footprint (for health logging and metrics)."""

    cpu_user: float
    cpu_sys: float
    threads: int
    rss_kib: int


def format_date_time(epoch: float) -> str:
    """VDSM's ``dateTime``: UTC as ``2024-05-01T12:00:00 GMT``."""
    return time.strftime("%Y-%m-%dT%H:%M:%S GMT", time.gmtime(epoch))


class HostStatsSampler:
    """Keeps the two latest :class:`HostSample` and derives ``Host.getStats`` from them.

    ``clock`` is monotonic (intervals, uptime), ``wall_clock`` gives epoch times; ``started``
    is the daemon start on ``clock`` (defaults to construction time).
    """

    def __init__(
        self,
        root: str = "/",
        pid: int | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        started: float | None = None,
        host_mem_reserve_mib: int = DEFAULT_HOST_MEM_RESERVE_MIB,
        clock_ticks: int | None = None,
        page_kib: int | None = None,
        ksmd_pid: int | None = None,
    ) -> None:
        self._root = root
        self._pid = os.getpid() if pid is None else pid
        self._clock = clock
        self._wall_clock = wall_clock
        self._started = clock() if started is None else started
        self._reserve_mib = host_mem_reserve_mib
        self._hz = clock_ticks if clock_ticks is not None else os.sysconf("SC_CLK_TCK")
        self._page_kib = page_kib if page_kib is not None else os.sysconf("SC_PAGE_SIZE") // 1024
        self._ksmd_pid = ksmd_pid
        self._ksmd_looked_up = ksmd_pid is not None
        self._lock = threading.Lock()
        self._window: deque[HostSample] = deque(maxlen=2)

    def _ksmd(self) -> int | None:
        if not self._ksmd_looked_up:
            self._ksmd_pid = find_process(self._root, "ksmd")
            self._ksmd_looked_up = True
        return self._ksmd_pid

    def sample(self) -> None:
        """Read the counters now and make this the latest sample (called periodically)."""
        mono = self._clock()  # taken before the reads: a stuck read yields a stale sample
        new = read_sample(
            self._root,
            self._pid,
            mono=mono,
            wall=self._wall_clock(),
            ksmd_pid=self._ksmd(),
            page_kib=self._page_kib,
        )
        with self._lock:
            if self._window and self._window[-1].mono > new.mono:
                return  # a worker that hung for a long time: keep the fresher sample
            self._window.append(new)

    def _pair(self) -> tuple[HostSample | None, HostSample | None]:
        with self._lock:
            if not self._window:
                return None, None
            return (self._window[0] if len(self._window) == 2 else None), self._window[-1]

    def _percent(self, ticks: int, interval: float) -> float:
        return 100.0 * max(ticks, 0) / (interval * self._hz) if interval > 0 else 0.0

    def process_health(self) -> ProcessHealth | None:
        first, last = self._pair()
        if last is None or last.process is None:
            return None
        proc = last.process
        user = sys = 0.0
        if first is not None and first.process is not None:
            interval = last.mono - first.mono
            user = self._percent(proc.user_ticks - first.process.user_ticks, interval)
            sys = self._percent(proc.sys_ticks - first.process.sys_ticks, interval)
        return ProcessHealth(user, sys, proc.threads, proc.rss_kib)

    def stats(
        self,
        now: float | None = None,
        *,
        vms: VmSummary | None = None,
        net_config_dirty: bool = False,
    ) -> dict[str, Any]:
        """``Host.getStats`` from the cached samples; ``now`` is the epoch time for
        ``dateTime`` (defaults to the wall clock)."""
        first, last = self._pair()
        vms = vms or VmSummary()
        wall = self._wall_clock() if now is None else now
        result: dict[str, Any] = {
            "cpuUser": "0.00",
            "cpuSys": "0.00",
            "cpuIdle": "100.00",
            "cpuLoad": "0.00",
            "cpuUserVdsmd": "0.00",
            "cpuSysVdsmd": "0.00",
            "cpuStatistics": {},
            "network": {},
            "rxDropped": "0",
            "txDropped": "0",
            "vmCount": vms.count,
            "vmActive": vms.active,
            "vmMigrating": vms.incoming + vms.outgoing,
            "incomingVmMigrations": vms.incoming,
            "outgoingVmMigrations": vms.outgoing,
            "memCommitted": vms.committed_mib,
            "elapsedTime": f"{self._clock() - self._started:.2f}",
            "dateTime": format_date_time(wall),
            "netConfigDirty": str(net_config_dirty),
        }
        if last is None:
            return result
        interval = last.mono - first.mono if first is not None else 0.0
        result.update(self._memory(last, vms))
        result.update(self._network(first, last, interval))
        result["cpuLoad"] = last.loadavg5
        if last.stat.boot_time is not None:
            result["bootTime"] = str(last.stat.boot_time)
        if first is not None and interval > 0:
            result.update(self._cpu(first, last, interval))
        if last.ksm is not None:
            result.update(self._ksm(first, last, interval))
        return result

    def _cpu(self, first: HostSample, last: HostSample, interval: float) -> dict[str, Any]:
        ncpus = max(len(last.stat.per_cpu), 1)
        t0, t1 = first.stat.total, last.stat.total
        user = self._percent(t1.user - t0.user, interval) / ncpus
        sys = self._percent(t1.sys - t0.sys, interval) / ncpus
        per_cpu: dict[str, Any] = {}
        for cpu, times in sorted(last.stat.per_cpu.items()):
            before = first.stat.per_cpu.get(cpu)
            if before is not None:
                per_cpu[str(cpu)] = self._cpu_entry(
                    before, times, interval, last.cpu_nodes.get(cpu, 0)
                )
        out: dict[str, Any] = {
            "cpuUser": f"{user:.2f}",
            "cpuSys": f"{sys:.2f}",
            "cpuIdle": f"{max(0.0, 100.0 - user - sys):.2f}",
            "cpuStatistics": per_cpu,
        }
        if first.process is not None and last.process is not None:
            p0, p1 = first.process, last.process
            out["cpuUserVdsmd"] = f"{self._percent(p1.user_ticks - p0.user_ticks, interval):.2f}"
            out["cpuSysVdsmd"] = f"{self._percent(p1.sys_ticks - p0.sys_ticks, interval):.2f}"
        return out

    def _cpu_entry(
        self, before: CpuTimes, after: CpuTimes, interval: float, node: int
    ) -> dict[str, Any]:
        user = self._percent(after.user - before.user, interval)
        sys = self._percent(after.sys - before.sys, interval)
        return {
            "nodeIndex": node,
            "cpuUser": f"{user:.2f}",
            "cpuSys": f"{sys:.2f}",
            "cpuIdle": f"{max(0.0, 100.0 - user - sys):.2f}",
        }

    def _memory(self, last: HostSample, vms: VmSummary) -> dict[str, Any]:
        mem = last.meminfo
        available = (
            meminfo.free_or_cached_kib(mem) // 1024
            + vms.resident_mib
            - vms.committed_mib
            - self._reserve_mib
        )
        numa_free: dict[str, Any] = {}
        for node, (total, free) in sorted(last.numa_memory.items()):
            used = 100 - int(100.0 * free / total) if total > 0 else 100
            numa_free[str(node)] = {"memFree": str(free // 1024), "memPercent": used}
        return {
            "memFree": meminfo.free_mib(mem),
            "memUsed": str(meminfo.used_percent(mem)),
            "memAvailable": available,
            "memShared": 0,
            "swapTotal": mem.get("SwapTotal", 0) // 1024,
            "swapFree": mem.get("SwapFree", 0) // 1024,
            "anonHugePages": str(mem.get("AnonHugePages", 0) // 1024),
            "hugepages": {size: dict(values) for size, values in last.hugepages.items()},
            "numaNodeMemFree": numa_free,
            "thpState": last.thp_state,
        }

    def _network(
        self, first: HostSample | None, last: HostSample, interval: float
    ) -> dict[str, Any]:
        network: dict[str, Any] = {}
        for name, now in last.interfaces.items():
            entry = netdev.wire_entry(now, last.wall)
            before = first.interfaces.get(name) if first is not None else None
            rx_rate = tx_rate = 0.0
            if before is not None and interval > 0:
                bits_per_pct = (now.speed or netdev.DEFAULT_WIRE_SPEED) * 1e6 / 100.0
                rx = max(now.counters.rx_bytes - before.counters.rx_bytes, 0)
                tx = max(now.counters.tx_bytes - before.counters.tx_bytes, 0)
                rx_rate = rx * 8 / interval / bits_per_pct
                tx_rate = tx * 8 / interval / bits_per_pct
            entry["rxRate"] = f"{rx_rate:.2f}"
            entry["txRate"] = f"{tx_rate:.2f}"
            network[name] = entry
        return {
            "network": network,
            "rxDropped": str(sum(i.counters.rx_dropped for i in last.interfaces.values())),
            "txDropped": str(sum(i.counters.tx_dropped for i in last.interfaces.values())),
        }

    def _ksm(self, first: HostSample | None, last: HostSample, interval: float) -> dict[str, Any]:
        ksm = last.ksm
        assert ksm is not None
        cpu = 0
        before = first.ksm if first is not None else None
        if before is not None and before.ksmd_ticks is not None and ksm.ksmd_ticks is not None:
            cpu = round(self._percent(ksm.ksmd_ticks - before.ksmd_ticks, interval))
        return {
            "ksmState": ksm.run,
            "ksmPages": ksm.pages_to_scan,
            "ksmCpu": cpu,
            "ksmMergeAcrossNodes": ksm.merge_across_nodes,
            "memShared": ksm.pages_sharing * self._page_kib // 1024,
        }
