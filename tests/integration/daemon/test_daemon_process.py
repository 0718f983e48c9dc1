"""The daemon as a process: privilege drop, health line, graceful stop, bad configuration."""

from __future__ import annotations

import pwd
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures import daemon as daemon_fixtures
from virthost.common.pki import PkiPaths

pytestmark = pytest.mark.integration


@pytest.fixture
def fresh(pki: PkiPaths) -> Iterator[daemon_fixtures.Services]:
    running = daemon_fixtures.start_services(pki)
    yield running
    daemon_fixtures.cleanup(running)


def _status_ids(pid: int) -> tuple[int, list[int]]:
    uid, groups = -1, []
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            uid = int(line.split()[1])
        elif line.startswith("Groups:"):
            groups = [int(g) for g in line.split()[1:]]
    return uid, groups


@pytest.mark.skipif(not daemon_fixtures.service_user(), reason="needs root and the virthost user")
def test_daemon_drops_to_the_service_user(fresh: daemon_fixtures.Services) -> None:
    assert fresh.daemon is not None and fresh.supervisor is not None
    entry = pwd.getpwnam("virthost")
    uid, groups = _status_ids(fresh.daemon.pid)
    assert uid == entry.pw_uid
    import grp

    assert {grp.getgrnam("kvm").gr_gid, grp.getgrnam("libvirt").gr_gid} <= set(groups)
    assert _status_ids(fresh.supervisor.pid)[0] == 0
    state = fresh.workdir / "lib"
    assert state.stat().st_uid == entry.pw_uid


def test_health_line_is_logged(fresh: daemon_fixtures.Services) -> None:
    deadline = time.monotonic() + 15
    while "health: rss_mib=" not in fresh.log_text():
        assert time.monotonic() < deadline, fresh.log_text()
        time.sleep(0.2)
    line = next(ln for ln in fresh.log_text().splitlines() if "health: rss_mib=" in ln)
    for figure in ("threads=", "cpu_percent=", "connections="):
        assert figure in line


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_graceful_stop(fresh: daemon_fixtures.Services, sig: int) -> None:
    conn = fresh.raw()
    conn.connect()
    assert fresh.stop_daemon(sig) == 0
    assert conn.is_closed_by_peer(timeout=5)
    conn.close()
    log = fresh.log_text()
    assert f"received {signal.Signals(sig).name}" in log
    assert "stopped" in log


def test_restart_keeps_the_host_id(fresh: daemon_fixtures.Services) -> None:
    with fresh.client() as cli:
        before = cli.Host.getCapabilities()["uuid"]
    fresh.stop_daemon()
    fresh.start_daemon()
    with fresh.client() as cli:
        assert cli.Host.getCapabilities()["uuid"] == before


def test_bad_configuration_exits_with_a_message(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[rpc]\nport = 'many'\n")
    result = subprocess.run(
        [str(Path(sys.executable).parent / "virthostd"), "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "[rpc] port: expected int" in result.stderr


def test_missing_certificates_exit_with_a_message(tmp_path: Path, pki: PkiPaths) -> None:
    workdir = daemon_fixtures.make_workdir()
    try:
        services = daemon_fixtures.prepare(
            workdir, pki, overrides={"pki": {"cert_file": str(tmp_path / "absent.pem")}}
        )
        result = subprocess.run(
            [str(Path(sys.executable).parent / "virthostd"), "-c", str(services.config_path)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 2
        assert "cannot load the TLS certificates" in result.stderr
    finally:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)


def test_port_in_use_fails_cleanly(fresh: daemon_fixtures.Services) -> None:
    second = daemon_fixtures.prepare(daemon_fixtures.make_workdir(), fresh.pki)
    try:
        second.config_path.write_text(
            second.config_path.read_text().replace(f"port = {second.port}", f"port = {fresh.port}")
        )
        second.start_daemon(wait=False)
        assert second.daemon is not None
        assert second.daemon.wait(30) == 1
        assert "cannot start" in second.log_text()
    finally:
        daemon_fixtures.cleanup(second)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_supervisor_stops_on_signal(fresh: daemon_fixtures.Services, sig: int) -> None:
    proc = fresh.supervisor
    assert proc is not None
    proc.send_signal(sig)
    assert proc.wait(10) == 0
    assert not fresh.supervisor_socket.exists()
