"""The VM status machine and the translation of libvirt events into VDSM statuses."""

from __future__ import annotations

import libvirt
import pytest

from virthost.common import errors
from virthost.virt import lifecycle, vmstatus
from virthost.virt.container import VmContainer
from virthost.virt.vm import Vm
from virthost.virt.vmstatus import ExitReason

L = libvirt


def make_vm() -> tuple[Vm, list[dict[str, object]]]:
    published: list[dict[str, object]] = []
    vm = Vm(
        "8b3c8a7e-2a3c-4b49-9d55-0f2f0c1c9d01",
        "v1",
        on_status=lambda v: published.append(v.status_report()),
    )
    return vm, published


def test_status_changes_are_published_with_increasing_times() -> None:
    vm, published = make_vm()
    vm.set_status(vmstatus.POWERING_UP)
    vm.set_status(vmstatus.UP)
    vm.set_status(vmstatus.UP)  # no change, no event
    assert [p["status"] for p in published] == ["Powering up", "Up"]
    assert int(str(published[1]["statusTime"])) > int(str(published[0]["statusTime"]))


def test_down_is_final_and_carries_exit_info() -> None:
    vm, published = make_vm()
    vm.set_status(vmstatus.UP)
    vm.go_down(ExitReason.USER_SHUTDOWN)
    assert not vm.set_status(vmstatus.UP)
    report = published[-1]
    assert (report["status"], report["exitCode"], report["exitReason"]) == ("Down", 0, 7)
    assert report["exitMessage"] == "User shut down from within the guest"
    assert "elapsedTime" not in report


def test_unknown_status_is_refused() -> None:
    vm, _ = make_vm()
    with pytest.raises(ValueError):
        vm.set_status("Sleeping")


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        ([(L.VIR_DOMAIN_EVENT_STARTED, L.VIR_DOMAIN_EVENT_STARTED_BOOTED)], "Powering up"),
        ([(L.VIR_DOMAIN_EVENT_STARTED, L.VIR_DOMAIN_EVENT_STARTED_RESTORED)], "Up"),
        ([(L.VIR_DOMAIN_EVENT_STARTED, 0), (L.VIR_DOMAIN_EVENT_SUSPENDED, 0)], "Paused"),
        ([(L.VIR_DOMAIN_EVENT_SUSPENDED, 0), (L.VIR_DOMAIN_EVENT_RESUMED, 0)], "Up"),
        ([(L.VIR_DOMAIN_EVENT_STARTED, 0), (L.VIR_DOMAIN_EVENT_SHUTDOWN, 0)], "Powering down"),
    ],
)
def test_lifecycle_events(events: list[tuple[int, int]], expected: str) -> None:
    vm, _ = make_vm()
    if events[0][0] == L.VIR_DOMAIN_EVENT_SUSPENDED:
        vm.set_status(vmstatus.UP)
    for event, detail in events:
        lifecycle.on_lifecycle(vm, event, detail)
    assert vm.status == expected


@pytest.mark.parametrize(
    ("detail", "stop_reason", "reason", "code"),
    [
        (L.VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN, None, ExitReason.USER_SHUTDOWN, 0),
        (
            L.VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN,
            ExitReason.ADMIN_SHUTDOWN,
            ExitReason.ADMIN_SHUTDOWN,
            0,
        ),
        (L.VIR_DOMAIN_EVENT_STOPPED_FAILED, None, ExitReason.LOST_QEMU_CONNECTION, 1),
        (L.VIR_DOMAIN_EVENT_STOPPED_CRASHED, None, ExitReason.LOST_QEMU_CONNECTION, 1),
        (L.VIR_DOMAIN_EVENT_STOPPED_SAVED, None, ExitReason.SAVE_STATE_SUCCEEDED, 0),
        (L.VIR_DOMAIN_EVENT_STOPPED_MIGRATED, None, ExitReason.MIGRATION_SUCCEEDED, 0),
    ],
)
def test_stopped_reasons(
    detail: int, stop_reason: ExitReason | None, reason: ExitReason, code: int
) -> None:
    vm, _ = make_vm()
    vm.set_status(vmstatus.UP)
    vm.stop_reason = stop_reason
    lifecycle.on_lifecycle(vm, L.VIR_DOMAIN_EVENT_STOPPED, detail)
    assert vm.is_down
    assert vm.exit_info is not None
    assert (vm.exit_info.reason, int(vm.exit_info.code)) == (reason, code)


def test_io_error_pause_code() -> None:
    vm, published = make_vm()
    vm.set_status(vmstatus.UP)
    lifecycle.on_lifecycle(vm, L.VIR_DOMAIN_EVENT_SUSPENDED, L.VIR_DOMAIN_EVENT_SUSPENDED_IOERROR)
    assert published[-1]["pauseCode"] == "EIO"


def test_agent_connection_brings_a_booting_vm_up() -> None:
    vm, _ = make_vm()
    vm.set_status(vmstatus.POWERING_UP)
    lifecycle.on_agent(vm, L.VIR_CONNECT_DOMAIN_EVENT_AGENT_LIFECYCLE_STATE_CONNECTED)
    assert vm.status == "Up" and vm.guest_agent_connected
    lifecycle.on_agent(vm, L.VIR_CONNECT_DOMAIN_EVENT_AGENT_LIFECYCLE_STATE_DISCONNECTED)
    assert vm.status == "Up" and not vm.guest_agent_connected


def test_domain_state_for_recovery() -> None:
    assert lifecycle.status_of_domain_state(L.VIR_DOMAIN_RUNNING, 0, True) == "Up"
    assert lifecycle.status_of_domain_state(L.VIR_DOMAIN_RUNNING, 0, False) == "Powering up"
    assert lifecycle.status_of_domain_state(L.VIR_DOMAIN_PAUSED, 0, True) == "Paused"
    assert lifecycle.status_of_domain_state(L.VIR_DOMAIN_SHUTOFF, 0, True) == "Down"


def test_container() -> None:
    vms = VmContainer()
    vm, _ = make_vm()
    vms.add(vm)
    with pytest.raises(errors.VMExists):
        vms.add(vm)
    assert vms.get(vm.id) is vm
    with pytest.raises(errors.NoSuchVM):
        vms.get("00000000-0000-0000-0000-000000000000")
    assert vms.remove(vm.id) is vm and len(vms) == 0


def test_first_exit_reason_is_kept() -> None:
    vm, published = make_vm()
    vm.set_status(vmstatus.UP)
    vm.go_down(ExitReason.USER_SHUTDOWN)
    assert not vm.go_down(ExitReason.ADMIN_SHUTDOWN)
    assert vm.exit_info is not None and vm.exit_info.reason == ExitReason.USER_SHUTDOWN
    assert len([p for p in published if p["status"] == "Down"]) == 1
