"""While the daemon cannot recover its VMs yet (libvirtd hangs), calls answer 99."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures import daemon as daemon_fixtures
from virthost.client import errors as client_errors
from virthost.common.pki import PkiPaths

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to stop libvirtd"),
]


@pytest.fixture
def services(pki: PkiPaths) -> Iterator[daemon_fixtures.Services]:
    workdir = daemon_fixtures.make_workdir()
    running = daemon_fixtures.prepare(
        workdir, pki, overrides={"libvirt": {"timeout": 2.0}, "virt": {"domain_type": "qemu"}}
    )
    running.start_supervisor()
    yield running
    daemon_fixtures.cleanup(running)


def test_calls_answer_99_until_recovered(services: daemon_fixtures.Services) -> None:
    pid = int(Path("/run/libvirtd.pid").read_text())
    os.kill(pid, signal.SIGSTOP)
    try:
        services.start_daemon(wait=False)
        deadline = time.monotonic() + 60
        while True:
            try:
                with services.client(timeout=5) as cli:
                    assert cli.Host.ping2() is True  # liveness always answers
                    with pytest.raises(client_errors.ServerError) as recovering:
                        cli.Host.getVMList()
                    break
            except (client_errors.ConnectionError, OSError):
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert recovering.value.code == 99
    finally:
        os.kill(pid, signal.SIGCONT)
    services.wait_ready()
    with services.client() as cli:
        assert isinstance(cli.Host.getVMList(), list)
