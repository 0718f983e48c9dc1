"""Applying network configurations to the kernel with netlink (pyroute2), in the supervisor.

::

    running, desired (NetConfig) --plan()--> [Step, ...] --NetlinkApplier.apply()--> ApplyReport
                                                              |  reads KernelState before
                                                              |  each step, skips what holds

:func:`setup_networks` is the whole thing in one call; :func:`read_state` what is there now.
"""

from __future__ import annotations

from virthost.network.model import NetConfig
from virthost.network.netlink.apply import ApplyReport, NetlinkApplier
from virthost.network.netlink.plan import plan
from virthost.network.netlink.state import KernelState, read_state

__all__ = [
    "ApplyReport",
    "KernelState",
    "NetlinkApplier",
    "plan",
    "read_state",
    "setup_networks",
]


def setup_networks(applier: NetlinkApplier, running: NetConfig, desired: NetConfig) -> ApplyReport:
    """Make the kernel hold ``desired``, knowing ``running`` was applied before."""
    return applier.apply(plan(running, desired))
