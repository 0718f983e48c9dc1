"""DeviceOps: media change, disk and NIC hot(un)plug, getInfo, errors and hooks.

libvirt's test driver has no attach/detach/update of devices, so these tests drive a small
fake domain that applies those calls to its XML like libvirt does and records them.
"""

from __future__ import annotations

import copy
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

import libvirt
import pytest

from virthost.common import errors
from virthost.virt import vmstatus
from virthost.virt.connection import LibvirtError
from virthost.virt.deviceops import DeviceOps, DomainAccess
from virthost.virt.vm import Vm

VM_ID = str(uuid.UUID(int=7))
LIVE = f"""<domain type='qemu'><name>tiny</name><uuid>{VM_ID}</uuid>
<memory unit='MiB'>128</memory><currentMemory unit='KiB'>102400</currentMemory>
<vcpu current='1'>2</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os>
<features><acpi/></features>
<devices><emulator>/usr/bin/qemu-system-x86_64</emulator>
  <disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
    <source file='/img/root.qcow2'/><target dev='vda' bus='virtio'/><alias name='virtio-disk0'/>
    <address type='pci' domain='0x0000' bus='0x00' slot='0x05' function='0x0'/></disk>
  <disk type='file' device='cdrom'><driver name='qemu' type='raw'/>
    <target dev='hdc' bus='ide'/><readonly/><alias name='ide0-1-0'/></disk>
  <interface type='user'><mac address='52:54:00:00:00:01'/><model type='virtio'/>
    <alias name='net0'/></interface>
  <memballoon model='virtio'><alias name='balloon0'/></memballoon>
</devices></domain>"""


def libvirt_error(code: int, message: str) -> libvirt.libvirtError:
    error = libvirt.libvirtError(message)
    error.err = (code, 10, message, 2, None, None, None, 0, 0)
    return error


class FakeDomain:
    """Applies device calls to its live (and stored) XML; ``fail`` makes a call raise."""

    def __init__(self, persistent: bool = True, releases: bool = True) -> None:
        self.live = ET.fromstring(LIVE)
        self.stored = copy.deepcopy(self.live)
        self.persistent = persistent
        self.releases = releases  # the guest lets go of detached devices
        self.calls: list[tuple[str, str, int]] = []
        self.fail: dict[str, libvirt.libvirtError] = {}
        self.pending: list[ET.Element] = []

    def XMLDesc(self, flags: int) -> str:
        stored = flags & libvirt.VIR_DOMAIN_XML_INACTIVE
        return ET.tostring(self.stored if stored else self.live, encoding="unicode")

    def isPersistent(self) -> bool:
        return self.persistent

    def _record(self, name: str, xml: str, flags: int) -> ET.Element:
        self.calls.append((name, xml, flags))
        if name in self.fail:
            raise self.fail[name]
        return ET.fromstring(xml)

    def _trees(self, flags: int) -> list[ET.Element]:
        trees = [self.live] if flags & libvirt.VIR_DOMAIN_AFFECT_LIVE else []
        return trees + ([self.stored] if flags & libvirt.VIR_DOMAIN_AFFECT_CONFIG else [])

    def attachDeviceFlags(self, xml: str, flags: int) -> None:
        device = self._record("attach", xml, flags)
        for tree in self._trees(flags):
            tree.find("devices").append(copy.deepcopy(device))  # type: ignore[union-attr]

    def detachDeviceFlags(self, xml: str, flags: int) -> None:
        device = self._record("detach", xml, flags)
        for tree in self._trees(flags):
            for found in list(tree.find("devices")):  # type: ignore[arg-type]
                if _same(found, device) and (tree is not self.live or self.releases):
                    tree.find("devices").remove(found)  # type: ignore[union-attr]

    def updateDeviceFlags(self, xml: str, flags: int) -> None:
        device = self._record("update", xml, flags)
        for tree in self._trees(flags):
            devices = tree.find("devices")
            for index, found in enumerate(list(devices)):  # type: ignore[arg-type]
                if _same(found, device):
                    devices[index] = copy.deepcopy(device)  # type: ignore[index]


def _same(a: ET.Element, b: ET.Element) -> bool:
    if a.tag != b.tag:
        return False
    if a.tag == "interface":
        return a.find("mac").get("address") == b.find("mac").get("address")  # type: ignore[union-attr]
    return a.find("target").get("dev") == b.find("target").get("dev")  # type: ignore[union-attr]


class FakeHooks:
    def __init__(self, rewrite: Callable[[str, str], str] | None = None) -> None:
        self.runs: list[tuple[str, str, dict[str, str], bool]] = []
        self.rewrite = rewrite

    def run_domxml(self, point: str, domxml: str, **kw: Any) -> str:
        self.runs.append((point, domxml, dict(kw["custom"]), kw["raise_errors"]))
        return self.rewrite(point, domxml) if self.rewrite else domxml


class FakeVirt:
    """VirtService's accessors over one VM and one (fake or test-driver) domain."""

    def __init__(self, dom: Any, hooks: FakeHooks | None = None) -> None:
        self.dom = dom
        self.hooks = hooks
        self.vm = Vm(VM_ID, "tiny", status=vmstatus.UP)
        self.vm.custom = {"site": "lab"}

    def get_vm(self, vm_id: str) -> Vm:
        if vm_id != self.vm.id:
            raise errors.NoSuchVM(vm_id)
        return self.vm

    def running_vm(self, vm_id: str) -> Vm:
        vm = self.get_vm(vm_id)
        if vm.is_down:
            raise errors.VMIsDown(vm_id)
        return vm

    def domain_call(self, vm: Vm, what: str, func: Callable[[Any], Any]) -> Any:
        try:
            return func(self.dom)
        except libvirt.libvirtError as e:
            raise LibvirtError(f"{what} vm {vm.id}: {e.get_error_message()}") from None


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def make_ops(dom: FakeDomain, hooks: FakeHooks | None = None) -> tuple[DeviceOps, FakeVirt, Clock]:
    virt = FakeVirt(dom, hooks)
    clock = Clock()
    ops = DeviceOps(DomainAccess(virt), unplug_timeout=5.0, clock=clock, sleep=clock.sleep)
    return ops, virt, clock


def live_disk(dom: FakeDomain, target: str) -> ET.Element | None:
    return next(
        (d for d in dom.live.iter("disk") if d.find("target").get("dev") == target),  # type: ignore[union-attr]
        None,
    )


# --- media ------------------------------------------------------------------------------


def test_change_cd_inserts_and_ejects_live_and_stored() -> None:
    dom = FakeDomain()
    ops, virt, _ = make_ops(dom)
    answer = ops.change_media(VM_ID, "cdrom", "/iso/a.iso")
    name, xml, flags = dom.calls[-1]
    assert name == "update"
    expected = libvirt.VIR_DOMAIN_AFFECT_LIVE | libvirt.VIR_DOMAIN_AFFECT_CONFIG
    assert flags == expected | libvirt.VIR_DOMAIN_DEVICE_MODIFY_FORCE
    assert ET.fromstring(xml).find("alias").get("name") == "ide0-1-0"  # type: ignore[union-attr]
    assert live_disk(dom, "hdc").find("source").get("file") == "/iso/a.iso"  # type: ignore[union-attr]
    cdrom = next(d for d in answer["devices"] if d.get("device") == "cdrom")
    assert cdrom["path"] == "/iso/a.iso"
    assert "/iso/a.iso" in virt.vm.domain_xml
    ops.change_media(VM_ID, "cdrom", {"path": ""})
    assert live_disk(dom, "hdc").find("source") is None  # type: ignore[union-attr]


def test_change_cd_of_a_transient_domain_touches_only_the_live_one() -> None:
    dom = FakeDomain(persistent=False)
    ops, _, _ = make_ops(dom)
    ops.change_media(VM_ID, "cdrom", "/iso/a.iso")
    assert not dom.calls[-1][2] & libvirt.VIR_DOMAIN_AFFECT_CONFIG


def test_change_cd_failure_is_change_disk_failed_with_libvirt_words() -> None:
    dom = FakeDomain()
    # libvirt says "system error" for a missing file: it must not pass for a broken connection
    dom.fail["update"] = libvirt_error(
        libvirt.VIR_ERR_SYSTEM_ERROR, "Cannot access storage file '/iso/nope.iso'"
    )
    ops, _, _ = make_ops(dom)
    with pytest.raises(errors.ChangeDiskFailed) as failed:
        ops.change_media(VM_ID, "cdrom", "/iso/nope.iso")
    assert failed.value.code == 41
    assert "/iso/nope.iso" in failed.value.wire_message
    assert len(dom.calls) == 1  # not retried


def test_change_floppy_without_a_floppy_drive() -> None:
    ops, _, _ = make_ops(FakeDomain())
    with pytest.raises(errors.ChangeDiskFailed, match="no floppy drive"):
        ops.change_media(VM_ID, "floppy", "/img/boot.img")


def test_media_of_a_vanished_domain_is_no_such_vm() -> None:
    dom = FakeDomain()
    dom.fail["update"] = libvirt_error(libvirt.VIR_ERR_NO_DOMAIN, "Domain not found")
    ops, _, _ = make_ops(dom)
    with pytest.raises(errors.NoSuchVM):
        ops.change_media(VM_ID, "cdrom", "/iso/a.iso")


def test_device_verbs_refuse_down_and_migrating_vms() -> None:
    ops, virt, _ = make_ops(FakeDomain())
    virt.vm.set_status(vmstatus.MIGRATION_SOURCE)
    with pytest.raises(errors.MigrationInProgress):
        ops.change_media(VM_ID, "cdrom", "/iso/a.iso")
    virt.vm.set_status(vmstatus.DOWN)
    with pytest.raises(errors.VMIsDown):
        ops.hotplug_disk(VM_ID, {"drive": {"path": "/img/x"}})


# --- disks ------------------------------------------------------------------------------


def test_hotplug_disk_from_a_drive_dict_with_hooks() -> None:
    hooks = FakeHooks(
        rewrite=lambda point, xml: (
            xml.replace("</disk>", "<serial>hooked</serial></disk>")
            if point == "before_disk_hotplug"
            else xml
        )
    )
    dom = FakeDomain()
    ops, _, _ = make_ops(dom, hooks)
    answer = ops.hotplug_disk(VM_ID, {"vmId": VM_ID, "drive": {"path": "/img/new.qcow2"}})
    name, xml, flags = dom.calls[-1]
    assert name == "attach"
    assert flags == libvirt.VIR_DOMAIN_AFFECT_LIVE | libvirt.VIR_DOMAIN_AFFECT_CONFIG
    assert ET.fromstring(xml).findtext("serial") == "hooked"  # the hook's XML reached libvirt
    assert [r[0] for r in hooks.runs] == ["before_disk_hotplug", "after_disk_hotplug"]
    assert [r[3] for r in hooks.runs] == [True, False]
    assert hooks.runs[0][2] == {"site": "lab"}
    assert ET.fromstring(hooks.runs[0][1]).tag == "disk"  # the device, not the domain
    added = next(d for d in answer["devices"] if d.get("name") == "vdb")
    assert added["path"] == "/img/new.qcow2"


def test_hotplug_disk_from_engine_xml() -> None:
    dom = FakeDomain(persistent=False)
    ops, _, _ = make_ops(dom)
    xml = (
        "<hotplug><devices><disk type='file' device='disk'><source file='/img/e.raw'/>"
        "<target dev='sdb' bus='scsi'/><alias name='ua-e'/></disk></devices></hotplug>"
    )
    ops.hotplug_disk(VM_ID, {"xml": xml})
    assert dom.calls[-1][2] == libvirt.VIR_DOMAIN_AFFECT_LIVE
    assert live_disk(dom, "sdb") is not None


def test_hotplug_disk_refuses_a_taken_target_and_maps_failures() -> None:
    dom = FakeDomain()
    ops, _, _ = make_ops(dom)
    with pytest.raises(errors.HotplugDiskFailed, match="vda already"):
        ops.hotplug_disk(VM_ID, {"drive": {"path": "/img/x", "target": "vda"}})
    assert dom.calls == []
    dom.fail["attach"] = libvirt_error(libvirt.VIR_ERR_INTERNAL_ERROR, "unable to execute QEMU")
    with pytest.raises(errors.HotplugDiskFailed) as failed:
        ops.hotplug_disk(VM_ID, {"drive": {"path": "/img/x"}})
    assert failed.value.code == 45 and "unable to execute QEMU" in failed.value.wire_message
    with pytest.raises(errors.InvalidParameter):  # the repeated vmId must agree
        ops.hotplug_disk(VM_ID, {"vmId": str(uuid.UUID(int=8)), "drive": {"path": "/img/x"}})


def test_hotunplug_disk_waits_until_the_guest_released_it() -> None:
    hooks = FakeHooks()
    dom = FakeDomain()
    ops, _, _ = make_ops(dom, hooks)
    by_alias = "<disk><alias name='virtio-disk0'/></disk>"
    answer = ops.hotunplug_disk(
        VM_ID, {"xml": f"<hotunplug><devices>{by_alias}</devices></hotunplug>"}
    )
    name, xml, flags = dom.calls[-1]
    assert name == "detach"
    assert flags == libvirt.VIR_DOMAIN_AFFECT_LIVE | libvirt.VIR_DOMAIN_AFFECT_CONFIG
    assert ET.fromstring(xml).find("address") is not None  # the live device, as libvirt has it
    assert live_disk(dom, "vda") is None
    assert all(d.get("name") != "vda" for d in answer["devices"])
    assert [r[0] for r in hooks.runs] == ["before_disk_hotunplug", "after_disk_hotunplug"]


def test_hotunplug_disk_times_out_when_the_guest_keeps_it() -> None:
    hooks = FakeHooks()
    dom = FakeDomain(releases=False)
    ops, _, clock = make_ops(dom, hooks)
    with pytest.raises(errors.HotunplugDiskFailed, match="did not release") as failed:
        ops.hotunplug_disk(VM_ID, {"drive": {"target": "vda"}})
    assert failed.value.code == 46
    assert clock.now >= 5.0
    assert [r[0] for r in hooks.runs] == ["before_disk_hotunplug"]  # no after hook


def test_hotunplug_a_disk_only_in_the_live_domain_leaves_the_stored_one_alone() -> None:
    dom = FakeDomain()
    ops, _, _ = make_ops(dom)
    dom.attachDeviceFlags(
        "<disk><source file='/img/l'/><target dev='vdh' bus='virtio'/></disk>",
        libvirt.VIR_DOMAIN_AFFECT_LIVE,
    )
    ops.hotunplug_disk(VM_ID, {"drive": {"target": "vdh"}})
    assert dom.calls[-1][2] == libvirt.VIR_DOMAIN_AFFECT_LIVE
    with pytest.raises(errors.HotunplugDiskFailed, match="no such disk"):
        ops.hotunplug_disk(VM_ID, {"drive": {"target": "vdq"}})


# --- NICs -------------------------------------------------------------------------------


def test_hotplug_and_unplug_nic() -> None:
    hooks = FakeHooks()
    dom = FakeDomain()
    ops, _, _ = make_ops(dom, hooks)
    nic = {"macAddr": "56:6f:00:00:00:02", "type": "user", "nicModel": "e1000"}
    answer = ops.hotplug_nic(VM_ID, {"nic": nic})
    added = next(d for d in answer["devices"] if d.get("macAddr") == "56:6f:00:00:00:02")
    assert added["nicModel"] == "e1000" and added["device"] == "user"
    with pytest.raises(errors.HotplugNicFailed, match="already"):
        ops.hotplug_nic(VM_ID, {"nic": nic})
    by_mac = "<interface><mac address='56:6F:00:00:00:02'/></interface>"
    ops.hotunplug_nic(VM_ID, {"xml": f"<hotunplug><devices>{by_mac}</devices></hotunplug>"})
    assert not any(m.get("address") == "56:6f:00:00:00:02" for m in dom.live.iter("mac"))
    assert [r[0] for r in hooks.runs] == [
        "before_nic_hotplug",
        "after_nic_hotplug",
        "before_nic_hotunplug",
        "after_nic_hotunplug",
    ]


def test_nic_failures_have_their_codes() -> None:
    dom = FakeDomain(releases=False)
    ops, _, _ = make_ops(dom)
    dom.fail["attach"] = libvirt_error(libvirt.VIR_ERR_OPERATION_FAILED, "no free PCI slot")
    with pytest.raises(errors.HotplugNicFailed) as plug:
        ops.hotplug_nic(VM_ID, {"nic": {"macAddr": "56:6f:00:00:00:03", "type": "user"}})
    assert plug.value.code == 49
    with pytest.raises(errors.HotunplugNicFailed) as unplug:
        ops.hotunplug_nic(VM_ID, {"nic": {"macAddr": "52:54:00:00:00:01"}})
    assert unplug.value.code == 50
    with pytest.raises(errors.HotunplugNicFailed, match="no such NIC"):
        ops.hotunplug_nic(VM_ID, {"nic": {"macAddr": "52:54:00:00:00:09"}})


def test_a_failing_before_hook_stops_the_change() -> None:
    class Refusing(FakeHooks):
        def run_domxml(self, point: str, domxml: str, **kw: Any) -> str:
            raise errors.HookError(f"{point} refused")

    dom = FakeDomain()
    ops, _, _ = make_ops(dom, Refusing())
    with pytest.raises(errors.HookError):
        ops.hotplug_nic(VM_ID, {"nic": {"macAddr": "56:6f:00:00:00:04", "type": "user"}})
    assert dom.calls == []


# --- getInfo ----------------------------------------------------------------------------


def test_info_reads_the_live_xml_then_the_last_known_one() -> None:
    dom = FakeDomain()
    ops, virt, _ = make_ops(dom)
    info = ops.info(VM_ID)
    assert (info["vmId"], info["status"], info["memSize"]) == (VM_ID, "Up", 128)
    with pytest.raises(errors.NoSuchVM):
        ops.info(str(uuid.UUID(int=9)))
    virt.vm.set_status(vmstatus.DOWN)
    dom.live = ET.fromstring("<domain/>")
    info = ops.info(VM_ID)
    assert info["status"] == "Down" and info["memSize"] == 128
