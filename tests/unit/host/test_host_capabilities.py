"""Host.getCapabilities assembled from a fake tree, a fake libvirt and a scripted runner."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from unit.host.host_fakes import FakeRunner, data_text, make_tree, result
from virthost.host import capabilities
from virthost.host.capabilities import CapabilitiesConfig


class FakeLibvirt:
    def __init__(self, domcaps_error: bool = False) -> None:
        self.domcaps_error = domcaps_error
        self.domcaps_args: tuple[Any, ...] = ()

    def getCapabilities(self) -> str:
        return data_text("libvirt_capabilities.xml")

    def getDomainCapabilities(
        self,
        emulatorbin: str | None,
        arch: str | None,
        machine: str | None,
        virttype: str | None,
        flags: int = 0,
    ) -> str:
        self.domcaps_args = (emulatorbin, arch, machine, virttype, flags)
        if self.domcaps_error:
            raise RuntimeError("libvirt: unsupported configuration")
        return data_text("libvirt_domcapabilities.xml")

    def getVersion(self) -> int:
        return 7002022

    def getLibVersion(self) -> int:
        return 9000000


NETWORK = {
    "networks": {},
    "bridges": {},
    "nics": {"eth0": {"hwaddr": "02:fc:00:00:00:01"}},
    "vlans": {},
    "bondings": {},
    "nameservers": [],
    "supportsIPv6": True,
}


def _tree(tmp_path: Path) -> str:
    return make_tree(
        tmp_path,
        {
            "/proc/cpuinfo": data_text("proc_cpuinfo_x86.txt"),
            "/proc/meminfo": "MemTotal: 8388608 kB\nMemFree: 4194304 kB\n",
            "/proc/cmdline": "root=/dev/vda1 ro\n",
            "/sys/devices/system/cpu/online": "0-1\n",
            "/sys/devices/system/node/node0/cpulist": "0-1\n",
            "/sys/devices/system/node/node0/meminfo": "Node 0 MemTotal: 8388608 kB\n",
            "/sys/devices/system/node/node0/distance": "10\n",
            "/dev/kvm": "",
            "/dev/random": "",
            "/etc/os-release": 'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian 12"\n',
            "/var/lib/dpkg/status": "",
        },
    )


def _runner() -> FakeRunner:
    return FakeRunner(
        {
            ("dpkg-query",): result(("dpkg-query",), "libvirt0\t9.0.0-4\tii \n", rc=1),
            ("findmnt",): result(("findmnt",), "4d8a6c2e-1f5b-4c1a-9a0e-2b6d7c8e9f00\n"),
        }
    )


def _collect(tmp_path: Path, **kwargs: Any) -> dict[str, Any]:
    config = CapabilitiesConfig(arch="x86_64", command_timeout=4.0)
    return capabilities.collect_capabilities(
        lambda: FakeLibvirt(**kwargs),
        _runner(),
        "11111111-2222-3333-4444-555555555555",
        root=_tree(tmp_path),
        config=config,
        network_caps=NETWORK,
    )


def test_cpu_and_memory_keys(tmp_path: Path) -> None:
    caps = _collect(tmp_path)
    assert caps["uuid"] == "11111111-2222-3333-4444-555555555555"
    assert (caps["cpuSockets"], caps["cpuCores"], caps["cpuThreads"]) == ("1", "2", "2")
    assert caps["onlineCpus"] == "0,1"
    assert caps["cpuSpeed"] == "2600.000" and caps["cpuModel"] == "Intel(R) Xeon(R) Processor"
    flags = caps["cpuFlags"].split(",")
    assert "avx512f" in flags and "model_pentium3" in flags and "arch-capabilities" in flags
    assert caps["memSize"] == "8192" and caps["reservedMem"] == "321"
    assert caps["guestOverhead"] == "65"
    assert caps["numaNodes"]["0"]["cpus"] == [0, 1]
    assert caps["numaNodeDistance"] == {"0": [10]}


def test_host_and_version_keys(tmp_path: Path) -> None:
    caps = _collect(tmp_path)
    assert caps["kvmEnabled"] == "true" and caps["vmTypes"] == ["kvm"]
    assert "pc-q35-7.2" in caps["emulatedMachines"]
    assert caps["tscFrequency"] == "2600000000" and caps["tscScaling"] is False
    assert caps["operatingSystem"]["name"] == "Debian"
    assert caps["kernelArgs"] == "root=/dev/vda1 ro"
    assert caps["packages2"]["libvirt"] == {"version": "9.0.0", "release": "4"}
    assert caps["packages2"]["qemu-kvm"] == {"version": "7.2.22", "release": ""}
    assert caps["packages2"]["virthost"]["version"] == caps["software_version"]
    assert caps["version_name"] == "virthost"
    assert caps["clusterLevels"] == ["4.2", "4.3", "4.4", "4.5", "4.6", "4.7"]
    assert caps["supportedENGINEs"] == ["4.2", "4.3", "4.4", "4.5"]
    assert caps["boot_uuid"] == "4d8a6c2e-1f5b-4c1a-9a0e-2b6d7c8e9f00"
    assert caps["selinux"] == {"mode": "-1"} and caps["fipsEnabled"] is False
    assert caps["rngSources"] == ["random"]
    assert (caps["liveSnapshot"], caps["liveMerge"]) == ("true", "true")
    assert caps["domain_versions"] == [0, 2, 3, 4, 5]
    assert caps["supported_block_size"]["ISCSI"] == [512]
    assert caps["nics"] == NETWORK["nics"] and caps["netConfigDirty"] == "False"
    assert caps["hooks"] == {}


def test_domain_capabilities_are_optional(tmp_path: Path) -> None:
    caps = _collect(tmp_path, domcaps_error=True)
    assert "model_" not in caps["cpuFlags"]
    assert "avx512f" in caps["cpuFlags"].split(",")


def test_domcaps_virt_type_follows_kvm(tmp_path: Path) -> None:
    fake = FakeLibvirt()
    root = _tree(tmp_path)
    (tmp_path / "dev" / "kvm").unlink()
    caps = capabilities.collect_capabilities(
        lambda: fake,
        _runner(),
        "u",
        root=root,
        config=CapabilitiesConfig(arch="x86_64"),
        network_caps=NETWORK,
    )
    assert caps["kvmEnabled"] == "false"
    assert fake.domcaps_args == (None, "x86_64", None, "qemu", 0)


@pytest.mark.parametrize(
    ("version", "levels"),
    [
        ("6.0.0", ["4.2", "4.3", "4.4"]),
        ("6.6.0", ["4.2", "4.3", "4.4", "4.5"]),
        ("7.9.0", ["4.2", "4.3", "4.4", "4.5", "4.6"]),
        ("10.0.0", ["4.2", "4.3", "4.4", "4.5", "4.6", "4.7"]),
        (None, ["4.2", "4.3", "4.4"]),
    ],
)
def test_cluster_levels(version: str | None, levels: list[str]) -> None:
    assert capabilities.cluster_levels(version) == levels
