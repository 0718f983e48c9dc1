"""The supervisor's network operations: apply a configuration, report the kernel's state.

The daemon computes and validates configurations; the supervisor (root) only makes the
kernel match one, so what it accepts is two configurations in their persisted form
(:meth:`virthost.network.model.NetConfig.to_dict`). They are parsed again here, in the
privileged process, whatever the daemon already checked: a dict of another shape is refused
before anything changes.
"""

from __future__ import annotations

import logging
from typing import Any

from virthost.common import errors
from virthost.common.commands import Runner
from virthost.network.hostsettings import apply_host_settings
from virthost.network.model import NetConfig
from virthost.network.netlink import NetlinkApplier, setup_networks
from virthost.network.netlink.dhcp import Udhcpc

log = logging.getLogger("virthost.supervisor.network")


def _config(label: str, data: dict[str, Any]) -> NetConfig:
    try:
        return NetConfig.from_dict(data)
    except (ValueError, TypeError, AttributeError) as e:
        raise errors.InvalidParameter(f"{label} network configuration: {e}") from None


class NetworkOperations:
    """``setup_networks`` and ``network_state``, optionally inside network namespace ``netns``
    (how the tests run a whole supervisor against a scratch namespace)."""

    def __init__(self, runner: Runner, netns: str | None = None, timeout: float = 120.0) -> None:
        self._applier = NetlinkApplier(netns, dhcp=Udhcpc(runner, netns), timeout=timeout)
        self._netns = netns

    def setup_networks(self, running: dict[str, Any], desired: dict[str, Any]) -> dict[str, Any]:
        """Apply ``desired`` over ``running``; answers the steps done and those already held."""
        wanted = _config("desired", desired)
        report = setup_networks(self._applier, _config("running", running), wanted)
        log.info("network setup: %d step(s) done, %d held", len(report.done), len(report.skipped))
        answer = report.to_dict()
        if self._netns is None:  # sysctls and resolv.conf are this namespace's own
            answer["settings"] = apply_host_settings(wanted)
        return answer

    def network_state(self) -> dict[str, Any]:
        """Links, addresses and main-table routes as the kernel has them now."""
        return self._applier.read_state().to_dict()
