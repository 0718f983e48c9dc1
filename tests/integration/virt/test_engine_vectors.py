"""The engine's own domain XML (../shared/vectors/vdsm-domain-xml) through VM.create, for real.

Project rule: VM.create must accept every domain XML among the vectors as an engine sends it.
Each whole ``<domain>`` document is fitted to this host only where it names another host's
resources (identity, volumes, listen addresses; see vectorprep), sent to the real daemon
(``[virt] domain_type = "qemu"``), followed to Up (the guest has no OS: Powering up, then Up
after guest_wait_timeout) and checked in libvirt: the vector's devices and our metadata are in
the live domain. VM.destroy must then leave nothing behind: no domain, no tap on the bridge, no
channel socket and no loop device still held.

``disk_devices.xml`` is not a domain but a list of disks; each is checked through the daemon's
Disk parsing instead.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import libvirt
import pytest

from fixtures import daemon as daemon_fixtures
from virthost.client import Client
from virthost.client import errors as client_errors
from virthost.common import errors
from virthost.common.pki import PkiPaths
from virthost.virt.domxml import GUEST_AGENT_CHANNEL, parse_domain, read_metadata
from virthost.virt.domxml.metadata import VM_TAG

from . import vectorprep
from .vectorprep import HostVolumes, PreparedDisk

VECTORS = vectorprep.VECTORS_DIR
NO_VECTORS = f"engine vectors not found at {VECTORS} (../shared/vectors is absent)"
DISK_LIST = VECTORS / "disk_devices.xml"
UP_TIMEOUT = 120.0

needs_vectors = pytest.mark.skipif(not VECTORS.is_dir(), reason=NO_VECTORS)
needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="needs root: qemu:///system, loop devices and a Linux bridge"
)


def _documents() -> list[Any]:
    if not VECTORS.is_dir():
        return [pytest.param(None, id="no-vectors", marks=pytest.mark.skip(reason=NO_VECTORS))]
    return [pytest.param(path, id=path.name) for path in vectorprep.whole_documents()]


def _disk_fragments() -> list[Any]:
    if not DISK_LIST.is_file():
        reason = NO_VECTORS if not VECTORS.is_dir() else f"{DISK_LIST} is absent"
        return [pytest.param(None, id="no-disk-list", marks=pytest.mark.skip(reason=reason))]
    return [
        pytest.param(disk, id=f"disk{i}-{disk.get('type')}-{disk.get('device', 'disk')}")
        for i, disk in enumerate(vectorprep.disk_fragments(DISK_LIST))
    ]


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def services(pki: PkiPaths) -> Iterator[daemon_fixtures.Services]:
    running = daemon_fixtures.start_services(
        pki,
        overrides={
            "virt": {
                "domain_type": "qemu",
                "guest_wait_timeout": 3.0,
                "vm_sample_interval": 1.0,
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


@pytest.fixture(scope="module")
def owner(conn: Any) -> vectorprep.Owner:
    return vectorprep.qemu_owner(conn)


@pytest.fixture(scope="module")
def host_bridges() -> Iterator[set[str]]:
    """Every bridge the vectors' NICs use (``ovirtmgmt``), present for the whole module."""
    names: set[str] = set()
    for path in vectorprep.whole_documents():
        names |= vectorprep.bridges_named(
            vectorprep.with_identity(path.read_text(), str(uuid.uuid4()), "x")
        )
    with vectorprep.linux_bridges(names):
        yield names


@pytest.fixture(scope="module")
def channels_dir(owner: vectorprep.Owner) -> Iterator[Path]:
    with vectorprep.channels_dir(owner) as path:
        yield path


@pytest.fixture
def cli(services: daemon_fixtures.Services) -> Iterator[Client]:
    with services.client() as client:
        yield client


@pytest.fixture
def volumes(owner: vectorprep.Owner) -> Iterator[HostVolumes]:
    prepared = HostVolumes(owner)
    yield prepared
    prepared.cleanup()


@pytest.fixture
def vm_id(cli: Client, conn: Any, volumes: HostVolumes) -> Iterator[str]:
    """A fresh VM id; whatever failed, neither the VM nor its domain outlive the test (and
    they go before the volumes, which depend on this fixture being torn down first)."""
    ident = str(uuid.uuid4())
    yield ident
    with contextlib.suppress(client_errors.ServerError):
        cli.VM.destroy(vmID=ident)
    if _domain_exists(conn, ident):
        dom = conn.lookupByUUIDString(ident)
        if dom.isActive():
            dom.destroy()
        dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)


# --- helpers ---------------------------------------------------------------------------------


def _domain_exists(conn: Any, vm_id: str) -> bool:
    try:
        conn.lookupByUUIDString(vm_id)
    except libvirt.libvirtError:
        return False
    return True


@contextlib.contextmanager
def _verb(vector: str, verb: str) -> Iterator[None]:
    """Fail with the vector's name when the daemon refuses a verb."""
    try:
        yield
    except client_errors.ServerError as e:
        pytest.fail(f"{vector}: {verb} failed: {e}", pytrace=False)


def _stats(cli: Client, vm_id: str, vector: str) -> dict[str, Any]:
    with _verb(vector, "VM.getStats"):
        return dict(cli.VM.getStats(vmID=vm_id)[0])


def _log_about(services: daemon_fixtures.Services, vm_id: str, lines: int = 15) -> str:
    relevant = [line for line in services.log_text().splitlines() if vm_id in line]
    return "\n".join(relevant[-lines:]) or "(nothing about this VM in the daemon log)"


def _wait_up(
    cli: Client, vm_id: str, vector: str, services: daemon_fixtures.Services
) -> dict[str, Any]:
    """The VM's stats once Up; fails with the daemon's exit message if it went Down."""
    deadline = time.monotonic() + UP_TIMEOUT
    while True:
        stats = _stats(cli, vm_id, vector)
        if stats["status"] == "Up":
            return stats
        if stats["status"] == "Down":
            pytest.fail(
                f"{vector}: VM.create accepted the document but the VM went Down: "
                f"exitCode={stats.get('exitCode')} exitReason={stats.get('exitReason')} "
                f"exitMessage={stats.get('exitMessage')!r}",
                pytrace=False,
            )
        if time.monotonic() > deadline:
            pytest.fail(
                f"{vector}: still {stats['status']} after {UP_TIMEOUT:.0f} s; daemon log:\n"
                + _log_about(services, vm_id),
                pytrace=False,
            )
        time.sleep(0.2)


def _device_key(element: ET.Element) -> tuple[str, str | None, str | None, str | None]:
    model = element.get("model")
    child = element.find("model")
    if model is None and child is not None:
        model = child.get("type")
    return (element.tag, element.get("type"), element.get("device"), model)


def _devices(root: ET.Element) -> list[ET.Element]:
    return [d for d in root.iterfind("devices/*") if d.tag != "emulator"]


def _disk_source(disk: ET.Element) -> str | None:
    source = disk.find("source")
    if source is None:
        return None
    return source.get("file") or source.get("dev") or None


def _target_dev(element: ET.Element) -> str | None:
    target = element.find("target")
    return None if target is None else target.get("dev")


def _attr(element: ET.Element, path: str, attr: str) -> str | None:
    found = element.find(path)
    return None if found is None else found.get(attr)


def _check_devices(
    vector: str, sent: ET.Element, live: ET.Element, disks: list[PreparedDisk]
) -> None:
    """The live domain has every device of the document it was created from."""
    missing = Counter(map(_device_key, _devices(sent))) - Counter(map(_device_key, _devices(live)))
    assert not missing, f"{vector}: devices missing from the live domain: {dict(missing)}"

    live_disks = {_target_dev(d): d for d in live.iterfind("devices/disk")}
    sent_disks = {_target_dev(d): d for d in sent.iterfind("devices/disk")}
    for disk in disks:
        found = live_disks.get(disk.target)
        assert found is not None, f"{vector}: disk {disk.target} is not in the live domain"
        where = f"{vector}: disk {disk.target}"
        assert (found.get("type"), found.get("device", "disk")) == (disk.type, disk.device), where
        assert _disk_source(found) == disk.source, f"{where}: source"
        expected = sent_disks[disk.target]
        settings = [
            ("target", "bus"),
            ("driver", "cache"),
            ("driver", "io"),
            ("driver", "error_policy"),
            ("boot", "order"),
        ]
        if disk.source is not None:  # libvirt keeps no format for an empty drive
            settings.append(("driver", "type"))
        for path, attr in settings:
            wanted = _attr(expected, path, attr)
            if wanted is not None:  # what the document leaves out, libvirt may fill in
                assert _attr(found, path, attr) == wanted, f"{where}: {path}@{attr}"
        assert found.findtext("serial") == expected.findtext("serial"), f"{where}: serial"

    live_nics = {
        (_attr(n, "mac", "address") or "").lower(): n for n in live.iterfind("devices/interface")
    }
    for nic in sent.iterfind("devices/interface"):
        mac = (_attr(nic, "mac", "address") or "").lower()
        found = live_nics.get(mac)
        where = f"{vector}: NIC {mac}"
        assert found is not None, f"{where} is not in the live domain"
        assert found.get("type") == nic.get("type"), where
        for path, attr in [
            ("source", "bridge"),
            ("model", "type"),
            ("filterref", "filter"),
            ("link", "state"),
        ]:
            assert _attr(found, path, attr) == _attr(nic, path, attr), f"{where}: {path}@{attr}"
        bridge, tap = _attr(found, "source", "bridge"), _attr(found, "target", "dev")
        if bridge:
            assert tap and Path("/sys/class/net", bridge, "brif", tap).exists(), (
                f"{where}: tap {tap} is not a port of bridge {bridge}"
            )

    live_channels = {_attr(c, "target", "name"): c for c in live.iterfind("devices/channel")}
    assert GUEST_AGENT_CHANNEL in live_channels, f"{vector}: no guest agent channel"
    for channel in sent.iterfind("devices/channel"):
        name = _attr(channel, "target", "name")
        found = live_channels.get(name)
        assert found is not None, f"{vector}: channel {name} is not in the live domain"
        socket_path = _attr(channel, "source", "path")
        if socket_path:
            assert _attr(found, "source", "path") == socket_path, f"{vector}: {name} path"
            assert Path(socket_path).is_socket(), f"{vector}: {name}: no socket {socket_path}"

    for graphics in sent.iterfind("devices/graphics"):
        kind = graphics.get("type")
        found = live.find(f"devices/graphics[@type='{kind}']")
        assert found is not None, f"{vector}: no {kind} display in the live domain"
        ports = (int(found.get("port", "-1")), int(found.get("tlsPort", "-1")))
        assert max(ports) > 0, f"{vector}: {kind} got no port (plain or TLS)"


def _check_metadata(
    vector: str, sent: ET.Element, live: ET.Element, cli: Client, vm_id: str
) -> None:
    """The vector's metadata (ovirt-vm keys, devices, custom properties; other namespaces)
    is in the live domain, and the custom properties in Host.getVMFullList."""
    ours, theirs = read_metadata(sent), read_metadata(live)
    assert live.find(f"metadata/{VM_TAG}") is not None, f"{vector}: no ovirt-vm metadata"
    assert theirs.devices == ours.devices, f"{vector}: ovirt-vm device metadata differs"
    assert theirs.custom == ours.custom, f"{vector}: custom properties differ"
    changed = {k: theirs.extra.get(k) for k, v in ours.extra.items() if theirs.extra.get(k) != v}
    assert not changed, f"{vector}: ovirt-vm keys lost or changed: {changed}"
    assert (theirs.mem_guaranteed_mib, theirs.destroy_on_reboot, theirs.resume_behavior) == (
        ours.mem_guaranteed_mib,
        ours.destroy_on_reboot,
        ours.resume_behavior,
    ), f"{vector}: ovirt-vm known keys differ"
    assert theirs.start_time is not None, f"{vector}: no startTime"
    others = [e.tag for e in sent.iterfind("metadata/*") if e.tag != VM_TAG]
    for tag in others:
        assert live.find(f"metadata/{tag}") is not None, f"{vector}: metadata {tag} lost"

    with _verb(vector, "Host.getVMFullList"):
        (full,) = cli.Host.getVMFullList(vmList=[vm_id])
    assert full["vmId"] == vm_id and full["status"] == "Up", f"{vector}: {full['status']}"
    assert full["vmName"] == sent.findtext("name"), f"{vector}: vmName"
    assert full["custom"] == ours.custom, f"{vector}: Host.getVMFullList custom"


def _prepare(path: Path, vm_id: str, volumes: HostVolumes) -> tuple[ET.Element, list[PreparedDisk]]:
    root = vectorprep.with_identity(path.read_text(), vm_id, f"vec-{path.stem}-{vm_id[:8]}")
    disks = vectorprep.point_disks(root, volumes)
    vectorprep.point_graphics(root)
    vectorprep.fit_spice_tls(root)
    return root, disks


# --- tests -----------------------------------------------------------------------------------


@pytest.mark.integration
@needs_root
@pytest.mark.parametrize("vector", _documents())
def test_engine_domain_xml_runs_and_destroys_cleanly(
    vector: Path,
    services: daemon_fixtures.Services,
    cli: Client,
    conn: Any,
    host_bridges: set[str],
    channels_dir: Path,
    volumes: HostVolumes,
    vm_id: str,
) -> None:
    name = vector.name
    sent, disks = _prepare(vector, vm_id, volumes)
    with _verb(name, "VM.create"):
        answer = cli.VM.create(vmID=vm_id, vmParams={"xml": ET.tostring(sent, encoding="unicode")})
    assert (answer["vmId"], answer["status"]) == (vm_id, "WaitForLaunch"), f"{name}: {answer}"

    _wait_up(cli, vm_id, name, services)
    dom = conn.lookupByUUIDString(vm_id)
    assert dom.isActive(), f"{name}: Up but the libvirt domain is not running"
    live = ET.fromstring(dom.XMLDesc(0))
    assert live.get("type") == "qemu", f"{name}: domain type {live.get('type')}"
    _check_devices(name, sent, live, disks)
    _check_metadata(name, sent, live, cli, vm_id)

    taps = [
        (bridge, tap)
        for nic in live.iterfind("devices/interface")
        if (bridge := _attr(nic, "source", "bridge")) and (tap := _attr(nic, "target", "dev"))
    ]
    sockets = [p for c in live.iterfind("devices/channel") if (p := _attr(c, "source", "path"))]

    with _verb(name, "VM.destroy"):
        cli.VM.destroy(vmID=vm_id)
    assert not _domain_exists(conn, vm_id), f"{name}: libvirt still has the domain"
    assert vm_id not in [v["vmId"] for v in cli.Host.getVMList()], f"{name}: VM still listed"
    for bridge, tap in taps:
        assert not Path("/sys/class/net", bridge, "brif", tap).exists(), f"{name}: {tap} left"
    for socket_path in sockets:
        assert not Path(socket_path).exists(), f"{name}: channel socket {socket_path} left"
    for device, backing in list(volumes.loops.items()):
        volumes.detach(device)
        assert vectorprep.loops_backed_by(backing) == [], f"{name}: {device} still held open"


@needs_vectors
@pytest.mark.parametrize("fragment", _disk_fragments())
def test_engine_disk_parses(fragment: ET.Element) -> None:
    """Each disk an engine may send, read by the daemon's Disk view of a domain."""
    vm_id = str(uuid.uuid4())
    text = ET.tostring(fragment, encoding="unicode")
    domain = parse_domain(
        f"<domain type='kvm'><name>d</name><uuid>{vm_id}</uuid><devices>{text}</devices></domain>"
    )
    (disk,) = domain.devices.disks
    kind = fragment.get("type")
    source = fragment.find("source")
    assert disk.type == kind
    assert disk.device == fragment.get("device", "disk")
    assert disk.target_dev == _target_dev(fragment) and disk.target_dev
    assert disk.target_bus == _attr(fragment, "target", "bus")
    assert disk.format == _attr(fragment, "driver", "type")
    assert disk.cache == _attr(fragment, "driver", "cache")
    assert disk.io == _attr(fragment, "driver", "io")
    assert disk.error_policy == _attr(fragment, "driver", "error_policy")
    assert disk.serial == fragment.findtext("serial")
    assert disk.readonly == (fragment.find("readonly") is not None)
    assert disk.alias == _attr(fragment, "alias", "name")
    boot = _attr(fragment, "boot", "order")
    assert disk.boot_order == (int(boot) if boot else None)
    assert disk.startup_policy == _attr(fragment, "source", "startupPolicy")

    if kind == "network":
        assert source is not None
        assert disk.path is None
        assert (disk.protocol, disk.network_name) == (source.get("protocol"), source.get("name"))
        with pytest.raises(errors.InvalidParameter):
            domain.set_disk_source(disk.target_dev, "/rhev/x")
        return
    assert disk.path == (_disk_source(fragment) or None)
    # What storage preparation does to it: a new path, everything else in <source> kept.
    domain.set_disk_source(disk.target_dev, "/rhev/data-center/pool/sd/images/img/vol")
    (moved,) = domain.devices.disks
    assert (moved.path, moved.type, moved.startup_policy) == (
        "/rhev/data-center/pool/sd/images/img/vol",
        kind,
        disk.startup_policy,
    )
    new_source = domain.root.find("devices/disk/source")
    assert new_source is not None
    assert [s.attrib for s in new_source.iterfind("seclabel")] == (
        [] if source is None else [s.attrib for s in source.iterfind("seclabel")]
    )
