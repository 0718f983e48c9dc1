"""``|net|host_conn|no_id`` events: tell the engine when the host's links change.

The engine refreshes its view of the host's networks (Host.getNetworkCapabilities) when it
gets this event, instead of polling. A thread listens to the kernel's link notifications
(rtnetlink multicast, which needs no privilege) and publishes one event per burst: a single
setupNetworks or a flapping cable produces many notifications in a row, and the engine needs
only to know that something changed, so events are at most one per ``quiet`` seconds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("virthost.network.events")

EVENT = "|net|host_conn|no_id"
DEFAULT_QUIET = 1.0
RTMGRP_LINK = 1
RECEIVE_TIMEOUT = 1.0


class LinkEvents:
    """Publishes EVENT (through ``publish(name, params)``) when links appear, go or change."""

    def __init__(
        self,
        publish: Callable[[str, dict[str, Any]], Any],
        quiet: float = DEFAULT_QUIET,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._publish = publish
        self._quiet = quiet
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last: float | None = None
        self._pending = False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="net/links", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(RECEIVE_TIMEOUT * 3)

    def changed(self) -> None:
        """One kernel notification; publishes now, or once the quiet period ends."""
        now = self._clock()
        if self._last is not None and now - self._last < self._quiet:
            self._pending = True
            return
        self._emit(now)

    def tick(self) -> None:
        """Publish a change held back during the quiet period, once it is over."""
        if self._pending and self._last is not None and self._clock() - self._last >= self._quiet:
            self._emit(self._clock())

    def _emit(self, now: float) -> None:
        self._last, self._pending = now, False
        try:
            self._publish(EVENT, {})
        except Exception:
            log.exception("Cannot publish %s", EVENT)

    def _run(self) -> None:
        try:
            from pyroute2 import IPRoute  # type: ignore[import-untyped]
        except ImportError:
            log.warning("pyroute2 is missing: no %s events", EVENT)
            return
        while not self._stop.is_set():
            try:
                with IPRoute() as ipr:
                    ipr.bind(groups=RTMGRP_LINK)
                    ipr.settimeout(RECEIVE_TIMEOUT)
                    self._listen(ipr)
            except Exception as e:
                log.warning("Link notifications failed (%s); listening again", e)
                self._stop.wait(RECEIVE_TIMEOUT)

    def _listen(self, ipr: Any) -> None:
        while not self._stop.is_set():
            try:
                messages = ipr.get()
            except TimeoutError:
                messages = []
            if any(m.get("event") in ("RTM_NEWLINK", "RTM_DELLINK") for m in messages):
                self.changed()
            self.tick()
