"""Host verbs end to end: the Python client over mutual TLS to the real daemon."""

from __future__ import annotations

import os
import time
import uuid

import pytest

from fixtures.daemon import Services
from virthost.client import errors as client_errors

pytestmark = pytest.mark.integration


def test_ping_and_echo(services: Services) -> None:
    with services.client() as cli:
        assert cli.Host.ping2() is True
        assert cli.Host.ping() is True
        assert cli.Host.confirmConnectivity() is True
        assert cli.Host.echo(message="hello") == "hello"


def test_capabilities_are_this_hosts(services: Services) -> None:
    with services.client() as cli:
        caps = cli.Host.getCapabilities()
    assert int(caps["cpuCores"]) * int(caps["cpuSockets"]) >= 1
    assert int(caps["cpuThreads"]) == os.cpu_count()
    with open("/proc/cpuinfo") as f:
        model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    assert caps["cpuModel"] == model
    assert caps["kvmEnabled"] == ("true" if os.path.exists("/dev/kvm") else "false")
    assert any(m.startswith("pc") for m in caps["emulatedMachines"])
    assert caps["operatingSystem"]["name"]
    assert caps["packages2"]["kernel"]["version"] == os.uname().release.split("-")[0]
    assert caps["packages2"]["libvirt"]["version"]
    assert str(uuid.UUID(caps["uuid"])) == caps["uuid"]
    assert int(caps["memSize"]) > 0
    assert "lo" not in caps["nics"]
    assert caps["lastClientIface"] == "lo"  # the test client connects to 127.0.0.1


def test_host_id_is_stable_across_calls(services: Services) -> None:
    stored = (services.workdir / "lib" / "host.id").read_text().strip()
    with services.client() as cli:
        assert cli.Host.getCapabilities()["uuid"] == stored


def test_stats_change_between_calls(services: Services) -> None:
    with services.client() as cli:
        first = cli.Host.getStats()
        time.sleep(1.2)  # the test daemon samples every 0.5 s
        second = cli.Host.getStats()
    for key in ("cpuUser", "cpuSys", "cpuIdle", "memFree", "memUsed", "network", "bootTime"):
        assert key in first, key
    assert float(second["elapsedTime"]) > float(first["elapsedTime"])
    assert second["dateTime"] >= first["dateTime"]
    assert first["network"]
    assert set(first["cpuStatistics"]) == {str(c) for c in range(os.cpu_count() or 1)}


def test_network_inventory_and_statistics(services: Services) -> None:
    with services.client() as cli:
        caps = cli.Host.getNetworkCapabilities()
        stats = cli.Host.getNetworkStatistics()
    for key in ("nics", "bridges", "vlans", "bondings", "networks", "nameservers"):
        assert key in caps
    assert stats["network"]
    with open("/proc/net/dev") as f:
        kernel_names = {line.split(":")[0].strip() for line in f if ":" in line}
    assert set(stats["network"]) <= kernel_names
    assert all(int(entry["rx"]) >= 0 for entry in stats["network"].values())


def test_hardware_info_goes_through_the_supervisor(services: Services) -> None:
    with services.client() as cli:
        try:
            info = cli.Host.getHardwareInfo()
        except client_errors.ServerError as e:
            assert e.code == 57  # no SMBIOS/DMI on this machine: the proper error
        else:
            assert "systemManufacturer" in info
    assert "hardware_info" in services.supervisor_log.read_text()


def test_set_log_level_at_run_time(services: Services) -> None:
    with services.client() as cli:
        cli.Host.setLogLevel(level="DEBUG", name="virthost.jsonrpc")
        with cli.flow("flow-log-check"):
            cli.Host.ping2()
        cli.Host.setLogLevel(level="INFO", name="virthost.jsonrpc")
        with pytest.raises(client_errors.ServerError) as bad:
            cli.Host.setLogLevel(level="CHATTY")
    assert bad.value.code == -32602
    log = services.log_text()
    assert "verb=Host.ping2 flow_id=flow-log-check START Host.ping2" in log


def test_flow_id_and_thread_are_logged(services: Services) -> None:
    with services.client() as cli, cli.flow("flow-caps-1"):
        cli.Host.getNetworkStatistics()
    lines = [ln for ln in services.log_text().splitlines() if "flow_id=flow-caps-1" in ln]
    assert lines
    assert all("(jsonrpc/" in ln and "verb=Host.getNetworkStatistics" in ln for ln in lines)


def test_unimplemented_verb_answers_44(services: Services) -> None:
    with services.client() as cli, pytest.raises(client_errors.ServerError) as e:
        cli.Host.getExternalVMNames(uri="xen+ssh://x", username="u", password="p")
    assert e.value.code == 44


def test_bad_parameters_are_refused_with_their_name(services: Services) -> None:
    with services.client() as cli:
        with pytest.raises(client_errors.ServerError) as e:
            cli.call("VM.getStats", {"vmID": "not-a-uuid"})
        assert e.value.code == -32602 and "vmID" in str(e.value)
        with pytest.raises(client_errors.ServerError) as missing:
            cli.call("Host.echo", {})
        assert missing.value.code == -32602 and "message" in str(missing.value)
        with pytest.raises(client_errors.ServerError) as unknown:
            cli.call("Host.echo", {"message": "x", "extra": 1})
        assert unknown.value.code == -32602 and "extra" in str(unknown.value)


def test_metrics_count_connections(services: Services) -> None:
    import http.client

    ctx = services.client_ssl()
    conn = http.client.HTTPSConnection("127.0.0.1", services.port, context=ctx, timeout=10)
    conn.request("GET", "/metrics")
    body = conn.getresponse().read().decode()
    conn.close()
    figures = dict(line.split() for line in body.splitlines())
    assert float(figures["virthost_connections"]) >= 1
    assert float(figures["virthost_ready"]) == 1
