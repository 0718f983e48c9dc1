"""The VM service on libvirt's test:///default driver: the flows without QEMU, in seconds."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import libvirt
import pytest

from virthost.common import errors
from virthost.common.executor import Executor
from virthost.common.scheduler import Scheduler
from virthost.rpc.events import Event, EventBus
from virthost.virt import eventloop
from virthost.virt.connection import LibvirtConnection
from virthost.virt.recovery import recover
from virthost.virt.service import VirtService, VirtSettings


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)
    return value


@pytest.fixture
def service() -> Iterator[tuple[VirtService, list[Event], LibvirtConnection]]:
    libvirt.registerErrorHandler(lambda *_: None, None)
    eventloop.start()
    scheduler = Scheduler("test-scheduler")
    scheduler.start()
    executors = [Executor(n, 2, 50, scheduler, 8) for n in ("create", "work", "blocking")]
    for e in executors:
        e.start()
    conn = LibvirtConnection("test:///default", executors[2], timeout=10)
    bus = EventBus()
    seen: list[Event] = []
    bus.add_listener(seen.append)
    svc = VirtService(
        conn,
        bus,
        scheduler,
        executors[0],
        executors[1],
        VirtSettings(domain_type="qemu", guest_wait_timeout=0.2),
    )
    assert conn.ensure_connected()
    yield svc, seen, conn
    conn.close()
    for e in executors:
        e.stop()
    scheduler.stop()


def params(vm_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "vmId": vm_id,
        "vmName": f"t-{vm_id[:8]}",
        "memSize": 128,
        "kernel": "/boot/vmlinuz",
        "custom": {"colour": "blue"},
        **extra,
    }


def test_create_runs_and_destroy_removes(
    service: tuple[VirtService, list[Event], LibvirtConnection],
) -> None:
    svc, seen, conn = service
    vm_id = str(uuid.uuid4())
    answer = svc.create(vm_id, params(vm_id))
    assert answer["status"] == "WaitForLaunch"
    wait_for(lambda: svc.get_stats(vm_id)[0]["status"] == "Up")  # after guest_wait_timeout
    statuses = [e.params[vm_id]["status"] for e in seen if e.name.endswith(vm_id)]
    assert statuses[-1] == "Up" and "Powering up" in statuses
    assert conn.call(lambda c: c.lookupByUUIDString(vm_id).isActive(), "check")
    svc.destroy(vm_id)
    with pytest.raises(errors.NoSuchVM):
        svc.get_stats(vm_id)
    with pytest.raises(errors.VirtHostError):
        conn.call(lambda c: c.lookupByUUIDString(vm_id), "check")


def test_pause_cont_and_existing_vm(
    service: tuple[VirtService, list[Event], LibvirtConnection],
) -> None:
    svc, _, _ = service
    vm_id = str(uuid.uuid4())
    svc.create(vm_id, params(vm_id))
    wait_for(lambda: svc.get_stats(vm_id)[0]["status"] in ("Powering up", "Up"))
    with pytest.raises(errors.VMExists):
        svc.create(vm_id, params(vm_id))
    svc.pause(vm_id)
    assert svc.get_stats(vm_id)[0]["status"] == "Paused"
    svc.cont(vm_id)
    assert svc.get_stats(vm_id)[0]["status"] in ("Powering up", "Up")
    svc.destroy(vm_id)


def test_mismatched_ids_and_bad_params(
    service: tuple[VirtService, list[Event], LibvirtConnection],
) -> None:
    svc, _, _ = service
    vm_id = str(uuid.uuid4())
    with pytest.raises(errors.InvalidParameter):
        svc.create(vm_id, params(str(uuid.uuid4())))
    with pytest.raises(errors.CannotCreateVM):
        svc.create(vm_id, {"xml": "<domain"})
    with pytest.raises(errors.InvalidParameter):
        svc.create("not-a-uuid", params(vm_id))
    assert len(svc.vms) == 0


def test_recovery_rebuilds_vms_from_libvirt(
    service: tuple[VirtService, list[Event], LibvirtConnection],
) -> None:
    svc, _, conn = service
    vm_id = str(uuid.uuid4())
    svc.create(vm_id, params(vm_id))
    wait_for(lambda: svc.get_stats(vm_id)[0]["status"] == "Up")
    svc.vms.remove(vm_id)  # as if the daemon restarted
    assert recover(svc, conn) >= 1
    vm = svc.vms.get(vm_id)
    assert vm.status in ("Up", "Powering up")
    assert vm.custom == {"colour": "blue"}
    svc.destroy(vm_id)
