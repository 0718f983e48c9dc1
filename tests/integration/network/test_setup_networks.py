"""Host.setupNetworks through the real daemon and supervisor, in a namespace playing the host.

The namespace has veth nics: ``nic0`` carries the client's path to the daemon (its peer is in
the test's namespace), ``nic1`` and ``nic2`` are free for networks (their peers are in the
test's namespace too, with addresses on the networks' subnets, so the test can reach what the
networks get). The supervisor and the daemon run inside the namespace (``ip netns exec``), the
client outside, as an engine would.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fixtures import daemon as daemon_fixtures
from fixtures.polling import wait_for
from virthost.client import errors as client_errors
from virthost.common.pki import PkiPaths

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
]

SUFFIX = uuid.uuid4().hex[:5]
NS = f"vhost-{SUFFIX}"
HOST_ADDR = "10.231.0.2"
NETNS_ETC = Path("/etc/netns") / NS
TOOL = str(Path(sys.executable).parent / "virthost-tool")
NET1 = {"nic": "nic1", "ipaddr": "10.232.0.2", "netmask": "255.255.255.0"}


def ip(*args: str, check: bool = True) -> str:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr}")
    return done.stdout


def ns_links() -> dict[str, dict[str, Any]]:
    return {link["ifname"]: link for link in json.loads(ip("-n", NS, "-j", "link", "show"))}


def ns_addrs(device: str) -> list[str]:
    out = json.loads(ip("-n", NS, "-j", "addr", "show", "dev", device))
    return [f"{a['local']}/{a['prefixlen']}" for a in out[0]["addr_info"] if a["scope"] == "global"]


@pytest.fixture(scope="module")
def nethost() -> Iterator[None]:
    ip("netns", "add", NS)
    # ip netns exec puts this file over /etc/resolv.conf for the namespace's processes.
    NETNS_ETC.mkdir(parents=True, exist_ok=True)
    (NETNS_ETC / "resolv.conf").write_text("nameserver 127.0.0.1\n")
    try:
        ip("-n", NS, "link", "set", "lo", "up")
        for n, subnet in ((0, "10.231.0"), (1, "10.232.0"), (2, "10.234.0")):
            outside = f"vh{n}-{SUFFIX}"
            ip("link", "add", outside, "type", "veth", "peer", "name", f"nic{n}", "netns", NS)
            ip("addr", "add", f"{subnet}.1/24", "dev", outside)
            ip("link", "set", outside, "up")
            ip("-n", NS, "link", "set", f"nic{n}", "up")
        ip("-n", NS, "addr", "add", f"{HOST_ADDR}/24", "dev", "nic0")
        yield
    finally:
        for n in range(3):
            ip("link", "del", f"vh{n}-{SUFFIX}", check=False)
        ip("netns", "del", NS, check=False)
        shutil.rmtree(NETNS_ETC, ignore_errors=True)


@pytest.fixture(scope="module")
def services(pki: PkiPaths, nethost: None) -> Iterator[daemon_fixtures.Services]:
    workdir = daemon_fixtures.make_workdir()
    running = daemon_fixtures.prepare(workdir, pki, overrides={"rpc": {"address": "0.0.0.0"}})
    running.host = HOST_ADDR
    running.command_prefix = ("ip", "netns", "exec", NS)
    try:
        running.start_supervisor()
        running.start_daemon()
        yield running
    finally:
        daemon_fixtures.cleanup(running)


def setup_confirmed(
    services: daemon_fixtures.Services, networks: dict[str, Any], **options: Any
) -> None:
    """setupNetworks on one connection while another keeps confirming, as an engine does."""
    result: dict[str, Any] = {}

    def call() -> None:
        try:
            with services.client() as cli:
                cli.Host.setupNetworks(
                    networks=networks,
                    bondings={},
                    options={"connectivityTimeout": 20, **options},
                )
        except Exception as e:
            result["error"] = e

    worker = threading.Thread(target=call)
    worker.start()
    with services.client() as cli:
        while worker.is_alive():
            cli.Host.confirmConnectivity()
            worker.join(0.3)
    if "error" in result:
        raise result["error"]


def reachable(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=2):
            return True
    except OSError:
        return False


def test_bridged_network_static_addresses_mtu_and_removal(
    services: daemon_fixtures.Services,
) -> None:
    network = {**NET1, "mtu": 1400, "ipv6addr": "fd00:232::2/64", "bridged": "true"}
    setup_confirmed(services, {"vmnet": network})
    links = ns_links()
    assert links["vmnet"]["mtu"] == 1400 and links["nic1"]["master"] == "vmnet"
    assert sorted(ns_addrs("vmnet")) == ["10.232.0.2/24", "fd00:232::2/64"]
    assert reachable("10.232.0.2", services.port)  # the daemon answers over the new bridge
    with services.client() as cli:
        caps = cli.Host.getNetworkCapabilities()
        assert caps["networks"]["vmnet"]["bridged"] is True
        assert caps["networks"]["vmnet"]["ports"] == ["nic1"]
        assert caps["netConfigDirty"] == "True"
        cli.Host.setSafeNetworkConfig()
        assert cli.Host.getNetworkCapabilities()["netConfigDirty"] == "False"

    setup_confirmed(services, {"vmnet": {**network, "mtu": 9000}})
    assert ns_links()["vmnet"]["mtu"] == 9000

    setup_confirmed(services, {"vmnet": {"remove": True}}, commitOnSuccess=True)
    links = ns_links()
    assert "vmnet" not in links and "master" not in links["nic1"]
    with services.client() as cli:
        caps = cli.Host.getNetworkCapabilities()
        assert caps["networks"] == {} and caps["netConfigDirty"] == "False"


def test_bad_requests_get_coded_errors(services: daemon_fixtures.Services) -> None:
    bad = [
        ({"net": {**NET1, "nic": "nic9"}}, 23),
        ({"net": {**NET1, "netmask": "255.0.255.0"}}, 22),
        ({"a": {**NET1, "defaultRoute": True}, "b": {"nic": "nic2", "defaultRoute": True}}, 21),
        ({"a": NET1, "b": {"nic": "nic1"}}, 24),
    ]
    with services.client() as cli:
        for networks, code in bad:
            with pytest.raises(client_errors.ServerError) as refused:
                cli.Host.setupNetworks(networks=networks, bondings={}, options={})
            assert refused.value.code == code, (networks, refused.value)
    assert "net" not in ns_links() and "a" not in ns_links()


def test_a_change_that_cuts_the_client_off_is_rolled_back(
    services: daemon_fixtures.Services,
) -> None:
    """nic0 carries the client's path; bridging it under another address cuts it."""
    before = ns_addrs("nic0")
    cutting = {"mgmt": {"nic": "nic0", "ipaddr": "10.233.0.2", "netmask": "255.255.255.0"}}
    with services.client(timeout=120) as cli, pytest.raises(client_errors.ServerError) as lost:
        cli.Host.setupNetworks(networks=cutting, bondings={}, options={"connectivityTimeout": 5})
    assert lost.value.code == 10
    assert "no client confirmed connectivity" in str(lost.value)  # not an apply error
    links = ns_links()
    assert "mgmt" not in links and "master" not in links["nic0"]
    assert ns_addrs("nic0") == before
    with services.client() as cli:
        cli.Host.ping2()  # the host is reachable again, as before
        assert "mgmt" not in cli.Host.getNetworkCapabilities()["networks"]


def test_safe_configuration_survives_a_restart_unsafe_changes_do_not(
    services: daemon_fixtures.Services,
) -> None:
    setup_confirmed(services, {"keep": NET1}, commitOnSuccess=True)
    setup_confirmed(services, {"temp": {"nic": "nic2", "bridged": False, "mtu": 1300}})
    assert ns_links()["nic2"]["mtu"] == 1300
    services.stop_daemon()
    services.start_daemon()
    links = ns_links()
    assert "keep" in links and links["nic1"]["master"] == "keep"
    assert links["nic2"]["mtu"] == 1500  # the unconfirmed-safe change was undone
    with services.client() as cli:
        caps = cli.Host.getNetworkCapabilities()
        assert set(caps["networks"]) == {"keep"} and caps["netConfigDirty"] == "False"
    # a host that lost its bridge (a reboot) gets it back from the safe configuration, from
    # the daemon when it starts, or from virthost-tool before that
    ip("-n", NS, "link", "del", "keep")
    services.stop_daemon()
    services.start_daemon()
    assert ns_links()["nic1"]["master"] == "keep"
    services.stop_daemon()
    ip("-n", NS, "link", "del", "keep")
    tool = [*services.command_prefix, TOOL, "-c", str(services.config_path), "restore-nets"]
    done = subprocess.run(tool, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert ns_links()["nic1"]["master"] == "keep"
    services.start_daemon()
    setup_confirmed(services, {"keep": {"remove": True}}, commitOnSuccess=True)


def test_kill9_during_a_change_restores_the_previous_configuration_at_start(
    services: daemon_fixtures.Services,
) -> None:
    def call() -> None:
        try:
            with services.client(timeout=120) as cli:
                cli.Host.setupNetworks(
                    networks={"crash": {"nic": "nic2", "ipaddr": "10.234.0.2", "prefix": 24}},
                    bondings={},
                    options={"connectivityTimeout": 60},
                )
        except Exception:
            pass  # the daemon dies under this call

    worker = threading.Thread(target=call, daemon=True)
    worker.start()
    wait_for(lambda: "crash" in ns_links(), what="the bridge applied")
    services.stop_daemon(signal.SIGKILL)  # while it waits for the client's confirmation
    worker.join(30)
    assert "crash" in ns_links()
    services.start_daemon()
    links = ns_links()
    assert "crash" not in links and "master" not in links["nic2"]
    with services.client() as cli:
        assert cli.Host.getNetworkCapabilities()["networks"] == {}


def test_default_route_nameservers_and_ipv6_autoconf(services: daemon_fixtures.Services) -> None:
    network = {
        "nic": "nic2",
        "ipaddr": "10.234.0.2",
        "prefix": 24,
        "gateway": "10.234.0.1",
        "defaultRoute": True,
        "nameservers": ["10.234.0.53"],
        "ipv6autoconf": False,
    }
    setup_confirmed(services, {"uplink": network})
    routes = json.loads(ip("-n", NS, "-j", "route", "show", "default"))
    assert [(r["gateway"], r["dev"]) for r in routes] == [("10.234.0.1", "uplink")]
    resolv = (NETNS_ETC / "resolv.conf").read_text()
    assert "nameserver 10.234.0.53" in resolv
    autoconf = ["ip", "netns", "exec", NS, "cat", "/proc/sys/net/ipv6/conf/uplink/autoconf"]
    assert subprocess.run(autoconf, capture_output=True, text=True).stdout.strip() == "0"
    with services.client() as cli:
        caps = cli.Host.getNetworkCapabilities()
        assert caps["networks"]["uplink"]["ipv4defaultroute"] is True
        assert caps["networks"]["uplink"]["gateway"] == "10.234.0.1"
    setup_confirmed(services, {"uplink": {"remove": True}})
    assert json.loads(ip("-n", NS, "-j", "route", "show", "default")) == []
