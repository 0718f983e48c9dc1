"""``virthost-tool``: what an administrator (or the boot sequence) runs as root on a host.

``restore-nets`` brings the host's networks back to the safe configuration, as VDSM's
``vdsm-tool restore-nets`` does at boot: it settles a change a killed daemon left half done,
undoes changes never made safe, and re-creates what the kernel lost (after a reboot). The
daemon does the same when it starts; the tool is for a host where the daemon is not running
yet, or not at all.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

from virthost.common import errors
from virthost.common.commands import CommandRunner
from virthost.daemon import config as configuration
from virthost.network.model import NetConfig
from virthost.network.netlink import NetlinkApplier, setup_networks
from virthost.network.netlink.dhcp import Udhcpc
from virthost.network.persistence import NetConfigStore
from virthost.network.service import NetworkService
from virthost.network.validation import HostNics

log = logging.getLogger("virthost.tool")


def restore_nets(config: configuration.Config) -> None:
    applier = NetlinkApplier(dhcp=Udhcpc(CommandRunner()))

    def apply(running: dict[str, Any], desired: dict[str, Any]) -> Any:
        report = setup_networks(applier, NetConfig.from_dict(running), NetConfig.from_dict(desired))
        log.info("Applied: %s", report.to_dict())
        return report

    service = NetworkService(
        NetConfigStore(Path(config.daemon.state_dir)),
        apply,
        lambda running: HostNics(nics=frozenset()),  # nothing new is validated here
        lambda: None,
    )
    service.restore_at_start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="virthost-tool", description=__doc__.splitlines()[0])
    parser.add_argument("-c", "--config", type=Path, help="virthostd TOML configuration file")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("restore-nets", help="restore the safe network configuration")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    if os.geteuid() != 0:
        print("virthost-tool: must run as root", file=sys.stderr)
        return 2
    try:
        config = configuration.load(args.config)
        if args.command == "restore-nets":
            restore_nets(config)
    except errors.VirtHostError as e:
        print(f"virthost-tool: {e.wire_message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
