"""virthost-client as a user runs it, against the real daemon."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fixtures.daemon import Services

pytestmark = pytest.mark.integration

CLIENT = str(Path(sys.executable).parent / "virthost-client")


def run(
    services: Services, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLIENT, "-a", "127.0.0.1", "-p", str(services.port), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=services.cli_env(),
        input=stdin,
    )


def test_get_capabilities_prints_json(services: Services) -> None:
    result = run(services, "Host", "getCapabilities")
    assert result.returncode == 0, result.stderr
    caps = json.loads(result.stdout)
    assert caps["uuid"] and caps["cpuModel"]


def test_typed_values_and_flow_id(services: Services) -> None:
    result = run(services, "--flow-id", "cli-flow-9", "Host", "echo", "message=hi there")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == "hi there"
    assert "flow_id=cli-flow-9" in services.log_text()


def test_params_from_a_file_on_stdin(services: Services) -> None:
    result = run(services, "-f", "-", "Host", "echo", stdin='{"message": "from stdin"}')
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == "from stdin"


def test_server_error_is_one_line_and_exit_1(services: Services) -> None:
    result = run(
        services, "Host", "getExternalVMNames", "uri=xen+ssh://x", "username=u", "password=p"
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "virthost-client: error 44: Method not implemented: Host.getExternalVMNames"
    ]


def test_verb_help_lists_parameters(services: Services) -> None:
    result = run(services, "VM", "create", "-h")
    assert result.returncode == 0
    assert "vmID" in result.stdout and "vmParams" in result.stdout


def test_bad_certificate_directory_fails_cleanly(services: Services, tmp_path: Path) -> None:
    result = subprocess.run(
        [CLIENT, "-p", str(services.port), "--pki-dir", str(tmp_path), "Host", "ping2"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("virthost-client: ")


def test_events_are_followed(services: Services) -> None:
    follower = subprocess.Popen(
        [CLIENT, "-a", "127.0.0.1", "-p", str(services.port), "--events"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=services.cli_env(),
    )
    try:
        event = {"jsonrpc": "2.0", "method": "|test|ping|cli", "params": {"notify_time": 7}}
        deadline = time.monotonic() + 20
        conn = services.raw()
        conn.connect()
        conn.subscribe("jms.queue.events")  # so a SEND always has a subscriber
        line = ""
        # the follower subscribes asynchronously: send until it reports the event
        import select

        while not line and time.monotonic() < deadline:
            conn.send("SEND", {"destination": "jms.queue.events"}, json.dumps(event).encode())
            ready, _, _ = select.select([follower.stdout], [], [], 0.5)
            if ready:
                assert follower.stdout is not None
                line = follower.stdout.readline()
        conn.close()
        assert json.loads(line) == {"method": "|test|ping|cli", "params": {"notify_time": 7}}
    finally:
        follower.terminate()
        follower.wait(10)
