"""Build the tiny test guest and describe it to libvirt.

The guest is built by build.sh next to this file (see its header) into a cache directory outside
the checkout. Its /init prints ``TINYVM: init started`` and ``TINYVM: ready`` on the serial
console, configures eth0 from ``tinyvm.ip=ADDR/PREFIX`` on the kernel command line, runs
qemu-guest-agent on the ``org.qemu.guest_agent.0`` channel and powers off on the ACPI power
button or the agent's guest-shutdown.
"""

from __future__ import annotations

import ipaddress
import subprocess
import time
import uuid as uuidlib
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

DEFAULT_OUTDIR = Path("/var/cache/virthost-test-guest")
BUILD_SCRIPT = Path(__file__).resolve().with_name("build.sh")
ROOTFS = BUILD_SCRIPT.with_name("rootfs")

INIT_MARKER = "TINYVM: init started"
READY_MARKER = "TINYVM: ready"
HOSTNAME = "tinyvm"
OS_ID = "tinyvm"
AGENT_CHANNEL = "org.qemu.guest_agent.0"
# Below this the guest does not boot (the initramfs lives in RAM), and ballooning under it gets
# qemu-ga OOM-killed.
MIN_MEMORY_MIB = 96
TB_CACHE_MIB = 16


class GuestBuildError(RuntimeError):
    """build.sh failed; the message ends with its output."""


@dataclass(frozen=True)
class GuestImage:
    """The files of a built guest. ``kernel`` (the ELF vmlinux) is what domains boot."""

    outdir: Path
    vmlinux: Path
    vmlinuz: Path
    initrd: Path
    kernel_release: str

    @property
    def kernel(self) -> Path:
        return self.vmlinux


@dataclass(frozen=True)
class Disk:
    """A file-backed disk. ``target`` defaults to vda, vdb... in the order given."""

    path: Path
    format: str = "qcow2"
    target: str | None = None
    readonly: bool = False


def _mtime(path: Path) -> float:
    return path.lstat().st_mtime


def _is_built(outdir: Path) -> bool:
    """The rule build.sh uses: the kernel files are newer than build.sh, the initramfs is newer
    than build.sh and everything in rootfs/."""
    kernel_inputs = _mtime(BUILD_SCRIPT)
    initrd_inputs = max([kernel_inputs, _mtime(ROOTFS), *map(_mtime, ROOTFS.rglob("*"))])
    wanted = {
        "vmlinux": kernel_inputs,
        "vmlinuz": kernel_inputs,
        "kernel.release": kernel_inputs,
        "initrd.img": initrd_inputs,
    }
    for name, newest_input in wanted.items():
        try:
            stat = (outdir / name).stat()
        except FileNotFoundError:
            return False
        if stat.st_size == 0 or stat.st_mtime <= newest_input:
            return False
    return True


def ensure_guest(outdir: Path = DEFAULT_OUTDIR) -> GuestImage:
    """Return the guest in ``outdir``, running build.sh first when it is missing or stale.

    A cold build downloads about 70 MB of Debian packages; a warm call only stats files.
    """
    if not _is_built(outdir):
        result = subprocess.run(
            ["bash", str(BUILD_SCRIPT), str(outdir)],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0 or not _is_built(outdir):
            output = (result.stdout + result.stderr)[-4000:]
            raise GuestBuildError(
                f"{BUILD_SCRIPT} {outdir} failed ({result.returncode}):\n{output}"
            )
    return GuestImage(
        outdir=outdir,
        vmlinux=outdir / "vmlinux",
        vmlinuz=outdir / "vmlinuz",
        initrd=outdir / "initrd.img",
        kernel_release=(outdir / "kernel.release").read_text().strip(),
    )


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    if text is not None:
        element.text = text
    return element


def _disk_target(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(ord("a") + rem) + letters
    return "vd" + letters


def domain_xml(
    name: str,
    uuid: str,
    guest: GuestImage,
    *,
    memory_mib: int = 128,
    console_log: Path,
    ip: str | None = None,
    with_agent: bool = True,
    disks: Sequence[Path | Disk] = (),
    nics: Sequence[str] = (),
    domain_type: str = "qemu",
    vcpus: int = 1,
    balloon_stats_period: int = 5,
    extra_cmdline: str = "",
) -> str:
    """Libvirt domain XML that boots ``guest`` directly from its kernel and initramfs.

    ``console_log`` gets the serial console (appended to, never truncated); its directory must be
    writable for libvirt. ``ip`` ("10.0.2.15/24") is configured on eth0, the first of ``nics``;
    each NIC is "user" (QEMU's slirp) or the name of a Linux bridge. A bare path in ``disks`` is
    qcow2 when it ends in .qcow2 and raw otherwise. ``domain_type`` "qemu" is TCG (with a 16 MiB
    translation cache, as QEMU's 1 GiB default lets a guest's RSS grow that far); "kvm" drops
    the TCG tuning.
    """
    if not name:
        raise ValueError("empty domain name")
    uuid = str(uuidlib.UUID(uuid))
    if memory_mib < MIN_MEMORY_MIB:
        raise ValueError(f"memory_mib={memory_mib}: the guest needs at least {MIN_MEMORY_MIB}")
    if domain_type not in ("qemu", "kvm"):
        raise ValueError(f"domain_type must be 'qemu' or 'kvm', not {domain_type!r}")
    if vcpus < 1:
        raise ValueError(f"vcpus={vcpus}")
    cmdline = ["console=ttyS0", "quiet"]
    if ip is not None:
        if "/" not in ip:
            raise ValueError(f"ip {ip!r} needs a prefix length, e.g. 10.0.2.15/24")
        cmdline.append(f"tinyvm.ip={ipaddress.ip_interface(ip).with_prefixlen}")
    if extra_cmdline:
        cmdline.append(extra_cmdline)

    domain = ET.Element("domain", type=domain_type)
    _sub(domain, "name", name)
    _sub(domain, "uuid", uuid)
    _sub(domain, "memory", str(memory_mib), unit="MiB")
    _sub(domain, "currentMemory", str(memory_mib), unit="MiB")
    _sub(domain, "vcpu", str(vcpus))
    os_ = _sub(domain, "os")
    _sub(os_, "type", "hvm", arch="x86_64", machine="pc")
    _sub(os_, "kernel", str(guest.kernel))
    _sub(os_, "initrd", str(guest.initrd))
    _sub(os_, "cmdline", " ".join(cmdline))
    features = _sub(domain, "features")
    _sub(features, "acpi")
    if domain_type == "qemu":
        tcg = _sub(features, "tcg")
        _sub(tcg, "tb-cache", str(TB_CACHE_MIB), unit="MiB")
    _sub(domain, "clock", offset="utc")
    _sub(domain, "on_poweroff", "destroy")
    _sub(domain, "on_reboot", "restart")
    _sub(domain, "on_crash", "destroy")

    devices = _sub(domain, "devices")
    _sub(devices, "emulator", "/usr/bin/qemu-system-x86_64")
    _sub(devices, "controller", type="usb", model="none")
    for index, item in enumerate(disks):
        disk = item if isinstance(item, Disk) else _bare_disk(item)
        element = _sub(devices, "disk", type="file", device="disk")
        _sub(element, "driver", name="qemu", type=disk.format)
        _sub(element, "source", file=str(disk.path))
        _sub(element, "target", dev=disk.target or _disk_target(index), bus="virtio")
        if disk.readonly:
            _sub(element, "readonly")
    for nic in nics:
        if nic == "user":
            interface = _sub(devices, "interface", type="user")
        else:
            interface = _sub(devices, "interface", type="bridge")
            _sub(interface, "source", bridge=nic)
        _sub(interface, "model", type="virtio")
    for tag, target_attrs in (("serial", {}), ("console", {"type": "serial"})):
        chardev = _sub(devices, tag, type="file")
        _sub(chardev, "source", path=str(console_log), append="on")
        _sub(chardev, "target", port="0", **target_attrs)
    if with_agent:
        channel = _sub(devices, "channel", type="unix")
        _sub(channel, "target", type="virtio", name=AGENT_CHANNEL)
    balloon = _sub(devices, "memballoon", model="virtio")
    _sub(balloon, "stats", period=str(balloon_stats_period))
    rng = _sub(devices, "rng", model="virtio")
    _sub(rng, "backend", "/dev/urandom", model="random")

    ET.indent(domain)
    return ET.tostring(domain, encoding="unicode")


def _bare_disk(path: Path) -> Disk:
    return Disk(path=path, format="qcow2" if path.suffix == ".qcow2" else "raw")


def wait_for_console(path: Path, marker: str, timeout: float, *, offset: int = 0) -> None:
    """Wait until ``marker`` appears in the console log ``path`` after byte ``offset``.

    Raises TimeoutError, quoting the end of the log, when it does not within ``timeout`` s.
    Logs are appended to across domain restarts: pass the size before the restart as
    ``offset`` to wait for a new marker.
    """
    needle = marker.encode()
    deadline = time.monotonic() + timeout
    data = b""
    while True:
        try:
            with path.open("rb") as log:
                log.seek(offset)
                data = log.read()
        except FileNotFoundError:
            data = b""
        if needle in data:
            return
        if time.monotonic() >= deadline:
            tail = data[-2000:].decode(errors="replace")
            raise TimeoutError(f"{marker!r} not in {path} after {timeout} s; it ends with:\n{tail}")
        time.sleep(0.1)
