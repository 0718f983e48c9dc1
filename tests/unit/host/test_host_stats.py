"""Host.getStats from two samples of a fake /proc-/sys tree, and on this machine."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from unit.host.host_fakes import make_tree
from virthost.host import samples
from virthost.host.stats import HostStatsSampler, VmSummary, format_date_time

PID = 4242
KSMD = 77
MEMINFO = """\
MemTotal:       16384000 kB
MemFree:         4096000 kB
Buffers:          102400 kB
Cached:          2048000 kB
SwapTotal:       2097152 kB
SwapFree:        1048576 kB
AnonHugePages:    409600 kB
SReclaimable:     204800 kB
"""
NET_DEV_HEADER = (
    "Inter-|   Receive                                                |  Transmit\n"
    " face |bytes    packets errs drop fifo frame compressed multicast|"
    "bytes    packets errs drop fifo colls carrier compressed\n"
)


def _net_dev(rx: int, tx: int) -> str:
    return (
        NET_DEV_HEADER
        + "    lo: 100 1 0 0 0 0 0 0 100 1 0 0 0 0 0 0\n"
        + f"  eth0: {rx} 100 0 3 0 0 0 0 {tx} 50 0 1 0 0 0 0\n"
    )


def _pid_stat(pid: int, comm: str, utime: int, stime: int) -> str:
    # Fields 3.. of proc(5); utime/stime are fields 14/15, threads 20, rss 24 (pages).
    rest = ["S", "1", "1", "0", "0", "-1", "0", "0", "0", "0", "0", str(utime), str(stime)]
    rest += ["0", "0", "20", "0", "12", "0", "100", "1000000", "2560"]
    return f"{pid} ({comm}) {' '.join(rest)} 0 0 0\n"


def _state(
    user: int, nice: int, sys: int, cpu0: tuple[int, int], cpu1: tuple[int, int]
) -> dict[str, str]:
    return {
        "/proc/stat": (
            f"cpu  {user} {nice} {sys} 8000 10 0 0 0 0 0\n"
            f"cpu0 {cpu0[0]} 0 {cpu0[1]} 4000 5 0 0 0 0 0\n"
            f"cpu1 {cpu1[0]} 0 {cpu1[1]} 4000 5 0 0 0 0 0\n"
            "intr 1 2 3\nbtime 1700000000\n"
        ),
    }


def _tree(tmp_path: Path, second: bool) -> str:
    files = {
        "/proc/loadavg": "0.50 0.75 0.80 1/200 999\n",
        "/proc/meminfo": MEMINFO,
        "/sys/devices/system/node/node0/cpulist": "0-1\n",
        "/sys/devices/system/node/node0/meminfo": (
            "Node 0 MemTotal: 16384000 kB\nNode 0 MemFree: 4096000 kB\n"
        ),
        "/sys/devices/system/node/node0/distance": "10\n",
        "/sys/class/net/eth0/speed": "1000\n",
        "/sys/class/net/eth0/operstate": "up\n",
        "/sys/kernel/mm/transparent_hugepage/enabled": "[always] madvise never\n",
        "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages": "16\n",
        "/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages": "8\n",
        "/sys/kernel/mm/ksm/run": "1\n",
        "/sys/kernel/mm/ksm/pages_to_scan": "100\n",
        "/sys/kernel/mm/ksm/pages_sharing": "2560\n",
        "/sys/kernel/mm/ksm/merge_across_nodes": "1\n",
    }
    if not second:
        files.update(_state(900, 100, 500, (500, 250), (500, 250)))
        files["/proc/net/dev"] = _net_dev(1_000_000, 2_000_000)
        files[f"/proc/{PID}/stat"] = _pid_stat(PID, "virthostd main", 100, 20)
        files[f"/proc/{KSMD}/stat"] = _pid_stat(KSMD, "ksmd", 10, 10)
    else:
        # 10 s later at 100 ticks/s on 2 CPUs: user +600 (nice included), sys +200.
        files.update(_state(1400, 200, 700, (900, 350), (700, 350)))
        files["/proc/net/dev"] = _net_dev(13_500_000, 4_500_000)
        files[f"/proc/{PID}/stat"] = _pid_stat(PID, "virthostd main", 150, 40)
        files[f"/proc/{KSMD}/stat"] = _pid_stat(KSMD, "ksmd", 30, 30)
    return make_tree(tmp_path, files)


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _sampled(tmp_path: Path) -> tuple[HostStatsSampler, FakeClock]:
    clock = FakeClock(100.0)
    wall = FakeClock(1_700_000_100.0)
    sampler = HostStatsSampler(
        _tree(tmp_path, second=False),
        PID,
        clock=clock,
        wall_clock=wall,
        started=50.0,
        clock_ticks=100,
        page_kib=4,
        ksmd_pid=KSMD,
    )
    sampler.sample()
    clock.now, wall.now = 110.0, 1_700_000_110.0
    _tree(tmp_path, second=True)
    sampler.sample()
    return sampler, clock


def test_cpu_figures(tmp_path: Path) -> None:
    sampler, _ = _sampled(tmp_path)
    stats = sampler.stats(now=1_700_000_111.0)
    assert (stats["cpuUser"], stats["cpuSys"], stats["cpuIdle"]) == ("30.00", "10.00", "60.00")
    assert stats["cpuStatistics"] == {
        "0": {"nodeIndex": 0, "cpuUser": "40.00", "cpuSys": "10.00", "cpuIdle": "50.00"},
        "1": {"nodeIndex": 0, "cpuUser": "20.00", "cpuSys": "10.00", "cpuIdle": "70.00"},
    }
    assert (stats["cpuUserVdsmd"], stats["cpuSysVdsmd"]) == ("5.00", "2.00")
    assert stats["cpuLoad"] == "0.75"
    assert stats["bootTime"] == "1700000000"


def test_memory_figures(tmp_path: Path) -> None:
    sampler, _ = _sampled(tmp_path)
    vms = VmSummary(count=3, active=2, incoming=1, committed_mib=2048, resident_mib=1024)
    stats = sampler.stats(vms=vms)
    assert stats["memFree"] == 6300 and stats["memUsed"] == "62"
    # free+cached+buffers 6100 MiB + resident 1024 - committed 2048 - reserve 256
    assert stats["memAvailable"] == 6100 + 1024 - 2048 - 256
    assert stats["memCommitted"] == 2048
    assert (stats["swapTotal"], stats["swapFree"]) == (2048, 1024)
    assert stats["anonHugePages"] == "400"
    assert stats["numaNodeMemFree"] == {"0": {"memFree": "4000", "memPercent": 75}}
    assert stats["thpState"] == "always"
    assert stats["hugepages"]["2048"]["nr_hugepages"] == 16
    assert stats["hugepages"]["2048"]["vm.free_hugepages"] == 8
    assert (stats["vmCount"], stats["vmActive"], stats["vmMigrating"]) == (3, 2, 1)
    assert stats["incomingVmMigrations"] == 1 and stats["outgoingVmMigrations"] == 0


def test_ksm_figures(tmp_path: Path) -> None:
    stats = _sampled(tmp_path)[0].stats()
    assert stats["ksmState"] is True and stats["ksmPages"] == 100
    assert stats["ksmCpu"] == 4  # 40 ticks of ksmd in 10 s
    assert stats["ksmMergeAcrossNodes"] is True
    assert stats["memShared"] == 10  # 2560 pages of 4 KiB


def test_network_figures(tmp_path: Path) -> None:
    stats = _sampled(tmp_path)[0].stats()
    assert list(stats["network"]) == ["eth0"]
    eth0: dict[str, Any] = stats["network"]["eth0"]
    assert eth0["rx"] == "13500000" and eth0["tx"] == "4500000"
    assert eth0["speed"] == "1000" and eth0["state"] == "up"
    assert eth0["rxRate"] == "1.00"  # 12.5 MB in 10 s = 10 Mb/s of 1000 Mb/s
    assert eth0["txRate"] == "0.20"
    assert eth0["sampleTime"] == 1_700_000_110.0
    assert (stats["rxDropped"], stats["txDropped"]) == ("3", "1")


def test_time_fields_are_computed_per_call(tmp_path: Path) -> None:
    sampler, clock = _sampled(tmp_path)
    clock.now = 123.4
    first = sampler.stats(now=1_700_000_000.0)
    assert first["elapsedTime"] == "73.40"
    assert first["dateTime"] == "2023-11-14T22:13:20 GMT"
    clock.now = 130.0
    assert sampler.stats()["elapsedTime"] == "80.00"
    assert first["netConfigDirty"] == "False"
    assert sampler.stats(net_config_dirty=True)["netConfigDirty"] == "True"


def test_process_health(tmp_path: Path) -> None:
    health = _sampled(tmp_path)[0].process_health()
    assert health is not None
    assert (health.cpu_user, health.cpu_sys) == (5.0, 2.0)
    assert health.threads == 12 and health.rss_kib == 10240


def test_before_two_samples(tmp_path: Path) -> None:
    sampler = HostStatsSampler(_tree(tmp_path, second=False), PID, clock_ticks=100, ksmd_pid=KSMD)
    empty = sampler.stats()
    assert empty["cpuIdle"] == "100.00" and empty["network"] == {}
    assert "memFree" not in empty
    sampler.sample()
    one = sampler.stats()
    assert one["cpuUser"] == "0.00" and one["memFree"] == 6300
    assert one["network"]["eth0"]["rxRate"] == "0.00" and one["ksmCpu"] == 0


def test_stale_sample_is_dropped(tmp_path: Path) -> None:
    sampler, clock = _sampled(tmp_path)
    clock.now = 105.0  # a worker that started before the latest sample finishes late
    _tree(tmp_path, second=False)
    sampler.sample()
    assert sampler.stats()["cpuUser"] == "30.00"


def test_format_date_time() -> None:
    assert format_date_time(0) == "1970-01-01T00:00:00 GMT"


def test_parsers() -> None:
    stat = samples.parse_proc_stat("cpu  1 2 3 4\ncpu0 1 2 3 4\nbtime 5\n")
    assert stat.total == samples.CpuTimes(user=3, sys=3, idle=4) and stat.boot_time == 5
    proc = samples.parse_pid_stat(_pid_stat(9, "a) (b", 7, 8), page_kib=4)
    assert (proc.user_ticks, proc.sys_ticks, proc.threads) == (7, 8, 12)
    assert samples.parse_thp_state("always madvise [never]") == "never"
    assert samples.parse_loadavg("") == "0.00"


# --- this machine ---------------------------------------------------------------------------


def test_real_machine_sampling_is_thread_safe() -> None:
    sampler = HostStatsSampler()
    sampler.sample()
    failures: list[BaseException] = []
    done = threading.Event()

    def read() -> None:
        try:
            while not done.is_set():
                stats = sampler.stats()
                assert 0.0 <= float(stats["cpuIdle"]) <= 100.0
        except BaseException as exc:
            failures.append(exc)
            raise

    readers = [threading.Thread(target=read) for _ in range(4)]
    for thread in readers:
        thread.start()
    for _ in range(20):
        sampler.sample()
    done.set()
    for thread in readers:
        thread.join(timeout=10)
    assert not failures
    stats = sampler.stats()
    assert int(stats["bootTime"]) > 0 and stats["memFree"] > 0
    assert stats["cpuStatistics"]
    assert float(stats["elapsedTime"]) >= 0.0
    health = sampler.process_health()
    assert health is not None and health.threads >= 1 and health.rss_kib > 0


@pytest.mark.parametrize("name", ["cpuUser", "cpuSys", "cpuIdle", "cpuUserVdsmd", "cpuSysVdsmd"])
def test_real_machine_percent_format(name: str) -> None:
    sampler = HostStatsSampler()
    sampler.sample()
    sampler.sample()
    value = sampler.stats()[name]
    assert isinstance(value, str) and value.count(".") == 1 and len(value.split(".")[1]) == 2
