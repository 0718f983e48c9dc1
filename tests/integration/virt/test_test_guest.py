"""The tiny test guest: its domain XML, and a real boot under libvirt (TCG) on qemu:///system.

The integration tests build the guest (cached in /var/cache/virthost-test-guest), boot transient
domains, talk to qemu-guest-agent inside and power them off through the agent and through the
ACPI power button.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import libvirt
import libvirt_qemu  # type: ignore[import-untyped]
import pytest

from guest import image
from guest.image import Disk, GuestImage

needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="needs root: builds into /var/cache and uses qemu:///system"
)

FAKE_GUEST = GuestImage(
    outdir=Path("/g"),
    vmlinux=Path("/g/vmlinux"),
    vmlinuz=Path("/g/vmlinuz"),
    initrd=Path("/g/initrd.img"),
    kernel_release="6.1.0-0-amd64",
)
SOME_UUID = "0f4e6d43-3b5c-4c0d-9a55-4a4f3b1d1e01"


def _parse(xml: str) -> ET.Element:
    return ET.fromstring(xml)


def _find(root: ET.Element, path: str) -> ET.Element:
    element = root.find(path)
    assert element is not None, path
    return element


def _text(root: ET.Element, path: str) -> str:
    return _find(root, path).text or ""


# --- domain XML (no libvirt needed) ------------------------------------------------------------


def test_domain_xml_describes_a_tcg_direct_kernel_boot() -> None:
    root = _parse(
        image.domain_xml(
            "tiny1",
            SOME_UUID,
            FAKE_GUEST,
            console_log=Path("/logs/tiny1.log"),
            ip="10.0.2.15/24",
            nics=["user", "br0"],
            disks=[Path("/img/a.qcow2"), Path("/img/b.raw"), Disk(Path("/img/c"), "raw", "vdz")],
        )
    )
    assert root.get("type") == "qemu"
    assert _text(root, "name") == "tiny1"
    assert _text(root, "uuid") == SOME_UUID
    assert _text(root, "memory") == "128" and _find(root, "memory").get("unit") == "MiB"
    assert _text(root, "currentMemory") == "128"
    ostype = root.find("os/type")
    assert ostype is not None and ostype.get("machine") == "pc" and ostype.text == "hvm"
    assert _text(root, "os/kernel") == "/g/vmlinux"
    assert _text(root, "os/initrd") == "/g/initrd.img"
    cmdline = _text(root, "os/cmdline").split()
    assert "console=ttyS0" in cmdline and "tinyvm.ip=10.0.2.15/24" in cmdline
    tb_cache = root.find("features/tcg/tb-cache")
    assert tb_cache is not None and tb_cache.text == "16" and tb_cache.get("unit") == "MiB"
    assert root.find("features/acpi") is not None
    assert _text(root, "on_poweroff") == "destroy"

    for tag in ("serial", "console"):
        source = root.find(f"devices/{tag}/source")
        assert source is not None
        assert source.get("path") == "/logs/tiny1.log" and source.get("append") == "on"
    channel = root.find("devices/channel/target")
    assert channel is not None and channel.get("name") == "org.qemu.guest_agent.0"
    stats = root.find("devices/memballoon[@model='virtio']/stats")
    assert stats is not None and stats.get("period") == "5"

    nics = root.findall("devices/interface")
    assert [nic.get("type") for nic in nics] == ["user", "bridge"]
    bridge = nics[1].find("source")
    assert bridge is not None and bridge.get("bridge") == "br0"
    assert all(nic.find("model[@type='virtio']") is not None for nic in nics)

    disks = root.findall("devices/disk")
    summary = [
        (
            _find(d, "source").get("file"),
            _find(d, "driver").get("type"),
            _find(d, "target").get("dev"),
        )
        for d in disks
    ]
    assert summary == [
        ("/img/a.qcow2", "qcow2", "vda"),
        ("/img/b.raw", "raw", "vdb"),
        ("/img/c", "raw", "vdz"),
    ]


def test_domain_xml_without_agent_ip_or_devices() -> None:
    root = _parse(
        image.domain_xml("t", SOME_UUID, FAKE_GUEST, console_log=Path("/l"), with_agent=False)
    )
    assert root.find("devices/channel") is None
    assert root.find("devices/interface") is None
    assert root.find("devices/disk") is None
    assert not any(w.startswith("tinyvm.ip=") for w in _text(root, "os/cmdline").split())


def test_domain_xml_for_kvm_has_no_tcg_tuning() -> None:
    root = _parse(
        image.domain_xml("t", SOME_UUID, FAKE_GUEST, console_log=Path("/l"), domain_type="kvm")
    )
    assert root.get("type") == "kvm"
    assert root.find("features/tcg") is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"memory_mib": 80},
        {"ip": "10.0.2.15"},
        {"ip": "not-an-address/24"},
        {"domain_type": "xen"},
    ],
)
def test_domain_xml_rejects_what_cannot_boot(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        image.domain_xml("t", SOME_UUID, FAKE_GUEST, console_log=Path("/l"), **kwargs)


def test_domain_xml_rejects_a_bad_uuid() -> None:
    with pytest.raises(ValueError):
        image.domain_xml("t", "nope", FAKE_GUEST, console_log=Path("/l"))


def test_wait_for_console_finds_markers_after_the_offset(tmp_path: Path) -> None:
    log = tmp_path / "console.log"
    log.write_text("TINYVM: init started\nTINYVM: ready\n")
    image.wait_for_console(log, "TINYVM: ready", timeout=5)
    with pytest.raises(TimeoutError, match="TINYVM: ready"):
        image.wait_for_console(log, "TINYVM: ready", timeout=0.3, offset=log.stat().st_size)
    with pytest.raises(TimeoutError):
        image.wait_for_console(tmp_path / "missing.log", "x", timeout=0.3)


# --- real boots ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def conn() -> Iterator[Any]:
    # Expected failures (agent not connected yet, domain gone) would be printed to stderr.
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    connection = libvirt.open("qemu:///system")
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def guest() -> GuestImage:
    return image.ensure_guest()


@pytest.fixture(scope="module")
def log_dir() -> Iterator[Path]:
    # The serial console file is opened for QEMU, which runs as libvirt-qemu.
    path = Path(tempfile.mkdtemp(prefix="virthost-tinyvm-", dir="/tmp"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@contextmanager
def transient_domain(connection: Any, xml: str) -> Iterator[Any]:
    dom = connection.createXML(xml, 0)
    try:
        yield dom
    finally:
        try:
            dom.destroy()
        except libvirt.libvirtError as err:
            if err.get_error_code() not in (
                libvirt.VIR_ERR_NO_DOMAIN,
                libvirt.VIR_ERR_OPERATION_INVALID,
            ):
                raise


def agent_command(dom: Any, command: str, timeout: float = 30.0) -> Any:
    """The agent's "return" value, retrying while qemu-ga has not connected yet."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            reply = libvirt_qemu.qemuAgentCommand(dom, json.dumps({"execute": command}), 10, 0)
            return json.loads(reply)["return"]
        except libvirt.libvirtError as err:
            if (
                err.get_error_code() != libvirt.VIR_ERR_AGENT_UNRESPONSIVE
                or time.monotonic() >= deadline
            ):
                raise
            time.sleep(0.2)


def wait_until_gone(connection: Any, dom_uuid: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            dom = connection.lookupByUUIDString(dom_uuid)
        except libvirt.libvirtError as err:
            if err.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return
            raise
        if time.monotonic() >= deadline:
            pytest.fail(f"domain {dom_uuid} still exists, state {dom.state()}")
        time.sleep(0.1)


def _new_domain(guest: GuestImage, log_dir: Path, **kwargs: Any) -> tuple[str, Path, str]:
    dom_uuid = str(uuid.uuid4())
    name = f"virthost-tinyvm-{dom_uuid[:8]}"
    console = log_dir / f"{name}.log"
    return dom_uuid, console, image.domain_xml(name, dom_uuid, guest, console_log=console, **kwargs)


@pytest.mark.integration
@needs_root
def test_guest_boots_answers_the_agent_and_powers_off_through_it(
    conn: Any, guest: GuestImage, log_dir: Path
) -> None:
    dom_uuid, console, xml = _new_domain(guest, log_dir, ip="10.0.2.15/24", nics=["user"])
    with transient_domain(conn, xml) as dom:
        image.wait_for_console(console, image.READY_MARKER, timeout=60)
        log = console.read_text(errors="replace")
        assert image.INIT_MARKER in log
        assert "qemu-ga started" in log

        assert agent_command(dom, "guest-ping") == {}
        osinfo = agent_command(dom, "guest-get-osinfo")
        assert osinfo["id"] == image.OS_ID
        assert osinfo["kernel-release"] == guest.kernel_release
        assert agent_command(dom, "guest-get-host-name")["host-name"] == image.HOSTNAME

        interfaces = {i["name"]: i for i in agent_command(dom, "guest-network-get-interfaces")}
        assert {"lo", "eth0"} <= interfaces.keys()
        addresses = {
            (a["ip-address"], a["prefix"]) for a in interfaces["eth0"].get("ip-addresses", [])
        }
        assert ("10.0.2.15", 24) in addresses

        dom.shutdownFlags(libvirt.VIR_DOMAIN_SHUTDOWN_GUEST_AGENT)
        wait_until_gone(conn, dom_uuid, timeout=30)
    image.wait_for_console(console, "(via guest agent)", timeout=5)


@pytest.mark.integration
@needs_root
def test_acpi_power_button_powers_the_guest_off(
    conn: Any, guest: GuestImage, log_dir: Path
) -> None:
    dom_uuid, console, xml = _new_domain(guest, log_dir, with_agent=False)
    with transient_domain(conn, xml) as dom:
        image.wait_for_console(console, image.READY_MARKER, timeout=60)
        assert "qemu-ga started" not in console.read_text(errors="replace")
        dom.shutdownFlags(libvirt.VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN)
        wait_until_gone(conn, dom_uuid, timeout=30)
    image.wait_for_console(console, "TINYVM: ACPI power button", timeout=5)
