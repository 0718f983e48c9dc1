"""A hung dependency (the supervisor, libvirtd) costs its callers a time-boxed error, and
nobody else anything: other calls keep being answered meanwhile."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fixtures import daemon as daemon_fixtures
from virthost.client import errors as client_errors
from virthost.common.pki import PkiPaths

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def services(pki: PkiPaths) -> Iterator[daemon_fixtures.Services]:
    running = daemon_fixtures.start_services(
        pki, overrides={"supervisor": {"timeout": 2.0}, "libvirt": {"timeout": 3.0}}
    )
    yield running
    daemon_fixtures.cleanup(running)


def _call_in_background(
    services: daemon_fixtures.Services, method: str
) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def run() -> None:
        with services.client() as cli:
            try:
                outcome["result"] = cli.call(method)
            except client_errors.ServerError as e:
                outcome["error"] = e

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def _others_are_served(services: daemon_fixtures.Services) -> None:
    with services.client() as cli:
        for _ in range(20):
            assert cli.Host.ping2() is True
        assert "cpuIdle" in cli.Host.getStats()
        assert cli.Host.echo(message="still here") == "still here"


def test_hung_supervisor(services: daemon_fixtures.Services) -> None:
    assert services.supervisor is not None
    pid = services.supervisor.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        thread, outcome = _call_in_background(services, "Host.getHardwareInfo")
        _others_are_served(services)
        thread.join(30)
        assert "timed out" in str(outcome["error"])
    finally:
        os.kill(pid, signal.SIGCONT)
    with services.client() as cli:
        try:
            cli.Host.getHardwareInfo()
        except client_errors.ServerError as e:
            assert e.code == 57  # answered again: no DMI on this machine


def test_hung_libvirtd(services: daemon_fixtures.Services) -> None:
    pid = int(Path("/run/libvirtd.pid").read_text())
    with services.client() as cli:
        cli.Host.getCapabilities()  # the connection is open before libvirtd hangs
    os.kill(pid, signal.SIGSTOP)
    try:
        thread, outcome = _call_in_background(services, "Host.getCapabilities")
        _others_are_served(services)
        thread.join(30)
        assert "did not finish within 3 s" in str(outcome["error"])
    finally:
        os.kill(pid, signal.SIGCONT)
    with services.client() as cli:
        assert cli.Host.getCapabilities()["uuid"]
