"""Recovery: kill -9 of virthostd with VMs running, and VMs that died while it was down."""

from __future__ import annotations

import os
import signal
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest

from fixtures import daemon as daemon_fixtures
from guest import image
from virthost.common.pki import PkiPaths

from .vmhelpers import simple_params, wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for qemu:///system"),
]


@pytest.fixture(scope="module")
def services(pki: PkiPaths) -> Iterator[daemon_fixtures.Services]:
    running = daemon_fixtures.start_services(
        pki, overrides={"virt": {"domain_type": "qemu", "vm_sample_interval": 1.0}}
    )
    yield running
    daemon_fixtures.cleanup(running)


def test_kill_9_then_restart_recovers_every_vm(
    services: daemon_fixtures.Services, pki: PkiPaths
) -> None:
    guest = image.ensure_guest()
    logs = Path(tempfile.mkdtemp(prefix="virthost-rec-", dir="/tmp"))
    logs.chmod(0o777)
    libvirt.registerErrorHandler(lambda *_: None, None)
    conn = libvirt.open("qemu:///system")
    ids = [str(uuid.uuid4()) for _ in range(3)]
    try:
        with services.client() as cli:
            for vm_id in ids:
                cli.VM.create(vmID=vm_id, vmParams=simple_params(vm_id, guest, logs))
            for vm_id in ids:
                wait_for(lambda v=vm_id: cli.VM.getStats(vmID=v)[0]["status"] == "Up")
            before = {v: cli.VM.getStats(vmID=v)[0] for v in ids}
        pids = {v: conn.lookupByUUIDString(v).ID() for v in ids}
        # one VM dies while the daemon is away
        victim = ids[2]
        services.stop_daemon(signal.SIGKILL)
        conn.lookupByUUIDString(victim).destroy()
        services.start_daemon()
        with services.client() as cli:
            for vm_id in ids[:2]:
                after = cli.VM.getStats(vmID=vm_id)[0]
                assert after["status"] == "Up"
                assert int(after["elapsedTime"]) >= int(before[vm_id]["elapsedTime"])
                assert conn.lookupByUUIDString(vm_id).ID() == pids[vm_id]  # not restarted
            dead = cli.VM.getStats(vmID=victim)[0]
            assert dead["status"] == "Down"
            assert dead["exitCode"] == 1
            for vm_id in ids:
                cli.VM.destroy(vmID=vm_id)
        assert "recovered vm" in services.log_text()
    finally:
        for vm_id in ids:
            try:
                dom = conn.lookupByUUIDString(vm_id)
                if dom.isActive():
                    dom.destroy()
                dom.undefine()
            except libvirt.libvirtError:
                pass
        conn.close()


def test_external_domains_are_left_alone(services: daemon_fixtures.Services) -> None:
    conn = libvirt.open("qemu:///system")
    name = f"external-{uuid.uuid4().hex[:8]}"
    xml = (
        f"<domain type='qemu'><name>{name}</name><memory unit='MiB'>32</memory>"
        "<os><type arch='x86_64' machine='pc'>hvm</type></os></domain>"
    )
    dom = conn.defineXML(xml)
    try:
        services.stop_daemon(signal.SIGKILL)
        services.start_daemon()
        with services.client() as cli:
            assert dom.UUIDString() not in [v["vmId"] for v in cli.Host.getVMList()]
        assert conn.lookupByName(name)  # untouched
        assert "is external; left alone" in services.log_text()
    finally:
        dom.undefine()
        conn.close()
