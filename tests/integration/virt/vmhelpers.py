"""Helpers for VM integration tests: boot the tiny guest through the daemon and look inside it.

Booting goes through VM.create with simple VDSM-style parameters (or a domain XML), like the
engine would; looking inside the guest goes through qemu-guest-agent with libvirt's
``qemuAgentCommand`` (``guest-exec`` runs a busybox command and returns its output), so a test
can check what the guest itself sees rather than what libvirt claims.
"""

from __future__ import annotations

import base64
import contextlib
import json
from pathlib import Path
from typing import Any

import libvirt
import libvirt_qemu

from fixtures.polling import wait_for as wait_for
from guest import image
from virthost.client import Client
from virthost.client import errors as client_errors


def simple_params(vm_id: str, guest: image.GuestImage, logs: Path, **extra: Any) -> dict[str, Any]:
    """VM.create parameters booting the tiny guest (128 MiB, 1 vCPU, a user-mode NIC)."""
    params: dict[str, Any] = {
        "vmId": vm_id,
        "vmName": f"tiny-{vm_id[:8]}",
        "memSize": 128,
        "smp": 1,
        "kernel": str(guest.vmlinux),
        "initrd": str(guest.initrd),
        "kernelArgs": "console=ttyS0 quiet tinyvm.ip=10.0.2.15/24",
        "nics": [{"type": "user"}],
        "consoleLog": str(logs / f"{vm_id}.log"),
    }
    params.update(extra)
    return params


def stats(cli: Client, vm_id: str) -> dict[str, Any]:
    return dict(cli.VM.getStats(vmID=vm_id)[0])


def status(cli: Client, vm_id: str) -> str:
    return str(stats(cli, vm_id)["status"])


def boot(cli: Client, vm_id: str, params: dict[str, Any], *, agent: bool = True) -> None:
    """VM.create, then wait until the VM is Up (and its guest agent connected)."""
    answer = cli.VM.create(vmID=vm_id, vmParams=params)
    assert answer["vmId"] == vm_id
    wait_for(lambda: status(cli, vm_id) == "Up", what=f"{vm_id} Up")
    if agent:
        wait_for(lambda: stats(cli, vm_id).get("guestAgentConnected"), what="guest agent")


def domain_exists(conn: Any, vm_id: str) -> bool:
    try:
        conn.lookupByUUIDString(vm_id)
    except libvirt.libvirtError:
        return False
    return True


def remove_vm(cli: Client, vm_id: str) -> None:
    """VM.destroy, and never leave a libvirt domain behind whatever failed before.

    The daemon may not answer (a timeout) and the test's own libvirt connection may be broken
    (libvirtd restarted), so the clean-up opens its own connection.
    """
    try:
        cli.VM.destroy(vmID=vm_id)
    except client_errors.Error as e:
        print(f"VM.destroy {vm_id}: {e}")  # shown with the test's output
    conn = libvirt.open("qemu:///system")
    try:
        if domain_exists(conn, vm_id):
            dom = conn.lookupByUUIDString(vm_id)
            with contextlib.suppress(libvirt.libvirtError):
                dom.destroy()
            with contextlib.suppress(libvirt.libvirtError):
                dom.undefine()
    finally:
        conn.close()


def live_xml(conn: Any, vm_id: str, flags: int = 0) -> str:
    return str(conn.lookupByUUIDString(vm_id).XMLDesc(flags))


def agent_command(dom: Any, command: str, arguments: dict[str, Any] | None = None) -> Any:
    """Run a qemu-guest-agent command; its ``return`` value."""
    request: dict[str, Any] = {"execute": command}
    if arguments is not None:
        request["arguments"] = arguments
    answer = libvirt_qemu.qemuAgentCommand(dom, json.dumps(request), 10, 0)
    return json.loads(answer)["return"]


def guest_exec(dom: Any, path: str, *args: str, timeout: float = 20.0) -> tuple[int, str]:
    """Run ``path args`` in the guest: (exit code, standard output)."""
    started = agent_command(
        dom, "guest-exec", {"path": path, "arg": list(args), "capture-output": True}
    )
    result = wait_for(
        lambda: (
            (s := agent_command(dom, "guest-exec-status", {"pid": started["pid"]}))["exited"] and s
        ),
        timeout,
        f"guest command {path}",
    )
    output = base64.b64decode(result.get("out-data", "")).decode(errors="replace")
    return int(result.get("exitcode", -1)), output


def guest_block_devices(dom: Any) -> set[str]:
    """The block devices the guest kernel knows (``/sys/block``)."""
    code, output = guest_exec(dom, "/bin/ls", "/sys/block")
    assert code == 0, output
    return set(output.split())
