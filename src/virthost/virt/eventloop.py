"""libvirt's event loop on its own thread, ``libvirt/events``.

libvirt delivers domain events and runs connection keep-alives only through an event loop
the application provides. The default implementation is registered once per process, before
any connection is opened, and driven by one thread for the life of the daemon. Callbacks run
on that thread: they must only update memory and hand slower work to an executor; calling
back into libvirt from there would stall every other event.
"""

from __future__ import annotations

import logging
import threading

import libvirt

log = logging.getLogger("virthost.libvirt.events")

_lock = threading.Lock()
_thread: threading.Thread | None = None


def _run() -> None:
    while True:
        try:
            libvirt.virEventRunDefaultImpl()
        except Exception:
            log.exception("libvirt event loop iteration failed")


def start() -> None:
    """Register the default implementation and start its thread (idempotent)."""
    global _thread
    with _lock:
        if _thread is not None:
            return
        libvirt.virEventRegisterDefaultImpl()
        _thread = threading.Thread(target=_run, name="libvirt/events", daemon=True)
        _thread.start()
        log.info("libvirt event loop running")


def running() -> bool:
    return _thread is not None
