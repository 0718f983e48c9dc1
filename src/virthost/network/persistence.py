"""The host's network configuration on disk: running, safe, and an apply in progress.

Three JSON files under ``<state_dir>/netconf/``, each written atomically:

* ``running.json``: what the last successful setupNetworks left applied;
* ``safe.json``: what Host.setSafeNetworkConfig (or ``commitOnSuccess``) marked as the
  configuration to come back to; the host is "dirty" (``netConfigDirty``) while they differ;
* ``applying.json``: written before a change is applied and removed when it is settled
  (committed to running, or rolled back). Finding it at start-up means the daemon died in
  the middle of a change: the configuration it held before is the one to restore.

Why files of our own rather than reading the kernel back: the kernel's state has more in it
than we configured (addresses from elsewhere, links we do not own), and the engine's model is
the request it sent; restoring means re-applying a request, exactly as VDSM keeps its
RunningConfig and PersistentConfig.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from virthost.common import fileutils

log = logging.getLogger("virthost.network.persistence")

EMPTY: dict[str, Any] = {"networks": {}, "bonds": {}}


class NetConfigStore:
    """Running and safe network configurations, as canonical JSON dicts."""

    def __init__(self, state_dir: Path) -> None:
        self._dir = state_dir / "netconf"

    @property
    def directory(self) -> Path:
        return self._dir

    def _path(self, name: str) -> Path:
        return self._dir / f"{name}.json"

    def _read(self, name: str) -> dict[str, Any] | None:
        try:
            data = json.loads(self._path(name).read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            log.error("Unreadable %s: %s; ignoring it", self._path(name), e)
            return None
        if not isinstance(data, dict):
            log.error("%s does not hold an object; ignoring it", self._path(name))
            return None
        return data

    def _write(self, name: str, data: dict[str, Any]) -> None:
        self._dir.mkdir(parents=True, exist_ok=True)
        text = json.dumps(data, sort_keys=True, indent=1) + "\n"
        fileutils.atomic_write(self._path(name), text.encode(), 0o600)

    # --- running and safe ------------------------------------------------------------

    def running(self) -> dict[str, Any]:
        return self._read("running") or dict(EMPTY)

    def set_running(self, config: dict[str, Any]) -> None:
        self._write("running", config)

    def safe(self) -> dict[str, Any] | None:
        """The safe configuration, None when none was ever made safe."""
        return self._read("safe")

    def commit(self) -> None:
        """Make the running configuration the safe one (Host.setSafeNetworkConfig)."""
        self._write("safe", self.running())
        log.info("Network configuration made safe")

    def dirty(self) -> bool:
        """``netConfigDirty``: the running configuration is not the safe one."""
        safe = self.safe()
        return self.running() != (safe if safe is not None else EMPTY)

    # --- an apply in progress --------------------------------------------------------

    def begin(self, previous: dict[str, Any], desired: dict[str, Any]) -> None:
        self._write("applying", {"previous": previous, "desired": desired})

    def end(self) -> None:
        self._path("applying").unlink(missing_ok=True)

    def interrupted(self) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """(previous, desired) of an apply the daemon did not live to settle."""
        data = self._read("applying")
        if data is None:
            return None
        previous, desired = data.get("previous"), data.get("desired")
        if not isinstance(previous, dict) or not isinstance(desired, dict):
            log.error("Malformed %s; ignoring it", self._path("applying"))
            self.end()
            return None
        return previous, desired
