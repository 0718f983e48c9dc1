"""The whitelist: the only privileged operations the supervisor performs.

Each operation declares its arguments with their types; a request naming anything else, or
with arguments that do not match, is refused before any code runs. Later capabilities
(mounts, host networking, sanlock administration...) add their operations here, one small
function each.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from virthost.common import errors
from virthost.common.commands import CommandRunner
from virthost.host.hardware import read_hardware_info
from virthost.supervisor.mounts import Mounter
from virthost.supervisor.netops import NetworkOperations


@dataclass(frozen=True)
class Operation:
    name: str
    func: Callable[..., Any]
    doc: str
    args: Mapping[str, type] = field(default_factory=dict)

    def check_args(self, args: Mapping[str, Any]) -> None:
        unknown = set(args) - set(self.args)
        if unknown:
            raise errors.InvalidParameter(f"{self.name}: unknown arguments {sorted(unknown)}")
        for name, kind in self.args.items():
            if name not in args:
                raise errors.InvalidParameter(f"{self.name}: missing argument {name!r}")
            value = args[name]
            if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
                raise errors.InvalidParameter(
                    f"{self.name}: argument {name!r} must be {kind.__name__}"
                )


def build_operations(
    runner: CommandRunner, mount_root: Path | None = None, mount_timeout: float = 120.0
) -> dict[str, Operation]:
    def ping() -> str:
        return "pong"

    def hardware_info() -> dict[str, str]:
        info = read_hardware_info(runner)
        if not info:
            raise errors.CannotRetrieveHWInfo("no SMBIOS/DMI data on this host")
        return info

    network = NetworkOperations(runner)
    ops = [
        Operation("ping", ping, "Answer 'pong' (liveness of the supervisor)."),
        Operation(
            "hardware_info",
            hardware_info,
            "System manufacturer, product, serial and UUID from dmidecode or sysfs DMI.",
        ),
        Operation(
            "setup_networks",
            network.setup_networks,
            "Apply a desired network configuration over the running one, with netlink.",
            {"running": dict, "desired": dict},
        ),
        Operation(
            "network_state",
            network.network_state,
            "Links, addresses and routes as the kernel has them.",
        ),
    ]
    if mount_root is not None:
        mounter = Mounter(runner, mount_root, mount_timeout)
        ops += [
            Operation(
                "mount",
                mounter.mount,
                "Mount a storage server below the mount root.",
                {"source": str, "target": str, "fstype": str, "options": str},
            ),
            Operation(
                "umount",
                mounter.umount,
                "Unmount a storage server mounted below the mount root.",
                {"target": str, "lazy": bool},
            ),
        ]
    return {op.name: op for op in ops}
