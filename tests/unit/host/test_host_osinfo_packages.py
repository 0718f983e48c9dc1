"""Distribution, kernel and host feature facts; package versions from dpkg and rpm."""

from __future__ import annotations

from pathlib import Path

import pytest

from unit.host.host_fakes import FakeRunner, make_tree, result
from virthost.common import errors
from virthost.host import osinfo, packages

DEBIAN_OS_RELEASE = """\
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
ID=debian
"""
CENTOS_OS_RELEASE = """\
NAME="CentOS Stream"
VERSION="9"
ID="centos"
ID_LIKE="rhel fedora"
VERSION_ID="9"
PRETTY_NAME="CentOS Stream 9"
"""


def test_debian_reports_the_point_release(tmp_path: Path) -> None:
    root = make_tree(
        tmp_path, {"/etc/os-release": DEBIAN_OS_RELEASE, "/etc/debian_version": "12.11\n"}
    )
    assert osinfo.operating_system(root) == {
        "name": "Debian",
        "version": "12.11",
        "release": "",
        "pretty_name": "Debian GNU/Linux 12 (bookworm)",
    }


def test_rhel_family(tmp_path: Path) -> None:
    root = make_tree(tmp_path, {"/etc/os-release": CENTOS_OS_RELEASE})
    system = osinfo.operating_system(root)
    assert system["name"] == "RHEL" and system["version"] == "9"
    assert osinfo.distribution_name({"ID": "fedora", "NAME": "Fedora Linux"}) == "Fedora"
    assert osinfo.distribution_name({"ID": "arch", "NAME": "Arch Linux"}) == "Arch Linux"


def test_kernel_release_split() -> None:
    assert osinfo.split_kernel_release("6.1.0-18-amd64") == {
        "version": "6.1.0",
        "release": "18-amd64",
    }
    assert osinfo.split_kernel_release("5.14.0-362.el9.x86_64") == {
        "version": "5.14.0",
        "release": "362.el9.x86_64",
    }
    assert osinfo.is_realtime_kernel("#1 SMP PREEMPT_RT Tue Jan 1") is True
    assert osinfo.is_realtime_kernel("#1 SMP PREEMPT_DYNAMIC") is False


def test_host_features_from_files(tmp_path: Path) -> None:
    root = make_tree(
        tmp_path,
        {
            "/dev/kvm": "",
            "/dev/random": "",
            "/sys/fs/selinux/enforce": "1",
            "/proc/sys/crypto/fips_enabled": "1\n",
            "/sys/module/kvm_intel/parameters/nested": "Y\n",
            "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages": "0\n",
            "/sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages": "0\n",
            "/proc/cmdline": "BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro\n",
            "/sys/kernel/kexec_crash_loaded": "1\n",
            "/etc/kdump.conf": "path /var/crash\nfence_kdump_nodes engine.example.com\n",
            "/etc/iscsi/initiatorname.iscsi": "InitiatorName=iqn.1994-05.com.redhat:abc\n",
        },
    )
    assert osinfo.kvm_enabled(root)
    assert osinfo.selinux_mode(root) == "1"
    assert osinfo.fips_enabled(root)
    assert osinfo.nested_virtualization(root)
    assert osinfo.hugepage_sizes(root) == [2048, 1048576]
    assert osinfo.rng_sources(root) == ["random"]
    assert osinfo.kernel_args(root) == "BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro"
    assert osinfo.kdump_status(root) == 1
    assert osinfo.iscsi_initiator_name(root) == "iqn.1994-05.com.redhat:abc"


def test_bare_host_defaults(tmp_path: Path) -> None:
    root = str(tmp_path)
    assert not osinfo.kvm_enabled(root)
    assert osinfo.selinux_mode(root) == "-1"
    assert not osinfo.fips_enabled(root)
    assert not osinfo.nested_virtualization(root)
    assert osinfo.kdump_status(root) == -1
    assert osinfo.rng_sources(root) == []
    assert osinfo.operating_system(root)["name"] == "unknown"


def test_boot_uuid() -> None:
    runner = FakeRunner()
    runner.reply(("findmnt",), "4d8a6c2e-1f5b-4c1a-9a0e-2b6d7c8e9f00\n")
    assert osinfo.boot_uuid(runner, 5.0) == "4d8a6c2e-1f5b-4c1a-9a0e-2b6d7c8e9f00"
    assert runner.calls[0][1] == 5.0
    runner.reply(("findmnt",), "\n")
    assert osinfo.boot_uuid(runner, 5.0) is None
    runner.replies[("findmnt",)] = errors.CommandTimeout("findmnt hung")
    assert osinfo.boot_uuid(runner, 5.0) is None


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("1:7.2+dfsg-7+deb12u18+b3", ("7.2+dfsg", "7+deb12u18+b3")),
        ("9.0.0-4+deb12u2", ("9.0.0", "4+deb12u2")),
        ("0.15.1-1", ("0.15.1", "1")),
        ("3.8.2", ("3.8.2", "")),
    ],
)
def test_parse_deb_version(text: str, parsed: tuple[str, str]) -> None:
    assert packages.parse_deb_version(text) == parsed


DPKG_OUT = (
    "libvirt-daemon\t9.0.0-4+deb12u2\tii \n"
    "libvirt0\t9.0.0-4+deb12u2\tii \n"
    "qemu-system-x86\t1:7.2+dfsg-7+deb12u18+b3\tii \n"
    "qemu-utils\t1:7.2+dfsg-7+deb12u18+b3\tii \n"
    "sanlock\t3.8.5-2\trc \n"
)


def test_dpkg_query_skips_removed_packages() -> None:
    installed = packages.parse_dpkg_query(DPKG_OUT)
    assert installed["libvirt-daemon"] == ("9.0.0", "4+deb12u2")
    assert "sanlock" not in installed


def test_package_versions_on_debian(tmp_path: Path) -> None:
    root = make_tree(tmp_path, {"/var/lib/dpkg/status": ""})
    runner = FakeRunner({("dpkg-query",): result(("dpkg-query",), DPKG_OUT, rc=1)})
    found = packages.package_versions(
        runner,
        7.0,
        own_name="virthost",
        own_version="0.1.0",
        libvirt_version="9.0.0",
        qemu_version="7.2.22",
        root=root,
    )
    assert found["qemu-kvm"] == {"version": "7.2.22", "release": "7+deb12u18+b3"}
    assert found["qemu-img"] == {"version": "7.2+dfsg", "release": "7+deb12u18+b3"}
    assert found["libvirt"] == {"version": "9.0.0", "release": "4+deb12u2"}
    assert found["virthost"] == {"version": "0.1.0", "release": ""}
    assert "kernel" in found and "sanlock" not in found
    argv, timeout, check = runner.calls[0]
    assert timeout == 7.0 and check is False and "qemu-system-x86" in argv


def test_package_versions_on_rpm_host(tmp_path: Path) -> None:
    root = make_tree(tmp_path, {"/var/lib/rpm/rpmdb.sqlite": ""})
    rpm_out = (
        "qemu-kvm\t8.2.0\t11.el9\n"
        "package qemu-img is not installed\n"
        "libvirt-daemon-kvm\t10.0.0\t6.el9\n"
        "sanlock\t3.9.1\t1.el9\n"
    )
    runner = FakeRunner({("rpm",): result(("rpm",), rpm_out, rc=1)})
    found = packages.package_versions(runner, 5.0, own_name="virthost", own_version="1", root=root)
    assert found["qemu-kvm"] == {"version": "8.2.0", "release": "11.el9"}
    assert found["libvirt"] == {"version": "10.0.0", "release": "6.el9"}
    assert found["sanlock"] == {"version": "3.9.1", "release": "1.el9"}
    assert "qemu-img" not in found


def test_package_manager_failure_still_reports_api_versions(tmp_path: Path) -> None:
    root = make_tree(tmp_path, {"/var/lib/dpkg/status": ""})
    runner = FakeRunner({("dpkg-query",): errors.CommandTimeout("dpkg-query hung")})
    found = packages.package_versions(
        runner, 5.0, own_name="virthost", own_version="1", libvirt_version="9.0.0", root=root
    )
    assert found["libvirt"] == {"version": "9.0.0", "release": ""}
    assert "qemu-kvm" not in found
