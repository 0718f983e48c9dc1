"""IPv4 DHCP for a network with ``bootproto=dhcp``, with busybox's ``udhcpc``.

Debian 12 here has neither ``dhclient`` nor ``dhcpcd``; ``busybox`` (a dependency of
virthost) carries ``udhcpc``. It runs once per apply, in the foreground and time-boxed
(``-q``: quit once leased, ``-n``: give up when no server answers), with a script of ours
that only *prints* the lease: the address and router are then set through netlink by the
applier like any static address, so one code path owns the kernel's state. The lease is not
renewed by a daemon; re-applying the configuration (at start, on the next setupNetworks)
leases again. With a network namespace the client runs inside it through ``nsenter``.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import Protocol

from virthost.common import errors
from virthost.common.commands import Runner

LEASE_MARK = "virthost-lease"
_SCRIPT = f"""#!/bin/sh
case "$1" in
bound|renew) echo "{LEASE_MARK} ip=$ip subnet=$subnet router=$router" ;;
esac
exit 0
"""


@dataclass(frozen=True)
class Lease:
    address: str
    prefix: int
    router: str | None

    @property
    def cidr(self) -> str:
        return f"{self.address}/{self.prefix}"


class DhcpClient(Protocol):
    def acquire(self, iface: str) -> Lease: ...


def parse_lease(output: str) -> Lease | None:
    """The last lease line the script printed, if any."""
    lease = None
    for line in output.splitlines():
        if not line.startswith(LEASE_MARK + " "):
            continue
        values = dict(word.partition("=")[::2] for word in line.split()[1:])
        try:
            address = ipaddress.IPv4Address(values.get("ip", ""))
            prefix = ipaddress.IPv4Network(f"0.0.0.0/{values.get('subnet', '')}").prefixlen
        except ValueError:
            continue
        router = values.get("router", "").split(" ")[0] or None
        lease = Lease(str(address), prefix, router)
    return lease


def udhcpc_argv() -> list[str] | None:
    """How to run udhcpc here, or None when it is not installed."""
    if shutil.which("udhcpc"):
        return ["udhcpc"]
    if shutil.which("busybox"):
        return ["busybox", "udhcpc"]
    return None


class Udhcpc:
    """One-shot leases with udhcpc, optionally inside network namespace ``netns``."""

    def __init__(
        self, runner: Runner, netns: str | None = None, *, attempts: int = 3, wait: int = 2
    ) -> None:
        self._runner = runner
        self._netns = netns
        self._attempts = attempts
        self._wait = wait

    def acquire(self, iface: str) -> Lease:
        client = udhcpc_argv()
        if client is None:
            raise errors.UnsupportedOperation(
                "bootproto=dhcp needs a DHCP client: neither udhcpc (busybox) nor dhclient "
                "is installed"
            )
        with tempfile.TemporaryDirectory(prefix="virthost-dhcp-") as scratch:
            script = os.path.join(scratch, "lease.sh")
            with open(script, "w") as f:
                f.write(_SCRIPT)
            os.chmod(script, 0o700)
            argv = [*client, "-f", "-q", "-n", "-i", iface, "-s", script]
            argv += ["-t", str(self._attempts), "-T", str(self._wait)]
            if self._netns:
                argv = ["nsenter", f"--net=/run/netns/{self._netns}", "--", *argv]
            budget = self._attempts * self._wait + 10.0
            result = self._runner.run(argv, budget, check=False)
        lease = parse_lease(result.out_text)
        if lease is None:
            raise errors.CommandError(f"no DHCP lease on {iface} (udhcpc rc {result.rc})")
        return lease
