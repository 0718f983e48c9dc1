"""Operating-system facts for ``Host.getCapabilities``: distribution, kernel and host features.

The engine shows the distribution and kernel, refuses hosts lacking features a cluster needs
(KVM, FIPS mode, nested virtualization, random-number sources, huge pages) and decides fencing
behaviour from kdump. Every value comes from a file below ``root``, except the /boot filesystem
UUID, which needs ``findmnt`` and so a command runner (time-boxed by the caller's timeout).
"""

from __future__ import annotations

import logging
import os
import shlex

from virthost.common import errors
from virthost.common.commands import Runner
from virthost.host import hostfs, numa

log = logging.getLogger("virthost.host.osinfo")

_RNG_SOURCES = {"random": "/dev/random", "hwrng": "/dev/hwrng"}


def parse_os_release(text: str) -> dict[str, str]:
    """``/etc/os-release`` as a dict, shell quoting removed."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, raw = line.split("=", 1)
        try:
            parts = shlex.split(raw)
        except ValueError:
            parts = [raw.strip("\"'")]
        values[key.strip()] = " ".join(parts)
    return values


def distribution_name(os_release: dict[str, str]) -> str:
    """The family names VDSM reports (``RHEL``, ``Fedora``, ``Debian``...), else os-release's."""
    ids = {os_release.get("ID", "")} | set(os_release.get("ID_LIKE", "").split())
    if os_release.get("ID") == "fedora":
        return "Fedora"
    if ids & {"rhel", "centos"}:
        return "RHEL"
    if "debian" in ids:
        return "Debian"
    return os_release.get("NAME") or "unknown"


def operating_system(root: str = "/") -> dict[str, str]:
    """VDSM's ``operatingSystem``: ``{name, version, release, pretty_name}``."""
    os_release = parse_os_release(
        hostfs.read_text(root, "/etc/os-release")
        or hostfs.read_text(root, "/usr/lib/os-release")
        or ""
    )
    name = distribution_name(os_release)
    version = os_release.get("VERSION_ID", "")
    if name == "Debian":
        # The point release lives only in /etc/debian_version (os-release says "12").
        version = hostfs.read_line(root, "/etc/debian_version") or version
    return {
        "name": name,
        "version": version,
        "release": "",
        "pretty_name": os_release.get("PRETTY_NAME", ""),
    }


def split_kernel_release(release: str) -> dict[str, str]:
    """``uname -r`` split VDSM's way: ``"6.1.0-18-amd64"`` -> version 6.1.0, release 18-amd64."""
    version, _, rest = release.partition("-")
    return {"version": version, "release": rest}


def is_realtime_kernel(uname_version: str) -> bool:
    return "PREEMPT_RT" in uname_version or " RT " in f" {uname_version} "


def kernel_args(root: str = "/") -> str:
    return hostfs.read_line(root, "/proc/cmdline") or ""


def kvm_enabled(root: str = "/") -> bool:
    return hostfs.exists(root, "/dev/kvm")


def selinux_mode(root: str = "/") -> str:
    """``"1"`` enforcing, ``"0"`` permissive, ``"-1"`` disabled or absent (VDSM's values)."""
    value = hostfs.read_line(root, "/sys/fs/selinux/enforce")
    return value if value in ("0", "1") else "-1"


def fips_enabled(root: str = "/") -> bool:
    return hostfs.read_line(root, "/proc/sys/crypto/fips_enabled") == "1"


def nested_virtualization(root: str = "/") -> bool:
    for module in ("kvm_intel", "kvm_amd", "kvm"):
        value = hostfs.read_line(root, f"/sys/module/{module}/parameters/nested")
        if value in ("Y", "y", "1"):
            return True
    return False


def rng_sources(root: str = "/") -> list[str]:
    """Random sources a VM's virtio-rng may use (``urandom`` is implied by ``random``)."""
    return [name for name, dev in _RNG_SOURCES.items() if hostfs.exists(root, dev)]


def hugepage_sizes(root: str = "/") -> list[int]:
    """Huge page sizes in KiB the kernel supports (VDSM's ``hugepages`` capability)."""
    sizes = []
    for name in hostfs.list_dir(root, "/sys/kernel/mm/hugepages"):
        size = numa.hugepage_size_from_dir(name)
        if size is not None:
            sizes.append(size)
    return sorted(sizes)


def kdump_status(root: str = "/") -> int:
    """1 when a crash kernel is loaded and fence_kdump is configured, 0 when not, -1 unknown."""
    loaded = hostfs.read_line(root, "/sys/kernel/kexec_crash_loaded")
    if loaded not in ("0", "1"):
        return -1
    if loaded == "0":
        return 0
    conf = hostfs.read_text(root, "/etc/kdump.conf") or ""
    has_fence = any(line.startswith("fence_kdump_nodes") for line in conf.splitlines())
    return 1 if has_fence else 0


def iscsi_initiator_name(root: str = "/") -> str:
    text = hostfs.read_text(root, "/etc/iscsi/initiatorname.iscsi") or ""
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() == "InitiatorName":
            return value.strip()
    return ""


def boot_uuid(runner: Runner, timeout: float) -> str | None:
    """UUID of the filesystem holding /boot, or ``None`` when it has none or findmnt failed."""
    argv = ["findmnt", "--output=UUID", "--noheadings", "--target=/boot"]
    try:
        result = runner.run(argv, timeout, check=False)
    except errors.CommandError as exc:
        log.warning("Cannot find the /boot filesystem UUID: %s", exc)
        return None
    uuid = result.out.decode("utf-8", "replace").strip()
    return uuid if result.rc == 0 and uuid else None


def uname_release() -> str:
    return os.uname().release


def uname_version() -> str:
    return os.uname().version
