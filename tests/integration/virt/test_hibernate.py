"""VM.hibernate to a file and restore through VM.create: the guest carries on (uptime grows)."""

from __future__ import annotations

import base64
import json
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import libvirt
import libvirt_qemu  # type: ignore[import-untyped]
import pytest

from fixtures import daemon as daemon_fixtures
from guest import image
from virthost.client import errors as client_errors
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


def guest_uptime(conn: Any, vm_id: str) -> float:
    dom = conn.lookupByUUIDString(vm_id)
    command = {
        "execute": "guest-exec",
        "arguments": {"path": "/bin/cat", "arg": ["/proc/uptime"], "capture-output": True},
    }
    for _ in range(50):
        try:
            pid = json.loads(libvirt_qemu.qemuAgentCommand(dom, json.dumps(command), 10, 0))
            break
        except libvirt.libvirtError:
            time.sleep(0.2)
    status_cmd = {"execute": "guest-exec-status", "arguments": {"pid": pid["return"]["pid"]}}
    for _ in range(50):
        result = json.loads(libvirt_qemu.qemuAgentCommand(dom, json.dumps(status_cmd), 10, 0))
        if result["return"]["exited"]:
            text = base64.b64decode(result["return"]["out-data"]).decode()
            return float(text.split()[0])
        time.sleep(0.1)
    raise AssertionError("guest-exec did not finish")


def test_hibernate_and_restore(services: daemon_fixtures.Services) -> None:
    guest = image.ensure_guest()
    work = Path(tempfile.mkdtemp(prefix="virthost-hib-", dir="/tmp"))
    work.chmod(0o777)
    libvirt.registerErrorHandler(lambda *_: None, None)
    conn = libvirt.open("qemu:///system")
    vm_id = str(uuid.uuid4())
    memory = work / "memory.img"
    params = simple_params(vm_id, guest, work)
    try:
        with services.client() as cli:
            cli.VM.create(vmID=vm_id, vmParams=params)
            wait_for(lambda: cli.VM.getStats(vmID=vm_id)[0]["status"] == "Up")
            wait_for(lambda: cli.VM.getStats(vmID=vm_id)[0].get("guestAgentConnected"))
            before = guest_uptime(conn, vm_id)
            cli.VM.hibernate(vmID=vm_id, hibernationVolHandle=str(memory))
            down = wait_for(lambda: (s := cli.VM.getStats(vmID=vm_id)[0])["status"] == "Down" and s)
            assert (down["exitCode"], down["exitReason"]) == (0, 5)
            assert memory.stat().st_size > 0
            cli.VM.destroy(vmID=vm_id)
            cli.VM.create(vmID=vm_id, vmParams={**params, "restoreState": str(memory)})
            wait_for(lambda: cli.VM.getStats(vmID=vm_id)[0]["status"] == "Up")
            after = guest_uptime(conn, vm_id)
            assert after > before  # the same boot went on: no reboot happened
            assert after < before + 60
            with pytest.raises(client_errors.ServerError) as volumes:
                cli.VM.hibernate(vmID=vm_id, hibernationVolHandle="sd,sp,img,vol,img,vol")
            assert volumes.value.code == 75
            cli.VM.destroy(vmID=vm_id)
    finally:
        try:
            dom = conn.lookupByUUIDString(vm_id)
            if dom.isActive():
                dom.destroy()
            dom.undefine()
        except libvirt.libvirtError:
            pass
        conn.close()
