"""Shared fixtures: certificates and a running daemon with its supervisor."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from fixtures import daemon as daemon_fixtures
from virthost.common.pki import PkiPaths

# CI must be reproducible: there, property-based tests run a fixed sequence of examples;
# developers' runs explore new ones each time.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="session", autouse=True)
def libvirt_running() -> None:
    """virtlogd and libvirtd (under tini) are started when not running, as `make test` does."""
    if os.geteuid() != 0:
        return
    probe = subprocess.run(
        ["virsh", "-c", "qemu:///system", "version"], capture_output=True, timeout=60
    )
    if probe.returncode != 0:
        subprocess.run(["bash", str(ROOT / "scripts" / "start-libvirt.sh")], check=True)


@pytest.fixture(scope="session")
def pki_root() -> Iterator[Path]:
    root = daemon_fixtures.make_workdir("virthost-pki-")
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pki(pki_root: Path) -> PkiPaths:
    return daemon_fixtures.make_pki(pki_root)


@pytest.fixture(scope="module")
def services(pki: PkiPaths) -> Iterator[daemon_fixtures.Services]:
    """virthostd (mutual TLS) and virthost-supervisor, shared by a test module."""
    running = daemon_fixtures.start_services(pki)
    yield running
    daemon_fixtures.cleanup(running)
