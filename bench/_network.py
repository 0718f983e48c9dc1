"""Helpers of the network benchmark: the namespaces playing a host, the plain pyroute2 baseline,
a look at what the kernel holds, and the daemon's log lines that time its phases.

The host namespace has ``nic0`` (its peer in this process's namespace: the client's path to the
daemon) and ``nic1`` .. ``nicN``, veth nics whose peers sit in a second namespace, so every
bridge gets a nic with a carrier and nothing of the machine's own network is touched.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pyroute2 import NetNS  # type: ignore[import-untyped]

# Subnets no test uses (they take 10.231-10.234): the client's path, then one /24 a network.
MGMT_SUBNET = "10.197.0"
NETWORK_SUBNET = "10.198"
HOST_ADDR = f"{MGMT_SUBNET}.2"
LOG_TIME_FORMAT = "%Y-%m-%d %H:%M:%S,%f"  # logging's asctime, as the daemon writes it


def ip(*args: str, check: bool = True, stdin: str | None = None) -> str:
    done = subprocess.run(["ip", *args], input=stdin, capture_output=True, text=True, timeout=60)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


@dataclass(frozen=True)
class BridgedNet:
    """One benchmark network: a bridge over its own nic, with a static IPv4 address."""

    name: str
    nic: str
    address: str
    prefix: int = 24

    def wire(self) -> dict[str, Any]:
        return {"nic": self.nic, "ipaddr": self.address, "prefix": self.prefix, "bridged": True}


@dataclass
class NetHost:
    """Two fresh namespaces (the host, the far ends of its nics) and the client's veth."""

    count: int
    suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:5])

    @property
    def host_ns(self) -> str:
        return f"vhbench-{self.suffix}"

    @property
    def peer_ns(self) -> str:
        return f"vhbpeer-{self.suffix}"

    @property
    def mgmt_outside(self) -> str:
        return f"vhb0-{self.suffix}"

    @property
    def networks(self) -> list[BridgedNet]:
        return [
            BridgedNet(f"bnet{n:02d}", f"nic{n + 1}", f"{NETWORK_SUBNET}.{n}.2")
            for n in range(self.count)
        ]

    def create(self) -> None:
        """The namespaces and ``count + 1`` veth pairs, all up; undone by :meth:`destroy`."""
        ip("netns", "add", self.host_ns)
        ip("netns", "add", self.peer_ns)
        ip("link", "add", self.mgmt_outside, "type", "veth", "peer", "name", "nic0")
        ip("link", "set", "nic0", "netns", self.host_ns)
        ip("addr", "add", f"{MGMT_SUBNET}.1/24", "dev", self.mgmt_outside)
        ip("link", "set", self.mgmt_outside, "up")
        host = ["link set lo up", "link set nic0 up", f"addr add {HOST_ADDR}/24 dev nic0"]
        peer = ["link set lo up"]
        for n in range(1, self.count + 1):
            host.append(f"link add nic{n} type veth peer name p{n} netns {self.peer_ns}")
            host.append(f"link set nic{n} up")
            peer.append(f"link set p{n} up")
        ip("-n", self.host_ns, "-batch", "-", stdin="\n".join(host) + "\n")
        ip("-n", self.peer_ns, "-batch", "-", stdin="\n".join(peer) + "\n")

    def destroy(self) -> list[str]:
        """Delete both namespaces (their veths go with them); answers what failed."""
        failures = []
        for args in (
            ("link", "del", self.mgmt_outside),
            ("netns", "del", self.host_ns),
            ("netns", "del", self.peer_ns),
        ):
            try:
                ip(*args)
            except RuntimeError as e:
                if "Cannot find device" not in str(e) and "No such file" not in str(e):
                    failures.append(str(e))
        return failures


# --- the baseline: the same bridges with plain pyroute2 calls ---------------------------------


def baseline_apply(ns: NetNS, networks: list[BridgedNet]) -> float:
    """Seconds to make, per network: the bridge, the nic enslaved and up, the address, the
    bridge up. ``ns`` is opened by the caller: its helper process is not counted."""
    t0 = time.perf_counter()
    for net in networks:
        (nic,) = ns.link_lookup(ifname=net.nic)
        ns.link("add", ifname=net.name, kind="bridge")
        (bridge,) = ns.link_lookup(ifname=net.name)
        ns.link("set", index=nic, master=bridge)
        ns.link("set", index=nic, state="up")
        ns.addr("add", index=bridge, address=net.address, prefixlen=net.prefix)
        ns.link("set", index=bridge, state="up")
    return time.perf_counter() - t0


def baseline_remove(ns: NetNS, networks: list[BridgedNet]) -> float:
    """Seconds to delete every bridge (the kernel drops its address and releases its port)."""
    t0 = time.perf_counter()
    for net in networks:
        (bridge,) = ns.link_lookup(ifname=net.name)
        ns.link("del", index=bridge)
    return time.perf_counter() - t0


def open_netns(name: str) -> tuple[NetNS, float]:
    """A pyroute2 handle in namespace ``name`` and the seconds opening it took."""
    t0 = time.perf_counter()
    ns = NetNS(name)
    return ns, time.perf_counter() - t0


# --- what the kernel holds ------------------------------------------------------------------


def bridges_in_place(ns: NetNS, networks: list[BridgedNet]) -> int:
    """How many of ``networks`` are complete: an up bridge holding its nic and its address."""
    links = {link.get_attr("IFLA_IFNAME"): link for link in ns.get_links()}
    addresses = {
        (a["index"], a.get_attr("IFA_ADDRESS"), a["prefixlen"]) for a in ns.get_addr(family=2)
    }
    complete = 0
    for net in networks:
        bridge, nic = links.get(net.name), links.get(net.nic)
        if bridge is None or nic is None:
            continue
        if (
            nic.get_attr("IFLA_MASTER") == bridge["index"]
            and bridge["flags"] & 1  # IFF_UP
            and (bridge["index"], net.address, net.prefix) in addresses
        ):
            complete += 1
    return complete


# Run inside the host namespace, as the supervisor reads it: a plain IPRoute there.
_READ_STATE_PROBE = """
import statistics, sys, time
from pyroute2 import IPRoute
from virthost.network.netlink import read_state
ipr = IPRoute()
try:
    read_state(ipr)
    times = []
    for _ in range(int(sys.argv[1])):
        t0 = time.perf_counter()
        read_state(ipr)
        times.append(time.perf_counter() - t0)
finally:
    ipr.close()
print(statistics.median(times))
"""


def read_state_seconds(ns_name: str, count: int = 20) -> float:
    """Median seconds of one read of the whole kernel state in namespace ``ns_name``: what the
    applier does before its plan and again after every step it changes something with."""
    argv = ["ip", "netns", "exec", ns_name, sys.executable, "-c", _READ_STATE_PROBE, str(count)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True)
    return float(done.stdout.strip())


def bridges_left(ns: NetNS) -> int:
    kinds = [link.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND") for link in ns.get_links()]
    return sum(1 for kind in kinds if kind == "bridge")


# --- the daemon's log ----------------------------------------------------------------------


class DaemonLog:
    """Lines of the daemon's log written since the last :meth:`mark`, with their time.

    The daemon logs through a queue, so a line may land shortly after the answer it precedes:
    :meth:`wait_for` polls for it.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._offset = 0

    def mark(self) -> None:
        self._offset = self._path.stat().st_size if self._path.exists() else 0

    def lines(self) -> list[tuple[float, str]]:
        with self._path.open("rb") as f:
            f.seek(self._offset)
            text = f.read().decode(errors="replace")
        found = []
        for line in text.splitlines():
            try:
                stamp = datetime.strptime(line[:23], LOG_TIME_FORMAT).timestamp()
            except ValueError:
                continue  # a traceback's continuation
            found.append((stamp, line[23:]))
        return found

    def wait_for(self, *needles: str, timeout: float = 10.0) -> dict[str, float]:
        """Wall-clock time of the first line containing each needle (missing ones absent)."""
        deadline = time.monotonic() + timeout
        while True:
            found: dict[str, float] = {}
            for stamp, text in self.lines():
                for needle in needles:
                    if needle in text and needle not in found:
                        found[needle] = stamp
            if len(found) == len(needles) or time.monotonic() > deadline:
                return found
            time.sleep(0.05)
