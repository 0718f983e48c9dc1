"""Shared by the benchmarks: the real daemon and supervisor as processes, and /proc figures.

The daemon is started by the same fixtures the integration tests use (tests/fixtures/daemon.py),
so a benchmark runs exactly what the tests run; what a benchmark changes is the configuration
(quiet logging, production-like periods), given as overrides.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

TESTS = Path(__file__).resolve().parent.parent / "tests"
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from fixtures import daemon as fixtures  # noqa: E402
from virthost.client import Client, connect  # noqa: E402
from virthost.client.api_client import SchemaLike  # noqa: E402
from virthost.common.pki import PkiPaths  # noqa: E402

Services = fixtures.Services
make_workdir = fixtures.make_workdir
make_pki = fixtures.make_pki
cleanup = fixtures.cleanup

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def quiet_config(**sections: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Overrides for a measured daemon: no debug logging, host sampling and health lines at
    their production periods, then ``sections`` on top."""
    config: dict[str, dict[str, Any]] = {
        "daemon": {"log_level": "WARNING", "health_interval": 3600.0},
        "sampling": {"host_stats_interval": 15.0},
    }
    for name, values in sections.items():
        config.setdefault(name, {}).update(values)
    return config


def start(
    pki: PkiPaths, overrides: dict[str, dict[str, Any]], prefix: str = "virthost-bench-"
) -> fixtures.Services:
    """Supervisor and daemon running (the daemon answering, recovery done) in a new workdir."""
    services = fixtures.prepare(fixtures.make_workdir(prefix), pki, overrides=overrides)
    try:
        services.start_supervisor()
        services.start_daemon()
    except BaseException:
        fixtures.cleanup(services)
        raise
    return services


def client(services: fixtures.Services, schema: SchemaLike, timeout: float = 120.0) -> Client:
    """A client with an already loaded schema, so connecting costs only the TLS handshake."""
    pki = services.pki
    return connect(
        "127.0.0.1",
        services.port,
        ca_file=pki.ca_cert,
        cert_file=pki.cert("client"),
        key_file=pki.key("client"),
        timeout=timeout,
        schema=schema,
    )


def daemon_pid(services: fixtures.Services) -> int:
    if services.daemon is None:
        raise RuntimeError("the daemon is not running")
    return services.daemon.pid


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of process ``pid`` (all its threads), in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    # after "pid (comm)": state is field 3, utime and stime are fields 14 and 15
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_mib(pid: int) -> float:
    """Resident set size of process ``pid`` in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def percentile(values: list[float], fraction: float) -> float:
    """The value below which ``fraction`` of ``values`` lie (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2
