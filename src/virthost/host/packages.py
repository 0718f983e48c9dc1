"""Versions of the software stack for ``packages2`` in ``Host.getCapabilities``.

The engine shows these versions and uses some of them to decide what a host can do (libvirt and
QEMU in particular). The running daemons are the truth for libvirt and QEMU, so their versions
come from the libvirt connection when the caller has them; the package manager adds the
distribution release (and covers packages with no API of their own, such as sanlock). dpkg and
rpm are both supported because the agent has to run on Debian-like and Red Hat-like hosts.

One package-manager query is made for all packages, through the command runner, with a time
box: on a host with a locked or huge package database it may be slow, and capabilities must
still come back.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from virthost.common import errors
from virthost.common.commands import Runner
from virthost.host import hostfs, osinfo

log = logging.getLogger("virthost.host.packages")

# VDSM's packages2 key -> candidate package names, first installed one wins.
DEB_PACKAGES: dict[str, tuple[str, ...]] = {
    "qemu-kvm": ("qemu-system-x86", "qemu-kvm", "qemu-system-arm", "qemu-system-ppc"),
    "qemu-img": ("qemu-utils",),
    "libvirt": ("libvirt-daemon", "libvirt0"),
    "spice-server": ("libspice-server1",),
    "sanlock": ("sanlock",),
    "glusterfs-cli": ("glusterfs-cli",),
    "librbd1": ("librbd1",),
    "openvswitch": ("openvswitch-switch",),
    "nmstate": ("nmstate",),
}
RPM_PACKAGES: dict[str, tuple[str, ...]] = {
    "qemu-kvm": ("qemu-kvm",),
    "qemu-img": ("qemu-img",),
    "libvirt": ("libvirt-daemon-kvm", "libvirt"),
    "spice-server": ("spice-server",),
    "sanlock": ("sanlock",),
    "glusterfs-cli": ("glusterfs-cli",),
    "librbd1": ("librbd1",),
    "openvswitch": ("openvswitch",),
    "nmstate": ("nmstate",),
}

Installed = dict[str, tuple[str, str]]


def parse_deb_version(text: str) -> tuple[str, str]:
    """``"1:7.2+dfsg-7+deb12u18"`` -> ``("7.2+dfsg", "7+deb12u18")`` (epoch dropped)."""
    _, _, rest = text.rpartition(":") if ":" in text else ("", "", text)
    upstream, sep, revision = rest.rpartition("-")
    if not sep:
        return rest, ""
    return upstream, revision


def parse_dpkg_query(text: str) -> Installed:
    """Output of ``dpkg-query -W -f '${Package}\\t${Version}\\t${db:Status-Abbrev}\\n'``."""
    installed: Installed = {}
    for line in text.splitlines():
        fields = line.split("\t")
        if len(fields) < 3 or not fields[2].startswith("ii"):
            continue
        installed[fields[0]] = parse_deb_version(fields[1])
    return installed


def parse_rpm_query(text: str) -> Installed:
    """Output of ``rpm -q --qf '%{NAME}\\t%{VERSION}\\t%{RELEASE}\\n'`` (misses are skipped)."""
    installed: Installed = {}
    for line in text.splitlines():
        fields = line.split("\t")
        if len(fields) == 3:
            installed[fields[0]] = (fields[1], fields[2])
    return installed


def _query(runner: Runner, argv: Sequence[str], timeout: float) -> str:
    try:
        # Both tools exit 1 when some package is missing and still print the others.
        result = runner.run(argv, timeout, check=False)
    except errors.CommandError as exc:
        log.warning("Cannot query package versions: %s", exc)
        return ""
    return result.out.decode("utf-8", "replace")


def query_installed(
    runner: Runner, timeout: float, root: str = "/"
) -> tuple[Installed, dict[str, tuple[str, ...]]]:
    """Installed candidate packages, and the key table of the host's package manager."""
    if hostfs.exists(root, "/var/lib/dpkg/status"):
        table = DEB_PACKAGES
        fmt = "${Package}\t${Version}\t${db:Status-Abbrev}\n"
        argv = ["dpkg-query", "-W", "-f", fmt, *_all_names(table)]
        return parse_dpkg_query(_query(runner, argv, timeout)), table
    if hostfs.exists(root, "/var/lib/rpm") or hostfs.exists(root, "/usr/lib/sysimage/rpm"):
        table = RPM_PACKAGES
        fmt = "%{NAME}\t%{VERSION}\t%{RELEASE}\n"
        argv = ["rpm", "-q", "--qf", fmt, *_all_names(table)]
        return parse_rpm_query(_query(runner, argv, timeout)), table
    return {}, {}


def _all_names(table: dict[str, tuple[str, ...]]) -> list[str]:
    return sorted({name for names in table.values() for name in names})


def package_versions(
    runner: Runner,
    timeout: float,
    *,
    own_name: str,
    own_version: str,
    libvirt_version: str | None = None,
    qemu_version: str | None = None,
    root: str = "/",
) -> dict[str, dict[str, str]]:
    """VDSM's ``packages2``: ``{key: {"version": ..., "release": ...}}``.

    ``libvirt_version`` / ``qemu_version`` (from the libvirt connection) override the package
    manager's version for those keys; the package release is kept when there is one.
    """
    installed, table = query_installed(runner, timeout, root)
    found: dict[str, dict[str, str]] = {
        "kernel": osinfo.split_kernel_release(osinfo.uname_release()),
    }
    for key, candidates in table.items():
        for name in candidates:
            if name in installed:
                version, release = installed[name]
                found[key] = {"version": version, "release": release}
                break
    for key, api_version in (("libvirt", libvirt_version), ("qemu-kvm", qemu_version)):
        if api_version:
            release = found.get(key, {}).get("release", "")
            found[key] = {"version": api_version, "release": release}
    found[own_name] = {"version": own_version, "release": ""}
    return found
