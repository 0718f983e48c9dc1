"""Benchmark: VM start-up, statistics, memory and recovery of virthostd, with baselines.

Measured in one run against the real virthost-supervisor and virthostd (started here, on
qemu:///system with TCG guests, and a second pair on libvirt's test driver):

1. Boot: from VM.create to the guest agent answering ``guest-ping`` (asked by this script
   through libvirt_qemu.qemuAgentCommand), against libvirt's createXML of the same domain XML
   (the XML the daemon defined, from Host.dumpxmls, made transient under a new name and uuid)
   to the same ping. Runs alternate between the two; medians and their ratio.
2. Statistics with --guests real tiny guests: Host.getAllVmStats latency over --calls calls
   (Host.ping2 is the floor of the RPC path), and the daemon's CPU per bulk sampling cycle
   (utime+stime from /proc over a quiet window at a short vm_sample_interval, divided by the
   cycles run), reported as % of a core at the default 15 s interval.
3. The same with --domains VMs on test:///default, whose domains live inside the daemon's own
   connection, so they are created through VM.create; plus the daemon's RSS with them.
4. Recovery: kill -9 of virthostd with the guests of 2 running, from starting it again to every
   guest reported Up (it answers 99 until recovered); the same restart with no VM is the
   baseline.

Every domain it creates is destroyed on the way out, whatever failed. Other domains running
on the same libvirtd (another daemon's tests, say) load the host and are sampled too: the report
says how many there were.

    venv/bin/python bench/vm.py [--guests 20] [--domains 1000] [--runs 5]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import sys
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import _daemon  # first: it puts tests/ on sys.path (guest, fixtures)
import libvirt
import libvirt_qemu  # type: ignore[import-untyped]

from guest import image
from virthost.api.schema import Schema
from virthost.client import Client, Event
from virthost.client import errors as client_errors
from virthost.common.pki import PkiPaths
from virthost.virt.domxml import build_from_params, prepare_for_host
from virthost.virt.recovery import OVIRT_VM_NS
from virthost.virt.sampling import STATS_FLAGS, STATS_GROUPS

TARGET_BOOT_RATIO = 1.15
TARGET_STATS_MS = 50.0
TARGET_CPU_PCT = 3.0
TARGET_RSS_MIB = 250.0
DEFAULT_SAMPLE_INTERVAL = 15.0  # what the CPU figure is scaled to
QEMU_URI = "qemu:///system"
TEST_URI = "test:///default"
GUEST_PING = json.dumps({"execute": "guest-ping"})
POLL = 0.02  # seconds between readiness probes
SETTLE = 1.0  # seconds of rest after a destroy, so one boot does not pay for the last
NOT_READY = 99  # the daemon's answer while it initialises or recovers

T = TypeVar("T")

ET.register_namespace("ovirt-vm", OVIRT_VM_NS)


def note(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def wait_until(probe: Callable[[], T | None], timeout: float, what: str, pause: float = 0.2) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(pause)


def guest_params(
    vm_id: str, name: str, guest: image.GuestImage, console: Path | None
) -> dict[str, Any]:
    """Simple VM.create parameters booting the tiny guest (console to a file when given)."""
    params: dict[str, Any] = {
        "vmId": vm_id,
        "vmName": name,
        "memSize": 128,
        "smp": 1,
        "kernel": str(guest.vmlinux),
        "initrd": str(guest.initrd),
        "kernelArgs": "console=ttyS0 quiet tinyvm.ip=10.0.2.15/24",
        "nics": [{"type": "user"}],
    }
    if console is not None:
        params["consoleLog"] = str(console)
    return params


# --- libvirt side --------------------------------------------------------------------------


def lookup(conn: Any, vm_id: str) -> Any:
    try:
        return conn.lookupByUUIDString(vm_id)
    except libvirt.libvirtError:
        return None


def agent_answers(dom: Any) -> bool:
    try:
        libvirt_qemu.qemuAgentCommand(dom, GUEST_PING, 1, 0)
    except libvirt.libvirtError:
        return False
    return True


def wait_for_agent(conn: Any, vm_id: str, started: float, timeout: float = 180.0) -> float:
    """Seconds from ``started`` (perf_counter) to the first answered guest-ping."""
    deadline = started + timeout
    while True:
        dom = lookup(conn, vm_id)
        if dom is not None and agent_answers(dom):
            return time.perf_counter() - started
        if time.perf_counter() > deadline:
            raise TimeoutError(f"guest agent of {vm_id} silent after {timeout:g} s")
        time.sleep(POLL)


def _child(parent: ET.Element, tag: str) -> ET.Element:
    element = parent.find(tag)
    if element is None:
        raise ValueError(f"domain XML without <{tag}>")
    return element


def transient_copy(xml: str, name: str, console: Path) -> tuple[str, str]:
    """The daemon's domain XML under a new name and uuid, for createXML: (xml, uuid).

    The console goes to its own file and the agent channel loses the socket path libvirt gave
    the original (it picks a new one for the copy); everything else is left as it was.
    """
    root = ET.fromstring(xml)
    root.attrib.pop("id", None)
    new_uuid = str(uuid.uuid4())
    _child(root, "name").text = name
    _child(root, "uuid").text = new_uuid
    for tag in ("serial", "console"):
        for source in root.iterfind(f"devices/{tag}/source"):
            source.set("path", str(console))
    for source in root.iterfind("devices/channel/source"):
        source.attrib.pop("path", None)
    return ET.tostring(root, encoding="unicode"), new_uuid


def sample_seconds(conn: Any, repeats: int = 5) -> float:
    """Median duration of the daemon's sampling call (same groups and flags) on ``conn``."""
    durations = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        records = conn.getAllDomainStats(STATS_GROUPS, STATS_FLAGS)
        _ = [(dom.UUIDString(), dict(values)) for dom, values in records]
        durations.append(time.perf_counter() - t0)
    return _daemon.median(durations)


def test_driver_sample_seconds(guest: image.GuestImage, count: int) -> float:
    """The sampling call on a test:///default connection of this process holding ``count``
    domains like the daemon's: what one sampling cycle of the test-driver daemon costs."""
    conn = libvirt.open(TEST_URI)
    try:
        for index in range(count):
            vm_id = str(uuid.uuid4())
            domain = build_from_params(guest_params(vm_id, f"replica{index}", guest, None))
            conn.defineXML(prepare_for_host(domain, domain_type="qemu").to_xml()).create()
        return sample_seconds(conn)
    finally:
        conn.close()


def libvirtd_pid() -> int | None:
    try:
        return int(Path("/run/libvirtd.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def other_domains(conn: Any, prefix: str) -> int:
    """Active domains on ``conn`` that are not this benchmark's (their load is in the figures)."""
    return sum(1 for dom in conn.listAllDomains(0) if not dom.name().startswith(prefix))


def sweep(conn: Any, prefix: str) -> int:
    """Destroy and undefine every domain whose name starts with ``prefix``."""
    removed = 0
    for dom in conn.listAllDomains(0):
        try:
            if not dom.name().startswith(prefix):
                continue
            if dom.isActive():
                dom.destroy()
            if dom.isPersistent():
                dom.undefine()
            removed += 1
        except libvirt.libvirtError as e:
            note(f"cleanup of {dom.name()}: {e}")
    return removed


# --- daemon side ---------------------------------------------------------------------------


class UpEvents:
    """Records when each VM was first reported Up in a ``|virt|VM_status|`` event."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._up: dict[str, float] = {}

    def __call__(self, event: Event) -> None:
        if not event.method.startswith("|virt|VM_status|") or not isinstance(event.params, dict):
            return
        now = time.perf_counter()
        with self._lock:
            for key, report in event.params.items():
                if isinstance(report, dict) and report.get("status") == "Up":
                    self._up.setdefault(key, now)

    def up_at(self, vm_id: str) -> float | None:
        with self._lock:
            return self._up.get(vm_id)


def latencies(call: Callable[[], object], count: int) -> list[float]:
    result = []
    for _ in range(count):
        t0 = time.perf_counter()
        call()
        result.append(time.perf_counter() - t0)
    return result


def statuses(cli: Client) -> dict[str, dict[str, Any]]:
    return {str(s["vmId"]): s for s in cli.Host.getAllVmStats()}


@dataclass
class CpuWindow:
    wall: float
    daemon: float  # CPU seconds
    libvirtd: float | None


def cpu_window(pid: int, seconds: float) -> CpuWindow:
    """CPU used by the daemon (and libvirtd) while this script sleeps ``seconds``."""
    other = libvirtd_pid()
    other_before = _daemon.cpu_seconds(other) if other is not None else 0.0
    before = _daemon.cpu_seconds(pid)
    t0 = time.perf_counter()
    time.sleep(seconds)
    after = _daemon.cpu_seconds(pid)
    wall = time.perf_counter() - t0
    other_after = _daemon.cpu_seconds(other) if other is not None else 0.0
    return CpuWindow(wall, after - before, other_after - other_before if other else None)


@dataclass
class Stats:
    vms: int
    calls: list[float]  # getAllVmStats latencies
    ping: list[float]  # Host.ping2 latencies
    reply_bytes: int
    reply_vms: int  # the daemon also reports VMs it recovered that are not the benchmark's
    window: CpuWindow
    interval: float
    sample: float  # seconds one sampling call takes in libvirt
    rss_before: float | None = None
    rss_after: float | None = None
    setup: float = 0.0  # seconds to create the VMs and see them all Up

    @property
    def cycles(self) -> float:
        # sampling is exclusive: the next cycle is scheduled when the last one finished
        return self.window.wall / (self.interval + self.sample)

    @property
    def cpu_per_cycle(self) -> float:
        return self.window.daemon / self.cycles

    @property
    def pct_at_default(self) -> float:
        return 100 * self.cpu_per_cycle / DEFAULT_SAMPLE_INTERVAL


def measure_stats(
    cli: Client, pid: int, vms: int, calls: int, interval: float, cpu_seconds: float
) -> tuple[list[float], list[float], int, int, CpuWindow]:
    ping = latencies(cli.Host.ping2, calls)
    stats = latencies(cli.Host.getAllVmStats, calls)
    reply = cli.Host.getAllVmStats()
    if len(reply) < vms:
        raise RuntimeError(f"getAllVmStats reported {len(reply)} VMs, expected {vms}")
    size = len(json.dumps(reply, separators=(",", ":")))
    time.sleep(interval)  # let the calls' work finish before the quiet window
    return stats, ping, size, len(reply), cpu_window(pid, cpu_seconds)


# --- 1. boot -------------------------------------------------------------------------------


@dataclass
class Boot:
    ours: list[float]
    daemon_up: list[float]
    baseline: list[float]


def bench_boot(
    cli: Client,
    conn: Any,
    guest: image.GuestImage,
    logs: Path,
    prefix: str,
    runs: int,
    events: UpEvents,
) -> Boot:
    result = Boot([], [], [])
    xml: str | None = None

    def ours(run: int) -> None:
        nonlocal xml
        vm_id = str(uuid.uuid4())
        name = f"{prefix}boot{run}"
        params = guest_params(vm_id, name, guest, logs / f"{name}.log")
        t0 = time.perf_counter()
        cli.VM.create(vmID=vm_id, vmParams=params)
        result.ours.append(wait_for_agent(conn, vm_id, t0))
        up = wait_until(lambda: events.up_at(vm_id), 60, f"{name} reported Up", POLL)
        result.daemon_up.append(up - t0)
        if xml is None:
            xml = str(cli.Host.dumpxmls(vmList=[vm_id])["domxmls"][vm_id])
        cli.VM.destroy(vmID=vm_id)

    def baseline(run: int) -> None:
        assert xml is not None
        name = f"{prefix}virsh{run}"
        copy, vm_id = transient_copy(xml, name, logs / f"{name}.log")
        t0 = time.perf_counter()
        dom = conn.createXML(copy, 0)
        try:
            result.baseline.append(wait_for_agent(conn, vm_id, t0))
        finally:
            dom.destroy()

    for run in range(runs):
        # the daemon goes first in the first run (its XML is the baseline's), then they alternate
        order = (ours, baseline) if run % 2 == 0 else (baseline, ours)
        for step in order:
            step(run)
            time.sleep(SETTLE)
        note(
            f"boot run {run + 1}/{runs}: virthostd {result.ours[-1]:.2f} s, "
            f"createXML {result.baseline[-1]:.2f} s"
        )
    return result


# --- 2. real guests ------------------------------------------------------------------------


def start_guests(
    cli: Client, guest: image.GuestImage, logs: Path, prefix: str, count: int
) -> tuple[list[str], float]:
    """``count`` guests created through VM.create, all Up with their agent: (ids, seconds)."""
    ids = []
    t0 = time.perf_counter()
    for index in range(count):
        vm_id = str(uuid.uuid4())
        name = f"{prefix}g{index}"
        cli.VM.create(vmID=vm_id, vmParams=guest_params(vm_id, name, guest, logs / f"{name}.log"))
        ids.append(vm_id)

    def all_up() -> bool | None:
        found = statuses(cli)
        down = [v for v in ids if found[v]["status"] == "Down"]
        if down:
            raise RuntimeError(f"guest {down[0]} went Down: {found[down[0]].get('exitMessage')}")
        ready = [v for v in ids if found[v]["status"] == "Up" and found[v]["guestAgentConnected"]]
        return True if len(ready) == count else None

    try:
        wait_until(all_up, 60 + 10 * count, f"{count} guests Up with their agent", 0.5)
    except TimeoutError as e:
        found = statuses(cli)
        seen = Counter(f"{found[v]['status']}/agent {found[v]['guestAgentConnected']}" for v in ids)
        raise TimeoutError(f"{e}: {dict(seen)}") from None
    return ids, time.perf_counter() - t0


def bench_guests(
    cli: Client, pid: int, ids: list[str], args: argparse.Namespace, sample: float
) -> Stats:
    def sampled() -> bool | None:
        found = statuses(cli)
        return True if all("cpuUser" in found[v] for v in ids) else None

    wait_until(sampled, 60, "bulk statistics of every guest", 0.5)
    with contextlib.suppress(TimeoutError):  # the agent's data makes the reply a real one
        wait_until(
            lambda: True if all(statuses(cli)[v].get("guestIPs") for v in ids) else None,
            30,
            "guest IPs",
            1.0,
        )
    calls, ping, size, count, window = measure_stats(
        cli, pid, len(ids), args.calls, args.sample_interval, args.cpu_seconds
    )
    return Stats(len(ids), calls, ping, size, count, window, args.sample_interval, sample)


# --- 3. test driver ------------------------------------------------------------------------


def bench_test_driver(
    pki: PkiPaths, schema: Schema, guest: image.GuestImage, prefix: str, args: argparse.Namespace
) -> Stats:
    config = _daemon.quiet_config(
        libvirt={"uri": TEST_URI},
        virt={
            "domain_type": "qemu",
            "vm_sample_interval": args.sample_interval,
            "guest_wait_timeout": 5.0,  # no agent on the test driver: Up after 5 s
        },
    )
    services = _daemon.start(pki, config, "virthost-bench-test-")
    try:
        pid = _daemon.daemon_pid(services)
        time.sleep(2 * args.sample_interval)
        rss_before = _daemon.rss_mib(pid)
        with _daemon.client(services, schema) as cli:
            ids = []
            t0 = time.perf_counter()
            for index in range(args.domains):
                vm_id = str(uuid.uuid4())
                cli.VM.create(
                    vmID=vm_id, vmParams=guest_params(vm_id, f"{prefix}t{index}", guest, None)
                )
                ids.append(vm_id)

            def all_up() -> bool | None:
                found = {v["vmId"]: v["status"] for v in cli.Host.getVMList()}
                down = [v for v in ids if found.get(v) == "Down"]
                if down:
                    raise RuntimeError(f"test-driver VM {down[0]} went Down")
                return True if sum(found.get(v) == "Up" for v in ids) == len(ids) else None

            wait_until(all_up, 120 + args.domains / 10, f"{args.domains} VMs Up", 1.0)
            setup = time.perf_counter() - t0
            note(f"{args.domains} test-driver VMs Up after {setup:.1f} s")
            time.sleep(3 * args.sample_interval)
            calls, ping, size, count, window = measure_stats(
                cli, pid, args.domains, args.calls, args.sample_interval, args.cpu_seconds
            )
        rss_after = _daemon.rss_mib(pid)
    except BaseException:
        note("the test-driver daemon's log ends with:\n" + services.log_text()[-4000:])
        raise
    finally:
        _daemon.cleanup(services)
    note("timing the sampling call on a test-driver replica")
    sample = test_driver_sample_seconds(guest, args.domains)
    return Stats(
        args.domains,
        calls,
        ping,
        size,
        count,
        window,
        args.sample_interval,
        sample,
        rss_before,
        rss_after,
        setup,
    )


# --- 4. recovery ---------------------------------------------------------------------------


@dataclass
class Restart:
    listening: float  # seconds from starting the process to the first TLS connection
    answering: float  # ... to the first answer other than 99
    all_up: float  # ... to every VM reported Up


def restart_after_kill(
    services: _daemon.Services, schema: Schema, ids: list[str], timeout: float = 120.0
) -> Restart:
    services.stop_daemon(signal.SIGKILL)
    t0 = time.perf_counter()
    services.start_daemon(wait=False)
    deadline = t0 + timeout
    listening: float | None = None
    answering: float | None = None
    wanted = set(ids)
    while time.perf_counter() < deadline:
        process = services.daemon
        if process is None or process.poll() is not None:
            raise RuntimeError(f"virthostd exited during recovery:\n{services.log_text()[-3000:]}")
        try:
            cli = _daemon.client(services, schema, timeout=10.0)
        except (OSError, client_errors.Error):
            time.sleep(POLL)
            continue
        if listening is None:
            listening = time.perf_counter() - t0
        with cli:
            while time.perf_counter() < deadline:
                try:
                    vms = cli.Host.getVMList()
                except client_errors.ServerError as e:
                    if e.code != NOT_READY:
                        raise
                    time.sleep(POLL)
                    continue
                if answering is None:
                    answering = time.perf_counter() - t0
                if wanted <= {v["vmId"] for v in vms if v["status"] == "Up"}:
                    return Restart(listening, answering, time.perf_counter() - t0)
                time.sleep(POLL)
    raise TimeoutError(f"virthostd did not recover {len(ids)} VMs within {timeout:g} s")


# --- report --------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def report_stats(stats: Stats, what: str, libvirt_where: str) -> None:
    p50 = _daemon.percentile(stats.calls, 0.5)
    p99 = _daemon.percentile(stats.calls, 0.99)
    print(f"  {'Host.getAllVmStats':<26} p50 {ms(p50):>9}   p99 {ms(p99):>9}", end="")
    print(f"   target < {TARGET_STATS_MS:g} ms: {verdict(p99 < TARGET_STATS_MS / 1000)}")
    print(
        f"  {'Host.ping2 (RPC floor)':<26} p50 {ms(_daemon.percentile(stats.ping, 0.5)):>9}"
        f"   p99 {ms(_daemon.percentile(stats.ping, 0.99)):>9}"
    )
    print(
        f"  {'':<26} ({len(stats.calls)} calls each; reply {stats.reply_bytes / 1024:.0f} KiB "
        f"for {stats.reply_vms} VMs)"
    )
    print(
        f"  sampling call in libvirt ({libvirt_where}): {ms(stats.sample)}; "
        f"{stats.cycles:.1f} cycles of {stats.interval:g} s in {stats.window.wall:.1f} s"
    )
    pct = stats.pct_at_default
    print(
        f"  daemon CPU per sampling cycle: {ms(stats.cpu_per_cycle)} "
        f"= {pct:.2f}% of a core at {DEFAULT_SAMPLE_INTERVAL:g} s"
        f"   target < {TARGET_CPU_PCT:g}%: {verdict(pct < TARGET_CPU_PCT)}"
    )
    print(
        f"    (all the daemon's CPU in the quiet window: {stats.window.daemon:.2f} s, "
        f"{100 * stats.window.daemon / stats.window.wall:.2f}% of a core;\n     {what})"
    )
    if stats.window.libvirtd is not None and libvirt_where == QEMU_URI:
        print(
            f"  libvirtd CPU meanwhile: {ms(stats.window.libvirtd / stats.cycles)} per cycle "
            f"({100 * stats.window.libvirtd / stats.window.wall:.2f}% of a core)"
        )


def report(
    args: argparse.Namespace,
    boot: Boot,
    guests: Stats,
    guests_setup: float,
    recovery: Restart,
    empty_restart: Restart,
    test: Stats,
) -> None:
    print()
    print(
        f"virthostd VM benchmark: {os.cpu_count()} CPUs, libvirt "
        f"{libvirt.getVersion() // 1000000}.{libvirt.getVersion() // 1000 % 1000}, "
        f"TCG tiny guests of 128 MiB, vm_sample_interval {args.sample_interval:g} s"
    )
    print()
    ours, up, base = (_daemon.median(x) for x in (boot.ours, boot.daemon_up, boot.baseline))
    ratio = ours / base
    print(f"1. Boot to guest agent ready (guest-ping answered), {args.runs} runs, alternating")
    print(f"  {'':<34} {'median':>8} {'min':>8} {'max':>8}")
    for label, values in (
        ("VM.create -> guest-ping", boot.ours),
        ("VM.create -> daemon reports Up", boot.daemon_up),
        ("createXML same XML -> guest-ping", boot.baseline),
    ):
        print(
            f"  {label:<34} {_daemon.median(values):>7.2f}s {min(values):>7.2f}s "
            f"{max(values):>7.2f}s"
        )
    print(
        f"  ratio virthostd/createXML (median): {ratio:.3f}   "
        f"target <= {TARGET_BOOT_RATIO:g}: {verdict(ratio <= TARGET_BOOT_RATIO)}"
        f"   (daemon Up event: {up / base:.3f})"
    )
    print()
    print(f"2. {guests.vms} real guests (created and Up with agent in {guests_setup:.1f} s)")
    report_stats(guests, "it includes agent polls every 5 s, host stats every 15 s", QEMU_URI)
    assert guests.rss_before is not None and guests.rss_after is not None
    print(
        f"  daemon RSS: {guests.rss_after:.1f} MiB with {guests.vms} guests "
        f"({guests.rss_before:.1f} MiB with none after the boot runs, "
        f"{1024 * (guests.rss_after - guests.rss_before) / guests.vms:.0f} KiB per VM)"
    )
    print()
    print(
        f"3. {test.vms} VMs on {TEST_URI} (created through VM.create and Up in {test.setup:.1f} s)"
    )
    report_stats(test, "it includes the test driver, which runs inside the daemon", "replica")
    print(
        f"  (the test driver samples only the state group: {test.reply_bytes / test.reply_vms:.0f} "
        f"bytes per VM in the reply, {guests.reply_bytes / guests.reply_vms:.0f} for a real guest)"
    )
    assert test.rss_before is not None and test.rss_after is not None
    print(
        f"  daemon RSS: {test.rss_after:.1f} MiB with {test.vms} VMs "
        f"({test.rss_before:.1f} MiB with none, "
        f"{1024 * (test.rss_after - test.rss_before) / test.vms:.1f} KiB per VM)"
        f"   target < {TARGET_RSS_MIB:g} MiB: {verdict(test.rss_after < TARGET_RSS_MIB)}"
    )
    print()
    print("4. Restart after kill -9 (seconds from starting virthostd)")
    print(f"  {'':<22} {'listening':>10} {'answering':>10} {'all Up':>10}")
    for label, r in ((f"with {guests.vms} guests", recovery), ("no VM (baseline)", empty_restart)):
        all_up = f"{r.all_up:>9.2f}s" if label != "no VM (baseline)" else f"{'-':>10}"
        print(f"  {label:<22} {r.listening:>9.2f}s {r.answering:>9.2f}s {all_up}")
    extra = recovery.all_up - empty_restart.answering
    print(f"  recovering {guests.vms} guests costs {extra:.2f} s over an empty start")


# --- main ----------------------------------------------------------------------------------


@contextlib.contextmanager
def libvirt_connection(uri: str) -> Iterator[Any]:
    conn = libvirt.open(uri)
    try:
        yield conn
    finally:
        conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--guests", type=int, default=20, help="real tiny guests (2, 4)")
    parser.add_argument("--domains", type=int, default=1000, help="test-driver VMs (3)")
    parser.add_argument("--runs", type=int, default=5, help="boots of each kind (1)")
    parser.add_argument("--calls", type=int, default=100, help="getAllVmStats calls (2, 3)")
    parser.add_argument("--sample-interval", type=float, default=1.0, help="vm_sample_interval")
    parser.add_argument("--cpu-seconds", type=float, default=30.0, help="CPU window (2, 3)")
    args = parser.parse_args()
    if min(args.guests, args.domains, args.runs, args.calls) < 1:
        parser.error("--guests, --domains, --runs and --calls must be at least 1")

    libvirt.registerErrorHandler(lambda *_: None, None)
    guest = image.ensure_guest()
    schema = Schema.default()
    prefix = f"vmbench{os.getpid()}-"
    work = _daemon.make_workdir("virthost-bench-vm-")
    logs = work / "consoles"
    logs.mkdir()
    logs.chmod(0o777)  # libvirt writes the consoles
    pki = _daemon.make_pki(work)
    events = UpEvents()
    services: _daemon.Services | None = None
    libvirtd_at_start = libvirtd_pid()
    others: list[int] = []
    conn = libvirt.open(QEMU_URI)
    try:
        try:
            others.append(other_domains(conn, prefix))
            config = _daemon.quiet_config(
                virt={
                    "domain_type": "qemu",
                    "vm_sample_interval": args.sample_interval,
                    # Up only with the agent, however slow 20 parallel boots are
                    "guest_wait_timeout": 600.0,
                }
            )
            services = _daemon.start(pki, config, "virthost-bench-qemu-")
            with _daemon.client(services, schema) as cli:
                cli.subscribe(event_queue=events)
                note(f"1. boot: {args.runs} runs of each")
                boot = bench_boot(cli, conn, guest, logs, prefix, args.runs, events)
                note(f"2. starting {args.guests} guests")
                rss_idle = _daemon.rss_mib(_daemon.daemon_pid(services))
                ids, guests_setup = start_guests(cli, guest, logs, prefix, args.guests)
                note(f"{args.guests} guests Up after {guests_setup:.1f} s; measuring")
                others.append(other_domains(conn, prefix))
                sample = sample_seconds(conn)
                guests = bench_guests(cli, _daemon.daemon_pid(services), ids, args, sample)
                guests.rss_before = rss_idle
                guests.rss_after = _daemon.rss_mib(_daemon.daemon_pid(services))
            note("4. kill -9 and restart")
            recovery = restart_after_kill(services, schema, ids)
            with _daemon.client(services, schema) as cli:
                for vm_id in ids:
                    cli.VM.destroy(vmID=vm_id)
            empty_restart = restart_after_kill(services, schema, [])
            _daemon.cleanup(services)
            services = None
            note(f"3. {args.domains} VMs on the test driver")
            others.append(other_domains(conn, prefix))
            test = bench_test_driver(pki, schema, guest, prefix, args)
        except BaseException:
            if services is not None:
                note("the daemon's log ends with:\n" + services.log_text()[-4000:])
            raise
    finally:
        if services is not None:
            _daemon.cleanup(services)
        with contextlib.suppress(libvirt.libvirtError):
            conn.close()
        with libvirt_connection(QEMU_URI) as fresh:  # a new one: libvirtd may have restarted
            left = sweep(fresh, prefix)
        if left:
            note(f"cleaned up {left} domains left behind")
        shutil.rmtree(work, ignore_errors=True)
    report(args, boot, guests, guests_setup, recovery, empty_restart, test)
    print()
    print(f"Other domains running on this libvirtd during the run: up to {max(others)}.")
    if libvirtd_pid() != libvirtd_at_start:
        print("libvirtd was restarted during the run (not by this benchmark).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
