"""virthostd: the host virtualization agent's entry point."""

from __future__ import annotations

import argparse
import logging
import signal
import ssl
import sys
import threading
from pathlib import Path

from virthost import __version__
from virthost.common.errors import InvalidConfiguration
from virthost.common.pki import server_context
from virthost.daemon import config as configuration
from virthost.daemon import privileges
from virthost.daemon.logs import LogSetup

log = logging.getLogger("virthost.daemon")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="virthostd",
        description="Host virtualization agent speaking VDSM's JSON-RPC/STOMP API.",
    )
    parser.add_argument("-c", "--config", type=Path, help="TOML configuration file")
    parser.add_argument(
        "--print-default-config",
        action="store_true",
        help="print the default configuration, every option documented, and exit",
    )
    parser.add_argument("--version", action="version", version=f"virthostd {__version__}")
    return parser.parse_args(argv)


def tls_context(config: configuration.Config) -> ssl.SSLContext | None:
    if not config.rpc.tls:
        return None
    pki = config.pki
    try:
        return server_context(pki.ca_file, pki.cert_file, pki.key_file)
    except (OSError, ssl.SSLError) as e:
        raise InvalidConfiguration(f"cannot load the TLS certificates: {e}") from e


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.print_default_config:
        sys.stdout.write(configuration.render_default())
        return 0
    try:
        config = configuration.load(args.config)
    except InvalidConfiguration as e:
        print(f"virthostd: {e.wire_message}", file=sys.stderr)
        return 2
    try:
        logs = LogSetup(config.daemon.log_level, config.daemon.log_file)
    except (ValueError, OSError) as e:
        print(f"virthostd: {e}", file=sys.stderr)
        return 2
    threading.current_thread().name = "main"
    try:
        return _serve(config)
    except InvalidConfiguration as e:
        log.error("%s", e.wire_message)
        return 2
    finally:
        logs.stop()


def _serve(config: configuration.Config) -> int:
    log.info("virthostd %s starting", __version__)
    # Everything that needs root happens before the switch to the service user.
    privileges.prepare_dirs(
        config.daemon.user,
        config.daemon.state_dir,
        config.daemon.run_dir,
        config.storage.repository,
        str(Path(config.storage.repository) / "mnt"),
    )
    ssl_context = tls_context(config)
    privileges.drop_to(config.daemon.user)

    from virthost.daemon.app import Daemon  # after the drop: nothing is opened as root

    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("received %s", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    daemon = Daemon(config, ssl_context)
    try:
        daemon.start()
    except OSError as e:
        log.error("cannot start: %s", e)
        daemon.stop()
        return 1
    # A signal may land on any thread; its handler runs only when the main thread
    # wakes up, so wake up regularly.
    while not stop.wait(0.5):
        pass
    daemon.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
