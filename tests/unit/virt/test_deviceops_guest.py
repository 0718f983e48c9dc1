"""GuestOps: balloon target, freeze/thaw, display ticket and screenshot.

Balloon, freeze/thaw and screenshots run on libvirt's test driver (test:///default), which
implements them; the ticket needs updateDeviceFlags, which the test driver lacks, so a fake
domain records what libvirt would be given.
"""

from __future__ import annotations

import base64
import calendar
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from typing import Any

import libvirt
import pytest

from virthost.common import errors
from virthost.virt import vmstatus
from virthost.virt.connection import LibvirtError
from virthost.virt.deviceops import DomainAccess
from virthost.virt.devops_guest import GuestOps, capture_screen, hook_params
from virthost.virt.vm import Vm

NOW = 1_900_000_000.0


def domain_xml(vm_id: str, devices: str = "") -> str:
    return (
        f"<domain type='test'><name>g-{vm_id[:8]}</name><uuid>{vm_id}</uuid>"
        "<memory unit='MiB'>256</memory><currentMemory unit='MiB'>256</currentMemory>"
        "<os><type>hvm</type></os>"
        f"<devices><memballoon model='virtio'/>{devices}</devices></domain>"
    )


def libvirt_error(code: int, message: str) -> libvirt.libvirtError:
    error = libvirt.libvirtError(message)
    error.err = (code, 10, message, 2, None, None, None, 0, 0)
    return error


class Virt:
    """VirtService's accessors over one VM, whose domain ``lookup`` finds."""

    def __init__(self, vm_id: str, lookup: Callable[[], Any], hooks: Any = None) -> None:
        self.vm = Vm(vm_id, "guest", status=vmstatus.UP)
        self.lookup = lookup
        self.hooks = hooks

    def get_vm(self, vm_id: str) -> Vm:
        if vm_id != self.vm.id:
            raise errors.NoSuchVM(vm_id)
        return self.vm

    def running_vm(self, vm_id: str) -> Vm:
        vm = self.get_vm(vm_id)
        if vm.is_down:
            raise errors.VMIsDown(vm_id)
        return vm

    def domain_call(self, vm: Vm, what: str, func: Callable[[Any], Any]) -> Any:
        """As VirtService.domain_call: NoSuchVM when the lookup fails, LibvirtError else."""
        try:
            dom = self.lookup()
        except libvirt.libvirtError as e:
            if e.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                raise errors.NoSuchVM(vm.id) from None
            raise
        try:
            return func(dom)
        except libvirt.libvirtError as e:
            raise LibvirtError(f"{what}: {e.get_error_message()}") from None


@pytest.fixture(scope="module")
def conn() -> Iterator[Any]:
    libvirt.registerErrorHandler(lambda *_: None, None)
    c = libvirt.open("test:///default")
    yield c
    c.close()


def started(conn: Any, devices: str = "") -> tuple[GuestOps, Virt, Any]:
    vm_id = str(uuid.uuid4())
    dom = conn.createXML(domain_xml(vm_id, devices), 0)
    virt = Virt(vm_id, lambda: conn.lookupByUUIDString(vm_id))
    return GuestOps(DomainAccess(virt), now=lambda: NOW), virt, dom


# --- balloon ----------------------------------------------------------------------------


def test_balloon_target_reaches_the_domain(conn: Any) -> None:
    ops, virt, dom = started(conn)
    ops.set_balloon_target(virt.vm.id, 200 * 1024)
    assert dom.info()[2] == 200 * 1024
    dom.destroy()


def test_balloon_errors(conn: Any) -> None:
    ops, virt, dom = started(conn)
    with pytest.raises(errors.BalloonError) as too_big:
        ops.set_balloon_target(virt.vm.id, 512 * 1024)  # above <memory>
    assert too_big.value.code == 53
    with pytest.raises(errors.BalloonError):
        ops.set_balloon_target(virt.vm.id, 0)
    assert dom.info()[2] == 256 * 1024
    dom.destroy()
    with pytest.raises(errors.NoSuchVM):
        ops.set_balloon_target(virt.vm.id, 100 * 1024)
    virt.vm.set_status(vmstatus.DOWN)
    with pytest.raises(errors.VMIsDown):
        ops.set_balloon_target(virt.vm.id, 100 * 1024)


# --- freeze / thaw ----------------------------------------------------------------------


def test_freeze_and_thaw(conn: Any) -> None:
    ops, virt, dom = started(conn)
    ops.freeze(virt.vm.id)
    ops.thaw(virt.vm.id)
    dom.destroy()


class AgentlessDomain:
    def __init__(self, error: libvirt.libvirtError) -> None:
        self.error = error

    def fsFreeze(self) -> int:
        raise self.error

    def fsThaw(self) -> int:
        raise self.error


@pytest.mark.parametrize(
    ("libvirt_code", "freeze_code", "thaw_code"),
    [
        (libvirt.VIR_ERR_AGENT_UNRESPONSIVE, 19, 19),  # NonResponsiveGuestAgent
        (libvirt.VIR_ERR_NO_SUPPORT, 75, 75),  # UnsupportedOperation
        (libvirt.VIR_ERR_OPERATION_FAILED, 76, 77),  # FreezeGuestFSFailed, ThawGuestFSFailed
    ],
)
def test_freeze_and_thaw_errors(libvirt_code: int, freeze_code: int, thaw_code: int) -> None:
    dom = AgentlessDomain(libvirt_error(libvirt_code, "agent says no"))
    virt = Virt(str(uuid.uuid4()), lambda: dom)
    ops = GuestOps(DomainAccess(virt))
    with pytest.raises(errors.VirtHostError) as frozen:
        ops.freeze(virt.vm.id)
    assert frozen.value.code == freeze_code
    assert "agent says no" in frozen.value.wire_message
    with pytest.raises(errors.VirtHostError) as thawed:
        ops.thaw(virt.vm.id)
    assert thawed.value.code == thaw_code


# --- ticket -----------------------------------------------------------------------------


class TicketDomain:
    def __init__(self, graphics: str) -> None:
        self.xml = domain_xml(str(uuid.UUID(int=3)), graphics)
        self.updates: list[tuple[str, int]] = []
        self.error: libvirt.libvirtError | None = None

    def XMLDesc(self, flags: int) -> str:
        return self.xml

    def updateDeviceFlags(self, xml: str, flags: int) -> None:
        self.updates.append((xml, flags))
        if self.error is not None:
            raise self.error


class Hooks:
    def __init__(self) -> None:
        self.runs: list[tuple[str, str, dict[str, str]]] = []

    def run_domxml(self, point: str, domxml: str, **kw: Any) -> str:
        self.runs.append((point, domxml, dict(kw["custom"])))
        return domxml


def ticket_ops(graphics: str) -> tuple[GuestOps, Virt, TicketDomain, Hooks]:
    dom = TicketDomain(graphics)
    hooks = Hooks()
    virt = Virt(str(uuid.UUID(int=3)), lambda: dom, hooks)
    return GuestOps(DomainAccess(virt), now=lambda: NOW), virt, dom, hooks


def test_set_ticket_on_vnc() -> None:
    ops, virt, dom, hooks = ticket_ops(
        "<graphics type='vnc' port='5900' autoport='yes' passwd='*****'>"
        "<listen type='address' address='127.0.0.1'/></graphics>"
    )
    ops.set_ticket(virt.vm.id, "s3cret", 120, "disconnect", {"userName": "admin", "n": 1})
    ((xml, flags),) = dom.updates
    assert flags == libvirt.VIR_DOMAIN_AFFECT_LIVE  # never stored in the definition
    graphics = ET.fromstring(xml)
    assert graphics.get("passwd") == "s3cret"
    valid_to = time.strptime(graphics.get("passwdValidTo", ""), "%Y-%m-%dT%H:%M:%S")
    assert calendar.timegm(valid_to) == NOW + 120
    assert graphics.get("connected") is None
    assert graphics.find("listen") is not None and graphics.get("port") == "5900"
    assert [r[0] for r in hooks.runs] == ["before_vm_set_ticket", "after_vm_set_ticket"]
    assert hooks.runs[0][2] == {"userName": "admin", "n": "1"}
    assert ET.fromstring(hooks.runs[0][1]).tag == "domain"
    assert all("s3cret" not in r[1] for r in hooks.runs)


def test_set_ticket_on_spice_without_expiry() -> None:
    ops, virt, dom, _ = ticket_ops(
        "<graphics type='spice' autoport='yes' passwdValidTo='1970-01-01T00:00:01'/>"
    )
    ops.set_ticket(virt.vm.id, "pw", 0, "fail")
    graphics = ET.fromstring(dom.updates[0][0])
    assert graphics.get("connected") == "fail"
    assert "passwdValidTo" not in graphics.attrib


def test_set_ticket_errors() -> None:
    ops, virt, dom, hooks = ticket_ops("")
    with pytest.raises(errors.SpiceTicketError, match="no graphics device") as missing:
        ops.set_ticket(virt.vm.id, "pw", 10, "keep")
    assert missing.value.code == 18 and dom.updates == [] and hooks.runs == []
    ops, virt, dom, _ = ticket_ops("<graphics type='vnc' autoport='yes'/>")
    dom.error = libvirt_error(libvirt.VIR_ERR_INTERNAL_ERROR, "Could not set password")
    with pytest.raises(errors.SpiceTicketError, match="Could not set password"):
        ops.set_ticket(virt.vm.id, "pw", 10, "keep")
    with pytest.raises(errors.InvalidParameter):
        ops.set_ticket(virt.vm.id, "pw", 10, "keep", {"nested": {"no": "dicts"}})


def test_hook_params() -> None:
    assert hook_params({"a": "x", "b": 2, "c": True}) == {"a": "x", "b": "2", "c": "true"}


# --- screenshot -------------------------------------------------------------------------


def test_screenshot_of_a_vm_with_a_display(conn: Any) -> None:
    ops, virt, dom = started(conn, "<graphics type='vnc' autoport='yes'/>")
    shot = ops.screenshot(virt.vm.id)
    assert shot["encoding"] == "base64"
    assert shot["mimeType"] == "image/png"
    assert base64.b64decode(shot["data"]).startswith(b"\x89PNG")
    dom.destroy()


def test_screenshot_without_a_display_is_refused(conn: Any) -> None:
    ops, virt, dom = started(conn)
    with pytest.raises(errors.UnsupportedOperation, match="no display") as refused:
        ops.screenshot(virt.vm.id)
    assert refused.value.code == 75
    dom.destroy()


def test_capture_screen_bounds_the_size(conn: Any) -> None:
    _, _, dom = started(conn, "<graphics type='vnc' autoport='yes'/>")
    with pytest.raises(errors.VirtHostError, match="larger than 10 bytes"):
        capture_screen(dom, limit=10)
    mime, data = capture_screen(dom)
    assert mime == "image/png" and len(data) > 10
    dom.destroy()
