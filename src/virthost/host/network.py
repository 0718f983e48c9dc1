"""Read-only network inventory and statistics of the host (or of one network namespace).

``Host.getNetworkCapabilities`` and the network part of ``Host.getCapabilities`` describe every
device (see :mod:`virthost.host.netparse` for the format); ``Host.getNetworkStatistics``
reports per-interface counters. Nothing here changes the host: configuring networks is the job
of the privileged network service.

The inventory comes from iproute2's JSON output run through the command runner with a time box
(``ip`` can stall behind a busy rtnl lock), plus sysfs/procfs for link speed and the IPv6
autoconf sysctl. With ``netns`` set, every ``ip`` command runs as ``ip -n NS`` and the sysfs and
procfs values are read inside the namespace with ``ip netns exec NS grep``, because the
daemon's own /sys and /proc show only its namespace. This is what lets tests check the
inventory of a scratch namespace holding a bridge and a veth pair.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from virthost.common import errors
from virthost.common.commands import Runner
from virthost.host import hostfs, netdev, netparse
from virthost.host.netparse import JsonObj, LinkExtras

DEFAULT_TIMEOUT = 10.0


@dataclass(frozen=True)
class IpSnapshot:
    """The parsed JSON of the four ``ip`` queries."""

    links: list[JsonObj]
    addrs: list[JsonObj]
    routes4: list[JsonObj]
    routes6: list[JsonObj]


def _ip_argv(netns: str | None, *args: str) -> list[str]:
    prefix = ["ip", "-n", netns] if netns else ["ip"]
    return [*prefix, "-json", *args]


def _ip_json(runner: Runner, argv: list[str], timeout: float) -> list[JsonObj]:
    result = runner.run(argv, timeout)
    text = result.out.decode("utf-8", "replace").strip()
    if not text:
        return []
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise errors.CommandError(f"{' '.join(argv)} printed invalid JSON: {exc}") from exc
    if not isinstance(data, list):
        raise errors.CommandError(f"{' '.join(argv)} printed {type(data).__name__}, not a list")
    return [entry for entry in data if isinstance(entry, dict)]


def read_ip_snapshot(
    runner: Runner, *, netns: str | None = None, timeout: float = DEFAULT_TIMEOUT
) -> IpSnapshot:
    """Links (with details), addresses and the main IPv4/IPv6 routing tables."""
    return IpSnapshot(
        links=_ip_json(runner, _ip_argv(netns, "-details", "link", "show"), timeout),
        addrs=_ip_json(runner, _ip_argv(netns, "addr", "show"), timeout),
        routes4=_ip_json(runner, _ip_argv(netns, "-4", "route", "show"), timeout),
        routes6=_ip_json(runner, _ip_argv(netns, "-6", "route", "show"), timeout),
    )


def _extra_paths(name: str) -> tuple[str, str]:
    return f"/sys/class/net/{name}/speed", f"/proc/sys/net/ipv6/conf/{name}/autoconf"


def parse_grep_values(text: str) -> dict[str, str]:
    """``grep -H . FILES`` output (``path:value`` lines) as ``{path: value}``."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        path, sep, value = line.partition(":")
        if sep:
            values[path] = value.strip()
    return values


def _netns_values(runner: Runner, netns: str, paths: list[str], timeout: float) -> dict[str, str]:
    # grep exits 2 when some file cannot be read (a virtual NIC's speed): expected, not fatal.
    argv = ["ip", "netns", "exec", netns, "grep", "-s", "-H", ".", *paths]
    result = runner.run(argv, timeout, check=False)
    return parse_grep_values(result.out.decode("utf-8", "replace"))


def read_link_extras(
    names: Sequence[str],
    *,
    root: str = "/",
    runner: Runner | None = None,
    netns: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> LinkExtras:
    """Speed and IPv6 autoconf of ``names`` (``runner`` is required with ``netns``)."""
    paths = [path for name in names for path in _extra_paths(name)]
    if netns:
        if runner is None:
            raise ValueError("reading a namespace's sysfs needs a command runner")
        values = _netns_values(runner, netns, paths, timeout) if paths else {}
    else:
        values = {}
        for path in paths:
            value = hostfs.read_line(root, path)
            if value is not None:
                values[path] = value
    speeds: dict[str, int] = {}
    autoconf: dict[str, bool] = {}
    for name in names:
        speed_path, autoconf_path = _extra_paths(name)
        raw_speed = values.get(speed_path)
        speed = int(raw_speed) if raw_speed and raw_speed.lstrip("-").isdigit() else None
        speeds[name] = netdev.normalize_speed(speed)
        autoconf[name] = values.get(autoconf_path) == "1"
    return LinkExtras(speed=speeds, ipv6_autoconf=autoconf)


def read_nameservers(root: str = "/", netns: str | None = None) -> list[str]:
    text = None
    if netns:  # what `ip netns exec` bind-mounts over /etc/resolv.conf
        text = hostfs.read_text(root, f"/etc/netns/{netns}/resolv.conf")
    if text is None:
        text = hostfs.read_text(root, "/etc/resolv.conf")
    return netparse.parse_resolv_conf(text or "")


def supports_ipv6(root: str = "/") -> bool:
    """IPv6 is compiled in and not disabled host-wide."""
    if not hostfs.exists(root, "/proc/net/if_inet6"):
        return False
    return hostfs.read_line(root, "/proc/sys/net/ipv6/conf/all/disable_ipv6") != "1"


def network_capabilities(
    runner: Runner,
    *,
    root: str = "/",
    netns: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    hidden: Sequence[str] = (),
) -> dict[str, Any]:
    """VDSM's network capabilities of the host or of namespace ``netns``.

    Raises :class:`~virthost.common.errors.CommandError` (or ``CommandTimeout``) when ``ip``
    fails: a partial inventory would make the engine think devices disappeared.
    """
    snapshot = read_ip_snapshot(runner, netns=netns, timeout=timeout)
    names = [str(link["ifname"]) for link in snapshot.links if link.get("ifname")]
    extras = read_link_extras(names, root=root, runner=runner, netns=netns, timeout=timeout)
    return netparse.build_network_caps(
        snapshot.links,
        snapshot.addrs,
        snapshot.routes4,
        snapshot.routes6,
        extras,
        nameservers=read_nameservers(root, netns),
        supports_ipv6=supports_ipv6(root),
        hidden=hidden,
    )


def network_statistics(root: str = "/", now: float | None = None) -> dict[str, Any]:
    """``Host.getNetworkStatistics``: ``{"network": {iface: {...}}, "rxDropped", "txDropped"}``.

    ``now`` (epoch seconds) is the ``sampleTime`` of every entry; it defaults to the time of
    the read so the engine can compute rates between two calls.
    """
    interfaces = netdev.read_interfaces(root)
    sample_time = time.time() if now is None else now
    return {
        "network": {name: netdev.wire_entry(s, sample_time) for name, s in interfaces.items()},
        "rxDropped": sum(s.counters.rx_dropped for s in interfaces.values()),
        "txDropped": sum(s.counters.tx_dropped for s in interfaces.values()),
    }
