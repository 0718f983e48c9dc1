"""Device and guest verbs on real libvirt/QEMU (TCG) through the real daemon.

One tiny guest, booted once for the module (128 MiB, a user-mode NIC, an empty IDE cdrom, no
display), takes media changes, disk and NIC hot(un)plug, balloon targets and freeze/thaw; each
test leaves it as it found it. What the guest sees is checked through its agent (block
devices in /sys/block, network interfaces, file system freeze state), not only in libvirt's
XML. A second guest with a VNC display covers VM.setTicket and VM.screenshot. Hook scripts
record the device XML the daemon hands them.
"""

from __future__ import annotations

import base64
import os
import subprocess
import tempfile
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import libvirt
import pytest

from fixtures import daemon as daemon_fixtures
from guest import image
from integration.virt import vmhelpers as h
from virthost.client import Client
from virthost.client import errors as client_errors
from virthost.common.pki import PkiPaths
from virthost.virt.domxml import build_from_params

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for qemu:///system"),
]

RECORDED_POINTS = ("before_disk_hotplug", "before_nic_hotunplug")
EXTRA_DISK_BYTES = 16 * 1024 * 1024
MIB = 1024


@pytest.fixture(scope="module")
def guest() -> image.GuestImage:
    return image.ensure_guest()


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    """Images, console logs and hook output: readable for libvirt-qemu, writable for all."""
    path = Path(tempfile.mkdtemp(prefix="virthost-devices-", dir="/tmp"))
    path.chmod(0o777)
    yield path
    subprocess.run(["rm", "-rf", str(path)], check=False)


@pytest.fixture(scope="module")
def hooks_dir(workdir: Path) -> Path:
    """Hook scripts copying the XML they get to ``workdir/hooked/<point>.xml``."""
    hooked = workdir / "hooked"
    hooked.mkdir(mode=0o777)
    hooked.chmod(0o777)
    root = workdir / "hooks"
    for point in RECORDED_POINTS:
        script = root / point / "50_record"
        script.parent.mkdir(parents=True)
        script.write_text(f'#!/bin/sh\ncp "$_hook_domxml" "{hooked}/{point}.xml"\n')
        script.chmod(0o755)
    return root


@pytest.fixture(scope="module")
def services(pki: PkiPaths, hooks_dir: Path) -> Iterator[daemon_fixtures.Services]:
    running = daemon_fixtures.start_services(
        pki,
        overrides={
            "virt": {
                "domain_type": "qemu",
                "vm_sample_interval": 1.0,
                "qga_polling_period": 1.0,
                "hooks_dir": str(hooks_dir),
            }
        },
    )
    yield running
    daemon_fixtures.cleanup(running)


@pytest.fixture(scope="module")
def conn() -> Iterator[Any]:
    libvirt.registerErrorHandler(lambda *_: None, None)
    c = libvirt.open("qemu:///system")
    yield c
    c.close()


@pytest.fixture
def cli(services: daemon_fixtures.Services) -> Iterator[Client]:
    with services.client() as client:
        yield client


@pytest.fixture(scope="module")
def vm(services: daemon_fixtures.Services, guest: image.GuestImage, workdir: Path) -> Iterator[str]:
    vm_id = str(uuid.uuid4())
    cdrom = {"device": "cdrom", "iface": "ide", "path": ""}
    with services.client() as cli:
        try:
            h.boot(cli, vm_id, h.simple_params(vm_id, guest, workdir, drives=[cdrom]))
            yield vm_id
        finally:
            h.remove_vm(cli, vm_id)


def devices(answer: dict[str, Any], **match: Any) -> list[dict[str, Any]]:
    return [d for d in answer["devices"] if all(d.get(k) == v for k, v in match.items())]


def server_error(call: Any, **params: Any) -> client_errors.ServerError:
    with pytest.raises(client_errors.ServerError) as failed:
        call(**params)
    return failed.value


def test_change_cd_insert_and_eject(cli: Client, vm: str, conn: Any, workdir: Path) -> None:
    iso = workdir / "media.iso"
    iso.write_bytes(b"\0" * 1024 * 1024)
    iso.chmod(0o644)

    answer = cli.VM.changeCD(vmID=vm, driveSpec=str(iso))
    assert [d["path"] for d in devices(answer, device="cdrom")] == [str(iso)]
    cdrom = ET.fromstring(h.live_xml(conn, vm)).find("devices/disk[@device='cdrom']")
    assert cdrom is not None and cdrom.find("source").get("file") == str(iso)  # type: ignore[union-attr]

    answer = cli.VM.changeCD(vmID=vm, driveSpec={"path": ""})
    assert [d["path"] for d in devices(answer, device="cdrom")] == [""]
    cdrom = ET.fromstring(h.live_xml(conn, vm)).find("devices/disk[@device='cdrom']")
    assert cdrom is not None  # an empty drive may keep a <source index=...> without a file
    assert all(source.get("file") is None for source in cdrom.iter("source"))

    missing = server_error(cli.VM.changeCD, vmID=vm, driveSpec=str(workdir / "nope.iso"))
    assert missing.code == 41 and "nope.iso" in missing.message
    no_floppy = server_error(cli.VM.changeFloppy, vmID=vm, driveSpec=str(iso))
    assert no_floppy.code == 41 and "floppy" in no_floppy.message


def test_disk_hotplug_seen_by_the_guest_then_unplugged(
    cli: Client, vm: str, conn: Any, workdir: Path
) -> None:
    image_path = workdir / "extra.qcow2"
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", str(image_path), str(EXTRA_DISK_BYTES)],
        check=True,
    )
    image_path.chmod(0o666)
    plug = ET.Element("hotplug")
    disk = ET.SubElement(ET.SubElement(plug, "devices"), "disk", type="file", device="disk")
    ET.SubElement(disk, "driver", name="qemu", type="qcow2")
    ET.SubElement(disk, "source", file=str(image_path))
    ET.SubElement(disk, "target", dev="vdb", bus="virtio")
    ET.SubElement(disk, "alias", name="ua-extra")
    dom = conn.lookupByUUIDString(vm)

    answer = cli.VM.hotplugDisk(
        vmID=vm, params={"vmId": vm, "xml": ET.tostring(plug, encoding="unicode")}
    )
    assert [d["path"] for d in devices(answer, name="vdb")] == [str(image_path)]
    # the guest names its disks itself: the tiny guest has no other virtio disk, so vda
    new = h.wait_for(
        lambda: {d for d in h.guest_block_devices(dom) if d.startswith("vd")}, what="a disk"
    )
    assert len(new) == 1
    (name,) = new
    code, size = h.guest_exec(dom, "/bin/cat", f"/sys/block/{name}/size")
    assert code == 0 and int(size) * 512 == EXTRA_DISK_BYTES
    hooked = ET.parse(workdir / "hooked" / "before_disk_hotplug.xml").getroot()
    assert hooked.tag == "disk" and hooked.find("source").get("file") == str(image_path)  # type: ignore[union-attr]
    stored = h.live_xml(conn, vm, libvirt.VIR_DOMAIN_XML_INACTIVE)
    assert str(image_path) in stored  # a restart keeps the disk

    taken = server_error(
        cli.VM.hotplugDisk, vmID=vm, params={"drive": {"path": str(image_path), "target": "vdb"}}
    )
    assert taken.code == 45

    answer = cli.VM.hotunplugDisk(vmID=vm, params={"vmId": vm, "drive": {"alias": "ua-extra"}})
    assert devices(answer, name="vdb") == []
    assert "ua-extra" not in h.live_xml(conn, vm)  # the verb waited for the guest
    assert str(image_path) not in h.live_xml(conn, vm, libvirt.VIR_DOMAIN_XML_INACTIVE)
    h.wait_for(lambda: name not in h.guest_block_devices(dom), what="the disk gone in the guest")

    gone = server_error(cli.VM.hotunplugDisk, vmID=vm, params={"drive": {"target": "vdb"}})
    assert gone.code == 46


def test_hotplug_of_a_missing_image_fails(cli: Client, vm: str, workdir: Path) -> None:
    failed = server_error(
        cli.VM.hotplugDisk, vmID=vm, params={"drive": {"path": str(workdir / "none.qcow2")}}
    )
    assert failed.code == 45 and "none.qcow2" in failed.message


def guest_macs(cli: Client, vm: str) -> set[str]:
    return {iface.get("hw", "").lower() for iface in h.stats(cli, vm).get("netIfaces", [])}


def test_nic_hotplug_seen_by_the_guest_agent_then_unplugged(
    cli: Client, vm: str, conn: Any, workdir: Path
) -> None:
    mac = "56:6f:00:aa:bb:01"
    answer = cli.VM.hotplugNic(
        vmID=vm, params={"nic": {"macAddr": mac, "type": "user", "nicModel": "virtio"}}
    )
    assert [d["nicModel"] for d in devices(answer, macAddr=mac)] == ["virtio"]
    h.wait_for(lambda: mac in guest_macs(cli, vm), what="the new NIC in the guest agent's list")

    unplug = ET.Element("hotunplug")
    nic = ET.SubElement(ET.SubElement(unplug, "devices"), "interface")
    ET.SubElement(nic, "mac", address=mac.upper())
    answer = cli.VM.hotunplugNic(vmID=vm, params={"xml": ET.tostring(unplug, encoding="unicode")})
    assert devices(answer, macAddr=mac) == []
    assert mac not in h.live_xml(conn, vm)
    hooked = ET.parse(workdir / "hooked" / "before_nic_hotunplug.xml").getroot()
    assert hooked.tag == "interface" and hooked.find("mac").get("address") == mac  # type: ignore[union-attr]
    h.wait_for(lambda: mac not in guest_macs(cli, vm), what="the NIC gone from the agent's list")

    first = ET.fromstring(h.live_xml(conn, vm)).find("devices/interface/mac")
    assert first is not None
    existing = {"macAddr": first.get("address"), "type": "user"}
    duplicate = server_error(cli.VM.hotplugNic, vmID=vm, params={"nic": existing})
    assert duplicate.code == 49


def balloon_kib(cli: Client, vm: str) -> int:
    return int(h.stats(cli, vm).get("balloonInfo", {}).get("balloon_cur", 0))


def test_balloon_target_seen_in_the_sampled_stats(cli: Client, vm: str) -> None:
    cli.VM.setBalloonTarget(vmID=vm, target=100 * MIB)  # the guest's floor is about 96 MiB
    h.wait_for(lambda: balloon_kib(cli, vm) == 100 * MIB, what="balloon at 100 MiB")
    cli.VM.setBalloonTarget(vmID=vm, target=str(128 * MIB))
    h.wait_for(lambda: balloon_kib(cli, vm) == 128 * MIB, what="balloon back at 128 MiB")
    too_big = server_error(cli.VM.setBalloonTarget, vmID=vm, target=256 * MIB)
    assert too_big.code == 53


def test_freeze_and_thaw_through_the_agent(cli: Client, vm: str, conn: Any) -> None:
    """The tiny guest has no file system on a block device (ext4 and the like are modules it
    does not ship), so its agent freezes none and stays "thawed"; the verbs must still reach
    the agent and succeed. A paused guest's agent cannot be asked: the verbs' own codes."""
    dom = conn.lookupByUUIDString(vm)
    cli.VM.freeze(vmID=vm)
    cli.VM.thaw(vmID=vm)
    assert h.agent_command(dom, "guest-fsfreeze-status") == "thawed"

    cli.VM.pause(vmID=vm)
    try:
        frozen = server_error(cli.VM.freeze, vmID=vm)
        thawed = server_error(cli.VM.thaw, vmID=vm)
    finally:
        cli.VM.cont(vmID=vm)
    assert frozen.code == 76 and "not running" in frozen.message
    assert thawed.code == 77
    h.wait_for(lambda: h.status(cli, vm) == "Up", what="Up again")


def test_display_verbs_without_a_display(cli: Client, vm: str) -> None:
    ticket = server_error(
        cli.VM.setTicket, vmID=vm, password="pw", ttl=60, existingConnAction="keep"
    )
    assert ticket.code == 18 and "no graphics device" in ticket.message
    shot = server_error(cli.VM.screenshot, vmID=vm)
    assert shot.code == 75


def test_get_info(cli: Client, vm: str) -> None:
    info = cli.VM.getInfo(vmID=vm)
    assert (info["vmId"], info["status"], info["memSize"], info["smp"]) == (vm, "Up", 128, "1")
    assert [d["name"] for d in devices(info, type="disk", device="cdrom")] == ["hda"]
    assert len(devices(info, type="interface")) == 1
    assert "display" not in info and info["displayInfo"] == []
    unknown = server_error(cli.VM.getInfo, vmID=str(uuid.uuid4()))
    assert unknown.code == 1


def test_ticket_and_screenshot_on_a_vnc_display(
    cli: Client, conn: Any, guest: image.GuestImage, workdir: Path
) -> None:
    vm_id = str(uuid.uuid4())
    domain = build_from_params(h.simple_params(vm_id, guest, workdir, display="vnc"))
    graphics = domain.root.find("devices/graphics")
    assert graphics is not None
    # as the engine does: start with an expired password, so QEMU asks for one
    graphics.set("passwd", "*****")
    graphics.set("passwdValidTo", "1970-01-01T00:00:01")
    try:
        h.boot(cli, vm_id, {"xml": domain.to_xml()}, agent=False)
        cli.VM.setTicket(
            vmID=vm_id, password="s3cret", ttl=300, existingConnAction="keep", params={}
        )
        secure = ET.fromstring(h.live_xml(conn, vm_id, libvirt.VIR_DOMAIN_XML_SECURE))
        live_graphics = secure.find("devices/graphics")
        assert live_graphics is not None and live_graphics.get("passwd") == "s3cret"
        assert live_graphics.get("passwdValidTo", "") > "2000"
        stored = h.live_xml(
            conn, vm_id, libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE
        )
        assert "s3cret" not in stored

        shot = cli.VM.screenshot(vmID=vm_id)
        data = base64.b64decode(shot["data"])
        magic = {"image/png": b"\x89PNG", "image/x-portable-pixmap": b"P6"}
        assert data.startswith(magic[shot["mimeType"]])
        assert cli.VM.getInfo(vmID=vm_id)["display"] == "vnc"
    finally:
        h.remove_vm(cli, vm_id)
