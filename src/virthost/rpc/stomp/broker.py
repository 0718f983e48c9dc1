"""The STOMP broker: subscriptions of all connections and the routing of messages.

Routing is VDSM's: a SEND is first forwarded as MESSAGE to every subscriber of its
destination or of any dot-separated parent (``a.b.c`` reaches subscriptions to ``a``,
``a.b`` and ``a.b.c``); when the destination is a request queue (or below one) its body is
a JSON-RPC request, whose answer goes to every subscriber of the request's ``reply-to``.
Events go to the subscribers of the event queue.

Everything here runs on the reactor thread; answers and events produced by other threads come
in through ``call_soon_threadsafe``.
"""

from __future__ import annotations

import functools
import itertools
import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import orjson

from virthost.rpc.events import Event
from virthost.rpc.jsonrpc import CallOrigin, JsonRpcServer
from virthost.rpc.stomp.frame import Frame, encode

if TYPE_CHECKING:
    from virthost.rpc.stomp.connection import StompConnection

log = logging.getLogger("virthost.stomp")

LEGACY_RESPONSE_DESTINATION = "/queue/_local/vdsm/reponses"  # sic: VDSM's spelling

CallSoon = Callable[..., Any]


@functools.lru_cache(maxsize=4096)
def parents(destination: str) -> tuple[str, ...]:
    """``a.b.c`` -> ``a``, ``a.b``, ``a.b.c``."""
    parts = destination.split(".")
    return tuple(".".join(parts[:i]) for i in range(1, len(parts) + 1))


@functools.lru_cache(maxsize=4096)
def message_head(destination: str, sub_id: str) -> bytes:
    """The constant part of a MESSAGE frame for one subscription, encoded once."""
    encoded = encode(
        Frame(
            "MESSAGE",
            {
                "destination": destination,
                "content-type": "application/json",
                "subscription": sub_id,
            },
        )
    )
    return encoded[: -len(b"\n\x00")]  # keep the header lines, drop the end of headers


class StompBroker:
    def __init__(
        self,
        jsonrpc: JsonRpcServer,
        call_soon_threadsafe: CallSoon,
        request_queues: Iterable[str],
        event_queue: str,
    ) -> None:
        self._jsonrpc = jsonrpc
        self._call_soon = call_soon_threadsafe
        self._request_queues = tuple(request_queues)
        self._request_destinations: dict[str, bool] = {}
        self.event_queue = event_queue
        # destination -> {(connection, subscription id)}
        self._subscribers: dict[str, set[tuple[StompConnection, str]]] = defaultdict(set)
        self._message_ids = itertools.count(1)
        self._reactor_thread = threading.get_ident()

    def bind_reactor_thread(self) -> None:
        """Called on the reactor thread: answers produced there need no thread hop."""
        self._reactor_thread = threading.get_ident()

    # --- subscriptions ---------------------------------------------------------------

    def subscribe(self, connection: StompConnection, destination: str, sub_id: str) -> None:
        self._subscribers[destination].add((connection, sub_id))

    def unsubscribe(self, connection: StompConnection, destination: str, sub_id: str) -> None:
        subs = self._subscribers.get(destination)
        if subs is None:
            return
        subs.discard((connection, sub_id))
        if not subs:
            del self._subscribers[destination]

    def subscription_count(self) -> int:
        return sum(len(s) for s in self._subscribers.values())

    # --- routing ---------------------------------------------------------------------

    def is_request_queue(self, destination: str) -> bool:
        known = self._request_destinations.get(destination)
        if known is None:
            known = any(
                destination == q or destination.startswith(q + ".") for q in self._request_queues
            )
            if len(self._request_destinations) < 4096:
                self._request_destinations[destination] = known
        return known

    def has_subscribers(self, destination: str) -> bool:
        return any(d in self._subscribers for d in parents(destination))

    def deliver(self, destination: str, body: bytes) -> int:
        """Send MESSAGE frames to every subscriber of ``destination`` or a parent of it."""
        delivered = 0
        tail = b"content-length:%d\n\n%b\x00" % (len(body), body)
        for dest in parents(destination):
            for connection, sub_id in tuple(self._subscribers.get(dest, ())):
                head = message_head(destination, sub_id)
                message_id = b"message-id:%d\n" % next(self._message_ids)
                connection.send_raw(head + message_id + tail)
                delivered += 1
        return delivered

    def handle_send(self, connection: StompConnection, frame: Frame) -> bool:
        """Route a SEND; False when nobody can take it (the caller answers ERROR)."""
        destination = frame.headers["destination"]
        forwarded = (
            self.deliver(destination, frame.body) if self.has_subscribers(destination) else 0
        )
        if self.is_request_queue(destination):
            reply_to = frame.headers.get("reply-to") or LEGACY_RESPONSE_DESTINATION
            origin = CallOrigin(
                connection.peer, frame.headers.get("ovirtCorrelationId"), connection.local_address
            )

            def respond(answer: bytes) -> None:
                if threading.get_ident() == self._reactor_thread:
                    self.deliver(reply_to, answer)  # a fast verb, answered on the reactor
                else:
                    self._call_soon(self.deliver, reply_to, answer)

            self._jsonrpc.handle(frame.body, origin, respond)
            return True
        return forwarded > 0

    def publish_event(self, event: Event) -> None:
        """Event bus listener: may be called from any thread."""
        body = orjson.dumps(event.to_jsonrpc())
        self._call_soon(self.deliver, self.event_queue, body)
