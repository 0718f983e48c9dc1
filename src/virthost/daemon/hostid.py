"""The host's stable identity (``uuid`` in Host.getCapabilities).

Taken once and kept in ``<state_dir>/host.id``: the firmware's system UUID when the
supervisor can read it, else a random one. Keeping it in a file means the engine sees the
same host across restarts even where the firmware has no UUID (VDSM's vdsm.id does the same).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from pathlib import Path

from virthost.common.fileutils import atomic_write_text

log = logging.getLogger("virthost.daemon")


def load_or_create(state_dir: Path, firmware_uuid: Callable[[], str | None]) -> str:
    path = state_dir / "host.id"
    try:
        text = path.read_text().strip()
        return str(uuid.UUID(text))
    except FileNotFoundError:
        pass
    except ValueError:
        log.warning("%s holds no valid UUID; choosing a new one", path)
    chosen: str | None = None
    try:
        chosen = firmware_uuid()
    except Exception as e:
        log.info("no firmware UUID (%s)", e)
    try:
        host_id = str(uuid.UUID(chosen)) if chosen else str(uuid.uuid4())
    except ValueError:
        host_id = str(uuid.uuid4())
    atomic_write_text(path, host_id + "\n")
    log.info("host id %s stored in %s", host_id, path)
    return host_id
