"""CPU model, flags, speed and topology from /proc/cpuinfo and sysfs."""

from __future__ import annotations

from pathlib import Path

import pytest

from unit.host.host_fakes import data_text, make_tree
from virthost.host import cpuinfo

# Two sockets, one core each, two threads per core (hyper-threading).
TWO_SOCKETS_HT = """\
processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz
cpu MHz\t\t: 2100.000
physical id\t: 0
core id\t\t: 0
flags\t\t: fpu vme de pse tsc msr vmx sse4_2 avx2

processor\t: 1
model name\t: Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz
cpu MHz\t\t: 2200.000
physical id\t: 0
core id\t\t: 0
flags\t\t: fpu vme de pse tsc msr vmx sse4_2 avx2

processor\t: 2
model name\t: Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz
cpu MHz\t\t: 2100.000
physical id\t: 1
core id\t\t: 0
flags\t\t: fpu vme de pse tsc msr vmx sse4_2 avx2

processor\t: 3
model name\t: Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz
cpu MHz\t\t: 2100.000
physical id\t: 1
core id\t\t: 0
flags\t\t: fpu vme de pse tsc msr vmx sse4_2 avx2
"""

AARCH64 = """\
processor\t: 0
BogoMIPS\t: 50.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid
CPU implementer\t: 0x41
CPU part\t: 0xd0c

processor\t: 1
BogoMIPS\t: 50.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid
CPU part\t: 0xd0c
"""

POWER9 = """\
processor\t: 0
cpu\t\t: POWER9 (architected), altivec supported
clock\t\t: 2750.000000MHz
revision\t: 2.2 (pvr 004e 1202)

timebase\t: 512000000
platform\t: pSeries
model\t\t: IBM pSeries (emulated by qemu)
"""


def test_two_socket_hyperthreaded_host() -> None:
    info = cpuinfo.parse_cpuinfo(TWO_SOCKETS_HT)
    assert info.model == "Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz"
    assert info.speed_mhz == "2100.000"  # the first processor's clock, as VDSM reports
    assert info.flags == ("fpu", "vme", "de", "pse", "tsc", "msr", "vmx", "sse4_2", "avx2")
    assert (info.sockets, info.cores, info.threads) == (2, 2, 4)


def test_this_machines_cpuinfo() -> None:
    info = cpuinfo.parse_cpuinfo(data_text("proc_cpuinfo_x86.txt"))
    assert info.model == "Intel(R) Xeon(R) Processor"
    assert info.speed_mhz == "2600.000"
    assert "avx512f" in info.flags and "hypervisor" in info.flags
    assert (info.sockets, info.cores, info.threads) == (1, 2, 2)


def test_aarch64_uses_features_and_cpu_part() -> None:
    info = cpuinfo.parse_cpuinfo(AARCH64)
    assert info.model == "0xd0c"
    assert info.speed_mhz == "50.00"
    assert "asimd" in info.flags
    assert info.threads == 2 and info.cores == 2 and info.sockets == 1


def test_power_clock_loses_its_unit() -> None:
    info = cpuinfo.parse_cpuinfo(POWER9)
    assert info.model == "POWER9 (architected), altivec supported"
    assert info.speed_mhz == "2750.000000"


def test_empty_cpuinfo_is_not_an_error() -> None:
    info = cpuinfo.parse_cpuinfo("")
    assert info.model == "unavailable" and info.flags == () and info.threads == 1


@pytest.mark.parametrize(
    ("text", "cpus"),
    [("0-3,8,10-11\n", [0, 1, 2, 3, 8, 10, 11]), ("0", [0]), ("", []), ("2-2", [2])],
)
def test_parse_cpu_list(text: str, cpus: list[int]) -> None:
    assert cpuinfo.parse_cpu_list(text) == cpus


def _topology_tree(tmp_path: Path) -> str:
    files = {"/sys/devices/system/cpu/online": "0-3\n", "/proc/cpuinfo": TWO_SOCKETS_HT}
    layout = {0: (0, 0), 1: (0, 0), 2: (1, 0), 3: (1, 0)}  # cpu -> (package, core)
    for cpu, (package, core) in layout.items():
        base = f"/sys/devices/system/cpu/cpu{cpu}/topology"
        files[f"{base}/physical_package_id"] = f"{package}\n"
        files[f"{base}/core_id"] = f"{core}\n"
        files[f"{base}/die_id"] = "0\n"
    return make_tree(tmp_path, files)


def test_sysfs_placements_and_counts(tmp_path: Path) -> None:
    root = _topology_tree(tmp_path)
    placements = cpuinfo.read_cpu_placements(root)
    assert [(p.cpu_id, p.socket_id, p.core_id) for p in placements] == [
        (0, 0, 0),
        (1, 0, 0),
        (2, 1, 0),
        (3, 1, 0),
    ]
    assert cpuinfo.read_cpu_counts(root) == cpuinfo.CpuCounts(sockets=2, cores=2, threads=4)


def test_counts_fall_back_to_cpuinfo_without_sysfs_topology(tmp_path: Path) -> None:
    root = make_tree(tmp_path, {"/proc/cpuinfo": TWO_SOCKETS_HT})
    assert cpuinfo.read_online_cpus(root) == [0, 1, 2, 3]
    assert cpuinfo.read_cpu_placements(root) == []
    assert cpuinfo.read_cpu_counts(root) == cpuinfo.CpuCounts(sockets=2, cores=2, threads=4)
