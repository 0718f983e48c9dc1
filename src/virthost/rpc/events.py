"""The events bus: any subsystem publishes ``|namespace|event|id`` notifications.

Publishing never blocks the publisher: listeners (the STOMP broker, tests) must only hand the
event over to their own thread. ``notify_time`` is added here, as VDSM does: monotonic
milliseconds, so clients can order events of one host.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("virthost.events")


@dataclass(frozen=True)
class Event:
    name: str
    params: dict[str, Any]

    def to_jsonrpc(self) -> dict[str, Any]:
        return {"jsonrpc": "2.0", "method": self.name, "params": self.params}


Listener = Callable[[Event], None]


def event_name(namespace: str, event: str, ident: str) -> str:
    """VDSM's event id, e.g. ``|virt|VM_status|<vmId>``."""
    return f"|{namespace}|{event}|{ident}"


def notify_time() -> int:
    return int(time.monotonic() * 1000)


class EventBus:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: tuple[Listener, ...] = ()

    def add_listener(self, listener: Listener) -> None:
        with self._lock:
            self._listeners = (*self._listeners, listener)

    def remove_listener(self, listener: Listener) -> None:
        with self._lock:
            self._listeners = tuple(x for x in self._listeners if x is not listener)

    def publish(self, name: str, params: dict[str, Any]) -> Event:
        event = Event(name, {**params, "notify_time": notify_time()})
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                log.exception("event listener %r failed on %s", listener, name)
        return event
