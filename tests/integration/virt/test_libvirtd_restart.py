"""libvirtd restarted under the daemon: VMs keep running, events and sampling resume."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
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
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to restart libvirtd"),
]

ROOT = Path(__file__).parents[3]


@pytest.fixture(scope="module")
def services(pki: PkiPaths) -> Iterator[daemon_fixtures.Services]:
    running = daemon_fixtures.start_services(
        pki, overrides={"virt": {"domain_type": "qemu", "vm_sample_interval": 1.0}}
    )
    yield running
    daemon_fixtures.cleanup(running)


def restart_libvirtd() -> None:
    pid = int(Path("/run/libvirtd.pid").read_text())
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    subprocess.run(["bash", str(ROOT / "scripts" / "start-libvirt.sh")], check=True, timeout=120)


def test_vms_survive_and_events_resume(services: daemon_fixtures.Services) -> None:
    guest = image.ensure_guest()
    logs = Path(tempfile.mkdtemp(prefix="virthost-lvr-", dir="/tmp"))
    logs.chmod(0o777)
    vm_id = str(uuid.uuid4())
    libvirt.registerErrorHandler(lambda *_: None, None)
    try:
        with services.client() as cli:
            cli.VM.create(vmID=vm_id, vmParams=simple_params(vm_id, guest, logs))
            wait_for(lambda: cli.VM.getStats(vmID=vm_id)[0]["status"] == "Up")
            restart_libvirtd()
            time.sleep(2)
            assert cli.VM.getStats(vmID=vm_id)[0]["status"] == "Up"  # no false Down
            # an event from the new libvirtd reaches us once the daemon reconnected
            conn = libvirt.open("qemu:///system")
            try:
                conn.lookupByUUIDString(vm_id).suspend()
                wait_for(
                    lambda: cli.VM.getStats(vmID=vm_id)[0]["status"] == "Paused",
                    timeout=30,
                    what="Paused from a libvirt event",
                )
                conn.lookupByUUIDString(vm_id).resume()
                wait_for(lambda: cli.VM.getStats(vmID=vm_id)[0]["status"] == "Up", timeout=30)
            finally:
                conn.close()
            wait_for(lambda: "cpuUser" in cli.VM.getStats(vmID=vm_id)[0], what="sampling")
            cli.VM.destroy(vmID=vm_id)
    finally:
        conn = libvirt.open("qemu:///system")
        try:
            dom = conn.lookupByUUIDString(vm_id)
            if dom.isActive():
                dom.destroy()
            dom.undefine()
        except libvirt.libvirtError:
            pass
        conn.close()
