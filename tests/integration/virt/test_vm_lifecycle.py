"""VM life cycle on real libvirt/QEMU (TCG) through the real daemon: create to destroy.

Each test boots the tiny test guest (tests/guest) with simple VDSM-style parameters through
VM.create, and follows it with the API, the events and libvirt itself.
"""

from __future__ import annotations

import contextlib
import os
import queue
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import libvirt
import pytest

from fixtures import daemon as daemon_fixtures
from guest import image
from virthost.client import Client
from virthost.client import errors as client_errors
from virthost.common.pki import PkiPaths

from .vmhelpers import domain_exists, simple_params, stats, status, wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for qemu:///system"),
]


@pytest.fixture(scope="module")
def guest() -> image.GuestImage:
    return image.ensure_guest()


@pytest.fixture(scope="module")
def services(pki: PkiPaths) -> Iterator[daemon_fixtures.Services]:
    running = daemon_fixtures.start_services(
        pki,
        overrides={
            "virt": {
                "domain_type": "qemu",
                "vm_sample_interval": 1.0,
                "qga_polling_period": 1.0,
            }
        },
    )
    yield running
    daemon_fixtures.cleanup(running)


@pytest.fixture(scope="module")
def logs() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="virthost-vm-logs-", dir="/tmp"))
    path.chmod(0o777)
    yield path


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


@pytest.fixture
def vm_id(cli: Client, conn: Any) -> Iterator[str]:
    ident = str(uuid.uuid4())
    yield ident
    with contextlib.suppress(client_errors.ServerError):
        cli.VM.destroy(vmID=ident)
    if domain_exists(conn, ident):  # never leave a domain behind, whatever failed
        dom = conn.lookupByUUIDString(ident)
        if dom.isActive():
            dom.destroy()
        dom.undefine()


def boot(cli: Client, vm_id: str, guest: image.GuestImage, logs: Path, **extra: Any) -> None:
    answer = cli.VM.create(vmID=vm_id, vmParams=simple_params(vm_id, guest, logs, **extra))
    assert answer["vmId"] == vm_id
    assert answer["status"] == "WaitForLaunch"
    wait_for(lambda: status(cli, vm_id) == "Up", what=f"{vm_id} Up")


def test_create_to_up_with_events_and_agent_data(
    cli: Client, vm_id: str, guest: image.GuestImage, logs: Path, conn: Any
) -> None:
    events: queue.Queue[Any] = queue.Queue()
    cli.subscribe(event_queue=events)
    boot(cli, vm_id, guest, logs)
    seen = []
    while not events.empty():
        event = events.get()
        if event.method == f"|virt|VM_status|{vm_id}":
            seen.append(event.params[vm_id]["status"])
            assert "notify_time" in event.params
    assert seen[-1] == "Up"
    assert "Powering up" in seen or seen == ["Up"]
    assert conn.lookupByUUIDString(vm_id).isActive()

    def agent_ips() -> Any:
        entry = next(s for s in cli.Host.getAllVmStats() if s["vmId"] == vm_id)
        return "10.0.2.15" in entry.get("guestIPs", "") and entry

    entry = wait_for(agent_ips, what="guest IPs from the agent")
    assert entry["status"] == "Up"
    assert entry["guestFQDN"] == image.HOSTNAME
    assert entry["monitorResponse"] == "0"
    wait_for(lambda: "cpuUser" in stats(cli, vm_id), what="bulk stats")
    assert {"vmId": vm_id, "status": "Up"} in cli.Host.getVMList()
    assert vm_id in cli.Host.dumpxmls(vmList=[vm_id])["domxmls"]


def test_pause_and_continue(
    cli: Client, vm_id: str, guest: image.GuestImage, logs: Path, conn: Any
) -> None:
    boot(cli, vm_id, guest, logs)
    cli.VM.pause(vmID=vm_id)
    assert status(cli, vm_id) == "Paused"
    assert conn.lookupByUUIDString(vm_id).state()[0] == libvirt.VIR_DOMAIN_PAUSED
    cli.VM.cont(vmID=vm_id)
    wait_for(lambda: status(cli, vm_id) == "Up", what="Up again")
    assert conn.lookupByUUIDString(vm_id).state()[0] == libvirt.VIR_DOMAIN_RUNNING


def test_shutdown_through_the_agent_then_destroy(
    cli: Client, vm_id: str, guest: image.GuestImage, logs: Path, conn: Any
) -> None:
    boot(cli, vm_id, guest, logs)
    wait_for(lambda: stats(cli, vm_id).get("guestAgentConnected"), what="agent")
    cli.VM.shutdown(vmID=vm_id, message="bye")
    down = wait_for(lambda: (s := stats(cli, vm_id))["status"] == "Down" and s, what="Down")
    assert (down["exitCode"], down["exitReason"]) == (0, 6)
    assert "via guest agent" in (logs / f"{vm_id}.log").read_text(errors="replace")
    cli.VM.destroy(vmID=vm_id)
    assert not domain_exists(conn, vm_id)
    with pytest.raises(client_errors.ServerError) as gone:
        cli.VM.getStats(vmID=vm_id)
    assert gone.value.code == 1


def test_destroy_running_vm_leaves_nothing(
    cli: Client, vm_id: str, guest: image.GuestImage, logs: Path, conn: Any
) -> None:
    boot(cli, vm_id, guest, logs)
    cli.VM.destroy(vmID=vm_id)
    assert not domain_exists(conn, vm_id)
    assert vm_id not in [v["vmId"] for v in cli.Host.getVMList()]


def test_guest_initiated_poweroff_is_a_user_shutdown(
    cli: Client, vm_id: str, guest: image.GuestImage, logs: Path
) -> None:
    params = simple_params(vm_id, guest, logs)
    params["kernelArgs"] += " tinyvm.poweroff=1"
    cli.VM.create(vmID=vm_id, vmParams=params)
    down = wait_for(lambda: (s := stats(cli, vm_id))["status"] == "Down" and s, what="Down")
    assert (down["exitCode"], down["exitReason"]) == (0, 7)


def test_qemu_killed_from_outside(
    cli: Client, vm_id: str, guest: image.GuestImage, logs: Path
) -> None:
    boot(cli, vm_id, guest, logs)
    pid_file = Path(f"/run/libvirt/qemu/tiny-{vm_id[:8]}.pid")
    os.kill(int(pid_file.read_text()), 9)
    down = wait_for(lambda: (s := stats(cli, vm_id))["status"] == "Down" and s, what="Down")
    assert (down["exitCode"], down["exitReason"]) == (1, 2)


def test_bad_input(cli: Client, vm_id: str, guest: image.GuestImage, logs: Path) -> None:
    with pytest.raises(client_errors.ServerError) as malformed:
        cli.VM.create(vmID=vm_id, vmParams={"xml": "<domain><name>x</name"})
    assert malformed.value.code == 9
    with pytest.raises(client_errors.ServerError) as unknown:
        cli.VM.pause(vmID=str(uuid.uuid4()))
    assert unknown.value.code == 1
    boot(cli, vm_id, guest, logs)
    with pytest.raises(client_errors.ServerError) as exists:
        cli.VM.create(vmID=vm_id, vmParams=simple_params(vm_id, guest, logs))
    assert exists.value.code == 4


def test_missing_kernel_goes_down_and_leaves_nothing(
    cli: Client, vm_id: str, guest: image.GuestImage, logs: Path, conn: Any
) -> None:
    params = simple_params(vm_id, guest, logs, kernel="/nonexistent/vmlinux")
    cli.VM.create(vmID=vm_id, vmParams=params)
    down = wait_for(lambda: (s := stats(cli, vm_id))["status"] == "Down" and s, what="Down")
    assert (down["exitCode"], down["exitReason"]) == (1, 3)
    assert "vmlinux" in down["exitMessage"]
    assert not domain_exists(conn, vm_id)


def test_launch_paused(
    cli: Client, vm_id: str, guest: image.GuestImage, logs: Path, conn: Any
) -> None:
    cli.VM.create(vmID=vm_id, vmParams=simple_params(vm_id, guest, logs, launchPaused=True))
    wait_for(lambda: status(cli, vm_id) == "Paused", what="Paused")
    assert conn.lookupByUUIDString(vm_id).state()[0] == libvirt.VIR_DOMAIN_PAUSED
    cli.VM.cont(vmID=vm_id)
    wait_for(lambda: status(cli, vm_id) == "Up", what="Up")


def test_hung_qemu_monitor_shows_unresponsive_and_others_go_on(
    cli: Client, vm_id: str, guest: image.GuestImage, logs: Path, conn: Any
) -> None:
    other = str(uuid.uuid4())
    try:
        boot(cli, vm_id, guest, logs)
        boot(cli, other, guest, logs)
        wait_for(lambda: "cpuUser" in stats(cli, other), what="stats of the other VM")
        pid = int(Path(f"/run/libvirt/qemu/tiny-{vm_id[:8]}.pid").read_text())
        os.kill(pid, 19)  # SIGSTOP: its QEMU monitor stops answering
        try:

            def hung_and_other_fine() -> bool:
                entries = {s["vmId"]: s for s in cli.Host.getAllVmStats()}
                return (
                    entries[vm_id]["monitorResponse"] == "-1"
                    and entries[other]["monitorResponse"] == "0"
                )

            wait_for(hung_and_other_fine, timeout=90, what="hung VM reported -1, other 0")
            assert stats(cli, other)["status"] == "Up"
        finally:
            os.kill(pid, 18)  # SIGCONT
        wait_for(
            lambda: stats(cli, vm_id)["monitorResponse"] == "0", timeout=90, what="responsive again"
        )
    finally:
        with contextlib.suppress(client_errors.ServerError):
            cli.VM.destroy(vmID=other)


def test_reset_reboots_the_guest(
    cli: Client, vm_id: str, guest: image.GuestImage, logs: Path
) -> None:
    boot(cli, vm_id, guest, logs)
    console = logs / f"{vm_id}.log"
    cli.VM.reset(vmID=vm_id)
    wait_for(
        lambda: console.read_text(errors="replace").count("TINYVM: ready") >= 2,
        what="a second boot on the console",
    )
    assert status(cli, vm_id) in ("Up", "Powering up")


def test_destroy_on_reboot(cli: Client, vm_id: str, guest: image.GuestImage, logs: Path) -> None:
    boot(cli, vm_id, guest, logs)
    wait_for(lambda: stats(cli, vm_id).get("guestAgentConnected"), what="agent")
    cli.VM.setDestroyOnReboot(vmID=vm_id)
    cli.VM.shutdown(vmID=vm_id, reboot=True)
    gone = wait_for(
        lambda: vm_id not in [v["vmId"] for v in cli.Host.getVMList()],
        what="VM destroyed on its reboot",
    )
    assert gone


def test_agent_reports_applications(
    cli: Client, vm_id: str, guest: image.GuestImage, logs: Path
) -> None:
    boot(cli, vm_id, guest, logs)
    apps = wait_for(lambda: stats(cli, vm_id).get("appsList"), what="appsList")
    assert any(app.startswith("qemu-guest-agent-") for app in apps)
    assert stats(cli, vm_id)["guestOsInfo"]["distribution"]
