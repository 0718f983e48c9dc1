"""Bulk statistics and guest agent answers in VDSM's getStats shapes."""

from __future__ import annotations

from typing import Any

import libvirt

from virthost.virt.guestagent import translate_guest_info, translate_interfaces
from virthost.virt.sampling import BulkStatsSampler, Sample
from virthost.virt.vm import Vm

VM_ID = "8b3c8a7e-2a3c-4b49-9d55-0f2f0c1c9d02"


def _values(cpu_user: int, rx: int, rd_bytes: int, rd_reqs: int, rd_times: int) -> dict[str, Any]:
    return {
        "state.state": 1,
        "cpu.time": cpu_user * 2,
        "cpu.user": cpu_user,
        "cpu.system": 0,
        "vcpu.current": 2,
        "balloon.current": 131072,
        "balloon.maximum": 131072,
        "balloon.available": 100000,
        "balloon.unused": 25000,
        "net.count": 1,
        "net.0.name": "vnet0",
        "net.0.rx.bytes": rx,
        "net.0.tx.bytes": 10,
        "block.count": 1,
        "block.0.name": "vda",
        "block.0.rd.bytes": rd_bytes,
        "block.0.rd.reqs": rd_reqs,
        "block.0.rd.times": rd_times,
        "block.0.allocation": 7,
        "block.0.capacity": 1024,
    }


class _Sampler(BulkStatsSampler):
    def __init__(self) -> None:  # no libvirt: samples are injected
        super().__init__(None, None)  # type: ignore[arg-type]


def test_rates_from_two_samples() -> None:
    sampler = _Sampler()
    sampler._samples[VM_ID] = (
        Sample(100.0, _values(0, 0, 0, 0, 0)),
        Sample(102.0, _values(2 * 10**9, 1000, 4096, 4, 4000)),
    )
    sampler._last_cycle = 102.0
    stats = sampler.stats_of(Vm(VM_ID, "v"))
    assert stats["monitorResponse"] == "0"
    assert stats["vcpuCount"] == "2"
    assert stats["cpuUser"] == "50.00"  # 2 s of one vCPU out of 2 s x 2 vCPUs
    assert stats["memUsage"] == "75"
    assert stats["network"]["vnet0"]["rx"] == "1000"
    assert stats["disks"]["vda"]["readRate"] == "2048.0"
    assert stats["disks"]["vda"]["readLatency"] == "1000"
    assert stats["disks"]["vda"]["truesize"] == "7"


def test_vm_missing_from_the_last_cycle_is_unresponsive() -> None:
    sampler = _Sampler()
    sampler._samples[VM_ID] = (None, Sample(100.0, _values(0, 0, 0, 0, 0)))
    sampler._last_cycle = 130.0
    assert sampler.stats_of(Vm(VM_ID, "v"))["monitorResponse"] == "-1"


def test_guest_info_translation() -> None:
    info = {
        "hostname": "tinyvm",
        "os.id": "tinyvm",
        "os.name": "TinyVM",
        "os.version-id": "1",
        "os.kernel-release": "6.1.0",
        "os.machine": "x86_64",
        "timezone.name": "UTC",
        "timezone.offset": 3600,
        "user.count": 1,
        "user.0.name": "root",
        "fs.count": 1,
        "fs.0.mountpoint": "/",
        "fs.0.fstype": "ext4",
        "fs.0.total-bytes": 100,
        "fs.0.used-bytes": 40,
    }
    found = translate_guest_info(info)
    assert found["guestFQDN"] == "tinyvm"
    assert found["guestOsInfo"]["distribution"] == "TinyVM"
    assert found["guestTimezone"] == {"zone": "UTC", "offset": 60}
    assert found["username"] == "root"
    assert found["disksUsage"] == [{"path": "/", "fs": "ext4", "total": "100", "used": "40"}]


def test_interfaces_translation() -> None:
    ifaces = {
        "lo": {
            "hwaddr": "00:00:00:00:00:00",
            "addrs": [{"type": libvirt.VIR_IP_ADDR_TYPE_IPV4, "addr": "127.0.0.1"}],
        },
        "eth0": {
            "hwaddr": "52:54:00:01:02:03",
            "addrs": [
                {"type": libvirt.VIR_IP_ADDR_TYPE_IPV4, "addr": "10.0.2.15", "prefix": 24},
                {"type": libvirt.VIR_IP_ADDR_TYPE_IPV6, "addr": "fe80::1", "prefix": 64},
            ],
        },
    }
    found = translate_interfaces(ifaces)
    assert found["guestIPs"] == "10.0.2.15 fe80::1"
    assert found["netIfaces"][0] == {
        "name": "eth0",
        "hw": "52:54:00:01:02:03",
        "inet": ["10.0.2.15"],
        "inet6": ["fe80::1"],
    }
