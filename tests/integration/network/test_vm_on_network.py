"""A VM's NIC on a bridge made by Host.setupNetworks reaches the host through it.

libvirt and QEMU live in the machine's own network namespace, so here the daemon plays the
host there too; the network's nic is one end of a veth pair made for the test (the other end
sits in a private namespace), and the bridge gets a name of its own, so nothing that existed
before is touched. The guest (the tiny test guest, with a static address on the bridge's
subnet) connects to a TCP port the test listens on at the bridge's address.
"""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest

from fixtures import daemon as daemon_fixtures
from guest import image
from virthost.common.pki import PkiPaths

from ..virt.vmhelpers import guest_exec, simple_params, stats, status, wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for links and qemu:///system"),
]

SUFFIX = uuid.uuid4().hex[:5]
NIC = f"vtn{SUFFIX}"
PEER_NS = f"vtpeer-{SUFFIX}"
NETWORK = f"vmnet{SUFFIX}"
HOST_IP, GUEST_IP = "10.241.7.1", "10.241.7.2"


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def nic() -> Iterator[str]:
    ip("netns", "add", PEER_NS)
    try:
        ip("link", "add", NIC, "type", "veth", "peer", "name", "peer0", "netns", PEER_NS)
        ip("link", "set", NIC, "up")
        yield NIC
    finally:
        subprocess.run(["ip", "link", "del", NIC], capture_output=True)
        subprocess.run(["ip", "link", "del", NETWORK], capture_output=True)
        subprocess.run(["ip", "netns", "del", PEER_NS], capture_output=True)


@pytest.fixture(scope="module")
def services(pki: PkiPaths, nic: str) -> Iterator[daemon_fixtures.Services]:
    running = daemon_fixtures.start_services(
        pki, overrides={"virt": {"domain_type": "qemu", "qga_polling_period": 1.0}}
    )
    try:
        yield running
    finally:
        with running.client() as cli:  # leave the host as it was
            cli.Host.setupNetworks(
                networks={NETWORK: {"remove": True}},
                bondings={},
                options={"connectivityCheck": False, "commitOnSuccess": True},
            )
        daemon_fixtures.cleanup(running)


def test_a_guest_on_the_new_bridge_reaches_the_host(
    services: daemon_fixtures.Services, nic: str
) -> None:
    with services.client() as cli:
        cli.Host.setupNetworks(
            networks={NETWORK: {"nic": nic, "ipaddr": HOST_IP, "prefix": 24}},
            bondings={},
            options={"connectivityCheck": False},
        )
        assert cli.Host.getNetworkCapabilities()["networks"][NETWORK]["ports"] == [nic]

    listener = socket.create_server((HOST_IP, 0))
    port = listener.getsockname()[1]
    received: list[bytes] = []

    def accept() -> None:
        listener.settimeout(120)
        try:
            conn, _ = listener.accept()
            with conn:
                received.append(conn.recv(64))
        except OSError:
            pass

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    guest = image.ensure_guest()
    logs = Path(tempfile.mkdtemp(prefix="virthost-netvm-", dir="/tmp"))
    logs.chmod(0o777)
    vm_id = str(uuid.uuid4())
    params = simple_params(
        vm_id,
        guest,
        logs,
        nics=[{"bridge": NETWORK}],
        kernelArgs=f"console=ttyS0 quiet tinyvm.ip={GUEST_IP}/24",
    )
    with services.client() as cli:
        cli.VM.create(vmID=vm_id, vmParams=params)
        try:
            wait_for(lambda: status(cli, vm_id) == "Up", 180, "Up")
            wait_for(lambda: stats(cli, vm_id).get("guestAgentConnected"), 180, "agent")
            conn = libvirt.open("qemu:///system")
            try:
                dom = conn.lookupByUUIDString(vm_id)
                code, out = guest_exec(
                    dom, "/bin/sh", "-c", f"echo from-guest | nc -w 5 {HOST_IP} {port}", timeout=60
                )
            finally:
                conn.close()
            acceptor.join(30)
            assert received and received[0].startswith(b"from-guest"), (code, out)
        finally:
            cli.VM.destroy(vmID=vm_id)
            listener.close()
