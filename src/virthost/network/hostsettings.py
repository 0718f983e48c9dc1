"""What a network configuration sets outside netlink: IPv6 autoconfiguration, nameservers.

Both belong to the namespace the supervisor runs in: the per-device sysctls under
``/proc/sys/net/ipv6/conf`` are per network namespace, and ``/etc/resolv.conf`` is the file the
host's resolver reads (``ip netns exec`` bind-mounts ``/etc/netns/<ns>/resolv.conf`` over it
for a namespace that has one, which is why it is rewritten in place, never replaced).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from virthost.network.model import NetConfig

log = logging.getLogger("virthost.network")

PROC_SYS = Path("/proc/sys")
RESOLV_CONF = Path("/etc/resolv.conf")
HEADER = "# Written by virthost from the default-route network's nameservers\n"


def apply_host_settings(
    desired: NetConfig, proc_sys: Path = PROC_SYS, resolv_conf: Path = RESOLV_CONF
) -> list[str]:
    """Make the sysctls and resolv.conf follow ``desired``; answers what was changed."""
    changed: list[str] = []
    for name, attrs in sorted(desired.networks.items()):
        device = name if attrs.bridged else attrs.link_device
        if device is None:
            continue
        for key in ("autoconf", "accept_ra"):
            path = proc_sys / "net" / "ipv6" / "conf" / device / key
            value = "1" if attrs.ipv6autoconf else "0"
            if _write_if_different(path, value):
                changed.append(f"{device} ipv6 {key}={value}")
    servers = [
        server
        for attrs in desired.networks.values()
        if attrs.default_route
        for server in attrs.nameservers
    ]
    if servers:
        text = HEADER + "".join(f"nameserver {server}\n" for server in servers)
        if _write_if_different(resolv_conf, text, create=True):
            changed.append(f"nameservers {' '.join(servers)}")
    return changed


def _write_if_different(path: Path, value: str, create: bool = False) -> bool:
    """Write ``value`` into ``path`` in place; False when it already says so (or is absent)."""
    try:
        current = path.read_text()
    except FileNotFoundError:
        if not create:
            return False  # no such device here, or IPv6 disabled
        current = None
    except OSError as e:
        log.warning("Cannot read %s: %s", path, e)
        return False
    if current is not None and current.strip() == value.strip():
        return False
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    fd = os.open(path, flags, 0o644)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)
    return True
