"""Host memory figures from /proc/meminfo, in the units VDSM reports them.

Capabilities report the total (``memSize``) and statistics report free, used and swap figures
derived from the same file. /proc/meminfo values are KiB except the ``HugePages_*`` counters,
which are page counts; :func:`parse_meminfo` keeps the numbers as printed and the helpers below
convert. VDSM counts page cache, buffers and reclaimable slab as free, because the kernel gives
that memory back to a starting VM; we do the same so the engine's scheduling matches.
"""

from __future__ import annotations

from collections.abc import Mapping

from virthost.host import hostfs

_PROC_MEMINFO = "/proc/meminfo"


def parse_meminfo(text: str) -> dict[str, int]:
    """``{"MemTotal": 5335244, ...}``: the number on each line, without its unit."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        if ":" not in line:
            continue
        key, rest = line.split(":", 1)
        fields = rest.split()
        if not fields:
            continue
        try:
            values[key.strip()] = int(fields[0])
        except ValueError:
            continue
    return values


def read_meminfo(root: str = "/") -> dict[str, int]:
    return parse_meminfo(hostfs.read_text(root, _PROC_MEMINFO) or "")


def total_mib(meminfo: Mapping[str, int]) -> int:
    return meminfo.get("MemTotal", 0) // 1024


def free_or_cached_kib(meminfo: Mapping[str, int]) -> int:
    """Memory a new VM can get: free pages plus page cache and buffers (VDSM's memUsed basis)."""
    return meminfo.get("MemFree", 0) + meminfo.get("Cached", 0) + meminfo.get("Buffers", 0)


def free_mib(meminfo: Mapping[str, int]) -> int:
    """VDSM's ``memFree``: free + cache + buffers + reclaimable slab, in MiB."""
    reclaimable = meminfo.get("SReclaimable", 0)
    return (free_or_cached_kib(meminfo) + reclaimable) // 1024


def used_percent(meminfo: Mapping[str, int]) -> int:
    """VDSM's ``memUsed``: the integer percentage of memory that is neither free nor cache."""
    total = meminfo.get("MemTotal", 0)
    if total <= 0:
        return 0
    return 100 - int(100.0 * free_or_cached_kib(meminfo) / total)
