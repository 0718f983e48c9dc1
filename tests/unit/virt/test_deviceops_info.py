"""VM.getInfo's record (devops_info.vm_definition): VDSM's VM conf, derived from libvirt XML."""

from __future__ import annotations

import uuid

from virthost.virt import vmstatus
from virthost.virt.devops_info import vm_definition
from virthost.virt.vm import Vm

VM_ID = str(uuid.UUID(int=11))
XML = f"""<domain type='kvm'><name>info</name><uuid>{VM_ID}</uuid>
<memory unit='GiB'>1</memory><currentMemory unit='KiB'>524288</currentMemory>
<vcpu current='2'>4</vcpu><os><type arch='x86_64' machine='q35'>hvm</type></os>
<devices><emulator>/usr/bin/qemu-system-x86_64</emulator>
  <disk type='block' device='disk'><driver name='qemu' type='raw'/><source dev='/dev/vg/lv'/>
    <target dev='sda' bus='scsi'/><serial>abc</serial><shareable/><alias name='ua-d1'/>
    <address type='drive' controller='0' bus='0' target='0' unit='0'/></disk>
  <disk type='file' device='cdrom'><source index='3'/><target dev='hdc' bus='sata'/><readonly/>
  </disk>
  <interface type='bridge'><mac address='56:6f:00:00:00:01'/><source bridge='ovirtmgmt'/>
    <target dev='vnet3'/><model type='virtio'/><link state='down'/></interface>
  <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
  <graphics type='spice' port='5901' tlsPort='5902' autoport='yes'>
    <listen type='address' address='192.0.2.1'/></graphics>
  <graphics type='vnc' port='5903' listen='0.0.0.0'/>
  <video><model type='qxl' ram='65536'/></video>
  <controller type='scsi' index='0' model='virtio-scsi'/>
  <memballoon model='none'/>
</devices></domain>"""


def vm(status: str = vmstatus.UP) -> Vm:
    machine = Vm(VM_ID, "info", status=status)
    machine.custom = {"k": "v"}
    return machine


def test_domain_fields() -> None:
    info = vm_definition(vm(), XML)
    assert (info["vmId"], info["vmName"], info["status"]) == (VM_ID, "info", "Up")
    assert (info["memSize"], info["balloonTarget"]) == (1024, "524288")
    assert (info["smp"], info["maxVCpus"]) == ("2", "4")
    assert (info["emulatedMachine"], info["kvmEnable"], info["acpiEnable"]) == (
        "q35",
        "true",
        "false",
    )
    assert info["custom"] == {"k": "v"} and info["vmType"] == "kvm"


def test_devices() -> None:
    disk, cdrom, nic, channel, spice, vnc, video, controller, balloon = vm_definition(vm(), XML)[
        "devices"
    ]
    assert disk == {
        "type": "disk",
        "device": "disk",
        "diskType": "block",
        "path": "/dev/vg/lv",
        "readonly": False,
        "shared": True,
        "name": "sda",
        "iface": "scsi",
        "format": "raw",
        "serial": "abc",
        "alias": "ua-d1",
        "address": {"type": "drive", "controller": "0", "bus": "0", "target": "0", "unit": "0"},
    }
    assert (cdrom["device"], cdrom["path"], cdrom["readonly"]) == ("cdrom", "", True)
    assert nic == {
        "type": "interface",
        "device": "bridge",
        "macAddr": "56:6f:00:00:00:01",
        "nicModel": "virtio",
        "network": "ovirtmgmt",
        "name": "vnet3",
        "linkActive": False,
    }
    assert channel == {"type": "channel", "device": "unix", "name": "org.qemu.guest_agent.0"}
    assert spice == {"type": "graphics", "device": "spice", "port": "5901", "tlsPort": "5902"}
    assert vnc == {"type": "graphics", "device": "vnc", "port": "5903"}
    assert video == {"type": "video", "device": "qxl"}
    assert controller == {"type": "controller", "device": "scsi", "index": "0"}
    assert balloon == {"type": "balloon", "device": "memballoon", "specParams": {"model": "none"}}


def test_display_is_the_first_graphics_device() -> None:
    info = vm_definition(vm(), XML)
    assert info["display"] == "qxl"  # VDSM's name for SPICE
    assert (info["displayIp"], info["displayPort"], info["displaySecurePort"]) == (
        "192.0.2.1",
        "5901",
        "5902",
    )
    assert info["displayInfo"] == [
        {"type": "spice", "port": "5901", "tlsPort": "5902", "ipAddress": "192.0.2.1"},
        {"type": "vnc", "port": "5903", "tlsPort": "-1", "ipAddress": "0.0.0.0"},
    ]


def test_without_usable_xml_only_what_the_daemon_knows() -> None:
    for xml in ("", "<domain", "<!DOCTYPE d><domain/>"):
        info = vm_definition(vm(vmstatus.DOWN), xml)
        assert info["vmId"] == VM_ID and info["status"] == "Down"
        assert "devices" not in info and "memSize" not in info
