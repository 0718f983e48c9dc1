"""The periodic health line: is the daemon itself well (memory, threads, CPU, clients)?"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
from collections.abc import Callable

log = logging.getLogger("virthost.health")


def _rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class HealthMonitor:
    """Call :meth:`check` periodically; it logs one line with the figures since last time."""

    def __init__(self, extra: Callable[[], dict[str, float]] | None = None) -> None:
        self._extra = extra
        self._last_cpu = time.process_time()
        self._last_wall = time.monotonic()

    def figures(self) -> dict[str, float]:
        now_cpu, now_wall = time.process_time(), time.monotonic()
        elapsed = max(now_wall - self._last_wall, 1e-6)
        cpu_percent = 100.0 * (now_cpu - self._last_cpu) / elapsed
        self._last_cpu, self._last_wall = now_cpu, now_wall
        uncollectable = gc.collect()
        figures = {
            "rss_mib": round(_rss_kib() / 1024, 1),
            "threads": threading.active_count(),
            "cpu_percent": round(cpu_percent, 2),
            "gc_collected": uncollectable,
            "fds": len(os.listdir("/proc/self/fd")),
        }
        if self._extra is not None:
            figures.update(self._extra())
        return figures

    def check(self) -> None:
        figures = self.figures()
        log.info("health: %s", " ".join(f"{k}={v:g}" for k, v in figures.items()))
