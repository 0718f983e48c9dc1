"""A network namespace playing a host for the netlink applier's tests: ``ip -json`` in it,
and applying configurations to it."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from typing import Any

from virthost.network.model import NetConfig
from virthost.network.netlink import NetlinkApplier, setup_networks


@dataclass
class NamespaceHost:
    netns: str
    applier: NetlinkApplier

    def ip(self, *args: str) -> Any:
        """``ip -json ARGS`` inside the namespace, parsed."""
        out = subprocess.run(
            ["ip", "-n", self.netns, "-json", *args],
            check=True,
            capture_output=True,
            timeout=10,
        ).stdout
        return json.loads(out or b"[]")

    def apply(self, running: NetConfig, desired: NetConfig) -> list[str]:
        """Apply ``desired`` over ``running``; the steps that changed something."""
        report = setup_networks(self.applier, running, desired)
        return [step.describe() for step in report.done]
