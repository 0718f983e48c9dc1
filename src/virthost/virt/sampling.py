"""Bulk VM statistics: one getAllDomainStats call per interval for all VMs.

``sample()`` runs in a periodic job; ``stats_of()`` only reads the cache, so VM.getStats and
Host.getAllVmStats never touch libvirt. Rates come from the last two samples. The call asks
libvirt not to wait for domains whose monitor is busy (NOWAIT); a VM missing from a sample,
or whose sample is stale, is reported with ``monitorResponse: "-1"`` without slowing others.

Numbers are strings where VDSM sends strings (the engine parses them that way).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import libvirt

from virthost.common import errors
from virthost.virt.connection import LibvirtConnection
from virthost.virt.container import VmContainer
from virthost.virt.vm import Vm

log = logging.getLogger("virthost.virt.sampling")

STATS_GROUPS = (
    libvirt.VIR_DOMAIN_STATS_STATE
    | libvirt.VIR_DOMAIN_STATS_CPU_TOTAL
    | libvirt.VIR_DOMAIN_STATS_BALLOON
    | libvirt.VIR_DOMAIN_STATS_VCPU
    | libvirt.VIR_DOMAIN_STATS_INTERFACE
    | libvirt.VIR_DOMAIN_STATS_BLOCK
)
STATS_FLAGS = (
    libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE
    | libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT
)
NOWAIT = libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT
# statistics libvirt reads from the QEMU monitor (left out under NOWAIT when it is busy)
MONITOR_KEYS = ("balloon.last-update", "block.0.name", "balloon.available")
BULK_TIMEOUT = 10.0  # seconds the bulk call may take before VMs are probed one by one
PROBE_TIMEOUT = 2.0


@dataclass(frozen=True)
class Sample:
    taken: float  # monotonic seconds
    values: Mapping[str, Any]


def _partial(before: Mapping[str, Any], now: Mapping[str, Any]) -> bool:
    """True when ``now`` lacks what only the QEMU monitor gives and ``before`` had."""
    return any(key in before and key not in now for key in MONITOR_KEYS)


def _pct(delta: float, interval: float, scale: float = 1e9) -> str:
    if interval <= 0:
        return "0.00"
    return f"{max(delta, 0) * 100.0 / (interval * scale):.2f}"


def _indexed(values: Mapping[str, Any], prefix: str) -> list[dict[str, Any]]:
    """``net.0.rx.bytes`` style keys -> one dict per index."""
    count = int(values.get(f"{prefix}.count", 0))
    items: list[dict[str, Any]] = [{} for _ in range(count)]
    head = prefix + "."
    for key, value in values.items():
        if not key.startswith(head):
            continue
        index, _, field = key[len(head) :].partition(".")
        if index.isdigit() and int(index) < count:
            items[int(index)][field] = value
    return items


class BulkStatsSampler:
    def __init__(
        self, libvirt_conn: LibvirtConnection, vms: VmContainer, interval: float = 15.0
    ) -> None:
        self._libvirt = libvirt_conn
        self._vms = vms
        self._interval = interval
        self._lock = threading.Lock()
        self._samples: dict[str, tuple[Sample | None, Sample]] = {}
        self._last_cycle = 0.0
        # VMs whose QEMU monitor did not answer: left out of the bulk call until they do
        self._unresponsive: set[str] = set()

    def sample(self) -> None:
        """One cycle: a bulk call for the responsive VMs, one probe per unresponsive VM."""
        suspects = set(self._unresponsive)
        try:
            records = self._libvirt.call(
                lambda conn: self._collect(conn, suspects), "sampling VM statistics", BULK_TIMEOUT
            )
        except errors.VirtHostError as e:
            log.warning("bulk VM statistics did not answer (%s); probing VMs one by one", e)
            self._probe([vm.id for vm in self._vms.all() if not vm.is_down])
            return
        self._store(records)
        if suspects:
            self._probe(sorted(suspects))

    @staticmethod
    def _collect(conn: Any, excluded: set[str]) -> list[tuple[str, dict[str, Any]]]:
        if not excluded:
            records = conn.getAllDomainStats(STATS_GROUPS, STATS_FLAGS)
        else:
            doms = [
                d
                for d in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)
                if d.UUIDString() not in excluded
            ]
            records = conn.domainListGetStats(doms, STATS_GROUPS, NOWAIT) if doms else []
        return [(dom.UUIDString(), dict(values)) for dom, values in records]

    def _probe(self, vm_ids: list[str]) -> None:
        """Sample each VM alone, briefly: who answers is responsive again."""
        for vm_id in vm_ids:

            def one(conn: Any, vm_id: str = vm_id) -> list[tuple[str, dict[str, Any]]]:
                dom = conn.lookupByUUIDString(vm_id)
                return [
                    (vm_id, dict(v)) for _, v in conn.domainListGetStats([dom], STATS_GROUPS, 0)
                ]

            try:
                records = self._libvirt.call(one, f"probing vm {vm_id}", PROBE_TIMEOUT)
            except errors.VirtHostError:
                if vm_id not in self._unresponsive:
                    log.warning("vm %s: QEMU monitor not responding", vm_id)
                self._unresponsive.add(vm_id)
                continue
            self._store(records, new_cycle=False)

    def _store(self, records: list[tuple[str, dict[str, Any]]], new_cycle: bool = True) -> None:
        now = time.monotonic()
        with self._lock:
            if new_cycle:
                self._last_cycle = now
            for vm_id, values in records:
                previous = self._samples.get(vm_id)
                if previous is not None and _partial(previous[1].values, values):
                    # libvirt skipped what needs the QEMU monitor: another call holds it
                    if vm_id not in self._unresponsive:
                        log.warning("vm %s: QEMU monitor busy or not responding", vm_id)
                    self._unresponsive.add(vm_id)
                    continue
                if vm_id in self._unresponsive:
                    log.info("vm %s: QEMU monitor responding again", vm_id)
                    self._unresponsive.discard(vm_id)
                self._samples[vm_id] = (previous[1] if previous else None, Sample(now, values))

    def responsive(self, vm_id: str) -> bool:
        return vm_id not in self._unresponsive

    def forget(self, vm_id: str) -> None:
        with self._lock:
            self._samples.pop(vm_id, None)
        self._unresponsive.discard(vm_id)

    def _pair(self, vm_id: str) -> tuple[Sample | None, Sample | None, bool]:
        with self._lock:
            pair = self._samples.get(vm_id)
            last_cycle = self._last_cycle
        if pair is None:
            return None, None, last_cycle == 0.0
        first, last = pair
        fresh = last.taken >= last_cycle - 0.001 or last_cycle == 0.0
        return first, last, fresh

    def stats_of(self, vm: Vm) -> dict[str, Any]:
        first, last, fresh = self._pair(vm.id)
        fresh = fresh and vm.id not in self._unresponsive
        if last is None:
            return {"monitorResponse": "0" if fresh else "-1"}
        values = last.values
        stats: dict[str, Any] = {"monitorResponse": "0" if fresh else "-1"}
        interval = last.taken - first.taken if first is not None else 0.0
        vcpus = int(values.get("vcpu.current", 1)) or 1
        stats["vcpuCount"] = str(vcpus)
        if "cpu.time" in values:
            stats["cpuUsage"] = str(values["cpu.time"])
        if first is not None:
            prev = first.values
            scale = 1e9 * vcpus
            stats["cpuUser"] = _pct(
                values.get("cpu.user", 0) - prev.get("cpu.user", 0), interval, scale
            )
            stats["cpuSys"] = _pct(
                values.get("cpu.system", 0) - prev.get("cpu.system", 0), interval, scale
            )
        else:
            stats["cpuUser"] = stats["cpuSys"] = "0.00"
        stats.update(self._memory(values, vm.balloon_target_kib))
        stats["network"] = self._network(first, last, interval)
        stats["disks"] = self._disks(first, last, interval)
        return stats

    @staticmethod
    def _memory(values: Mapping[str, Any], target_kib: int | None) -> dict[str, Any]:
        current = int(values.get("balloon.current", 0))
        maximum = int(values.get("balloon.maximum", current))
        stats: dict[str, Any] = {
            "balloonInfo": {
                "balloon_cur": str(current),
                "balloon_max": str(maximum),
                "balloon_min": "0",
                "balloon_target": str(target_kib if target_kib is not None else current),
                "ballooning_enabled": "balloon.current" in values,
            }
        }
        if "balloon.available" in values:
            available = int(values["balloon.available"])
            unused = int(values.get("balloon.unused", 0))
            stats["memoryStats"] = {
                "mem_total": str(available),
                "mem_unused": str(unused),
                "mem_free": str(unused),
                "mem_buffers": "0",
                "mem_cached": str(int(values.get("balloon.disk_caches", 0))),
                "swap_in": str(int(values.get("balloon.swap_in", 0))),
                "swap_out": str(int(values.get("balloon.swap_out", 0))),
                "majflt": str(int(values.get("balloon.major_fault", 0))),
                "minflt": str(int(values.get("balloon.minor_fault", 0))),
                "pageflt": str(
                    int(values.get("balloon.major_fault", 0))
                    + int(values.get("balloon.minor_fault", 0))
                ),
            }
            if available:
                stats["memUsage"] = str(int(100 * (available - unused) / available))
        return stats

    @staticmethod
    def _network(first: Sample | None, last: Sample, interval: float) -> dict[str, Any]:
        previous = {n.get("name"): n for n in _indexed(first.values, "net")} if first else {}
        result: dict[str, Any] = {}
        for nic in _indexed(last.values, "net"):
            name = str(nic.get("name", ""))
            if not name:
                continue
            before = previous.get(name, {})
            entry = {
                "name": name,
                "rx": str(nic.get("rx.bytes", 0)),
                "tx": str(nic.get("tx.bytes", 0)),
                "rxErrors": str(nic.get("rx.errs", 0)),
                "txErrors": str(nic.get("tx.errs", 0)),
                "rxDropped": str(nic.get("rx.drop", 0)),
                "txDropped": str(nic.get("tx.drop", 0)),
                "sampleTime": last.taken,
                "state": "unknown",
                "speed": "1000",
            }
            if before and interval > 0:
                for key, field in (("rxRate", "rx.bytes"), ("txRate", "tx.bytes")):
                    rate = (nic.get(field, 0) - before.get(field, 0)) / interval
                    entry[key] = f"{max(rate, 0) * 8 / 1e9 * 100 / 1000:.1f}"
            result[name] = entry
        return result

    @staticmethod
    def _disks(first: Sample | None, last: Sample, interval: float) -> dict[str, Any]:
        previous = {d.get("name"): d for d in _indexed(first.values, "block")} if first else {}
        result: dict[str, Any] = {}
        for disk in _indexed(last.values, "block"):
            name = str(disk.get("name", ""))
            if not name:
                continue
            before = previous.get(name, {})
            entry: dict[str, Any] = {
                "readOps": str(disk.get("rd.reqs", 0)),
                "writeOps": str(disk.get("wr.reqs", 0)),
                "readBytes": str(disk.get("rd.bytes", 0)),
                "writtenBytes": str(disk.get("wr.bytes", 0)),
                "truesize": str(disk.get("allocation", 0)),
                "apparentsize": str(disk.get("physical", disk.get("capacity", 0))),
                "readRate": "0.0",
                "writeRate": "0.0",
                "readLatency": "0",
                "writeLatency": "0",
                "flushLatency": "0",
            }
            if before and interval > 0:
                for key, field in (("readRate", "rd.bytes"), ("writeRate", "wr.bytes")):
                    entry[key] = (
                        f"{max(disk.get(field, 0) - before.get(field, 0), 0) / interval:.1f}"
                    )
                for key, ops, times in (
                    ("readLatency", "rd.reqs", "rd.times"),
                    ("writeLatency", "wr.reqs", "wr.times"),
                    ("flushLatency", "fl.reqs", "fl.times"),
                ):
                    done = disk.get(ops, 0) - before.get(ops, 0)
                    spent = disk.get(times, 0) - before.get(times, 0)
                    entry[key] = str(int(spent / done)) if done > 0 else "0"
            result[name] = entry
        return result
