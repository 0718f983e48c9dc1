"""Per-interface traffic counters, link speed and state (/proc/net/dev and /sys/class/net).

Both ``Host.getStats`` (its ``network`` map) and ``Host.getNetworkStatistics`` report, for each
interface, cumulative byte/error/drop counters with the time they were read (the engine derives
rates from two reports), the link speed in Mb/s and the operational state. Reading them is cheap
and needs no privileges, so it happens in the daemon on every sampling tick.

Speed follows VDSM: virtual devices have no speed (the read fails), and drivers that do not know
report -1 or an all-ones value; all of those are 0 here ("unknown"), and the wire format turns
0 into 1000 because the engine divides by it.
"""

from __future__ import annotations

from dataclasses import dataclass

from virthost.host import hostfs

_PROC_NET_DEV = "/proc/net/dev"
_UNKNOWN_SPEEDS = (2**16 - 1, 2**32 - 1)
DEFAULT_WIRE_SPEED = 1000


@dataclass(frozen=True)
class NetDevCounters:
    """Cumulative counters of one interface as printed in /proc/net/dev."""

    rx_bytes: int
    rx_packets: int
    rx_errors: int
    rx_dropped: int
    tx_bytes: int
    tx_packets: int
    tx_errors: int
    tx_dropped: int


@dataclass(frozen=True)
class InterfaceSample:
    """Counters plus link facts of one interface at one moment."""

    name: str
    counters: NetDevCounters
    speed: int
    state: str


def parse_net_dev(text: str) -> dict[str, NetDevCounters]:
    """``/proc/net/dev`` as ``{iface: counters}`` (the two header lines are skipped)."""
    result: dict[str, NetDevCounters] = {}
    for line in text.splitlines():
        if ":" not in line:
            continue
        name, rest = line.split(":", 1)
        fields = rest.split()
        if len(fields) < 16 or not fields[0].isdigit():
            continue
        values = [int(f) for f in fields]
        result[name.strip()] = NetDevCounters(
            rx_bytes=values[0],
            rx_packets=values[1],
            rx_errors=values[2],
            rx_dropped=values[3],
            tx_bytes=values[8],
            tx_packets=values[9],
            tx_errors=values[10],
            tx_dropped=values[11],
        )
    return result


def normalize_speed(raw: int | None) -> int:
    """Mb/s from a sysfs ``speed`` value; 0 when unknown."""
    if raw is None or raw <= 0 or raw in _UNKNOWN_SPEEDS:
        return 0
    return raw


def read_speed(root: str, iface: str) -> int:
    return normalize_speed(hostfs.read_int(root, f"/sys/class/net/{iface}/speed"))


def read_operstate(root: str, iface: str) -> str:
    return hostfs.read_line(root, f"/sys/class/net/{iface}/operstate") or "unknown"


def read_interfaces(root: str = "/", skip: tuple[str, ...] = ("lo",)) -> dict[str, InterfaceSample]:
    """Every interface of /proc/net/dev except ``skip``, with its speed and state."""
    counters = parse_net_dev(hostfs.read_text(root, _PROC_NET_DEV) or "")
    return {
        name: InterfaceSample(name, values, read_speed(root, name), read_operstate(root, name))
        for name, values in counters.items()
        if name not in skip
    }


def wire_entry(sample: InterfaceSample, sample_time: float) -> dict[str, object]:
    """One interface as VDSM reports it: counters as strings, ``sampleTime`` as epoch float."""
    c = sample.counters
    return {
        "name": sample.name,
        "rx": str(c.rx_bytes),
        "tx": str(c.tx_bytes),
        "rxErrors": str(c.rx_errors),
        "txErrors": str(c.tx_errors),
        "rxDropped": str(c.rx_dropped),
        "txDropped": str(c.tx_dropped),
        "speed": str(sample.speed or DEFAULT_WIRE_SPEED),
        "state": sample.state,
        "sampleTime": sample_time,
    }
