"""virthost-supervisor: the root helper that performs the daemon's privileged operations."""

from __future__ import annotations

import argparse
import grp
import logging
import os
import pwd
import signal
import sys
import threading
from pathlib import Path

from virthost import __version__
from virthost.common.commands import CommandRunner
from virthost.common.errors import InvalidConfiguration
from virthost.daemon import config as configuration
from virthost.daemon.logs import LogSetup
from virthost.supervisor.operations import build_operations
from virthost.supervisor.server import SupervisorServer

log = logging.getLogger("virthost.supervisor")


def resolve_users(names: list[str]) -> tuple[set[int], int | None]:
    """Allowed uids (root always) and the group to own the socket (the first user's)."""
    uids = {0}
    gid: int | None = None
    for name in names:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            log.warning("allowed user %r does not exist; ignored", name)
            continue
        uids.add(entry.pw_uid)
        if gid is None:
            gid = entry.pw_gid
    return uids, gid


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="virthost-supervisor", description="virthost's privileged helper (runs as root)."
    )
    parser.add_argument("-c", "--config", type=Path, help="virthostd TOML configuration file")
    parser.add_argument("--socket", help="override [supervisor] socket")
    args = parser.parse_args(argv)
    try:
        config = configuration.load(args.config)
    except InvalidConfiguration as e:
        print(f"virthost-supervisor: {e.wire_message}", file=sys.stderr)
        return 2
    logs = LogSetup(config.daemon.log_level, config.daemon.log_file)
    threading.current_thread().name = "supervisor/main"
    if os.geteuid() != 0:
        log.warning("not running as root: privileged operations will fail")
    uids, gid = resolve_users(config.supervisor.allowed_users)
    socket_path = Path(args.socket or config.supervisor.socket)
    mount_root = Path(config.storage.repository) / "mnt"
    operations = build_operations(CommandRunner(), mount_root, config.storage.mount_timeout)
    server = SupervisorServer(socket_path, operations, uids, gid)
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("received %s; stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        server.start()
        group = grp.getgrgid(gid).gr_name if gid is not None else "root"
        log.info("virthost-supervisor %s ready (socket group %s)", __version__, group)
        # A signal may land on any thread; its handler runs only when the main thread
        # wakes up, so wake up regularly.
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
        log.info("stopped")
        logs.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
