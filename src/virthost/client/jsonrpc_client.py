"""JSON-RPC 2.0 over a STOMP connection, the way VDSM's clients talk to it.

Requests are SEND frames to ``jms.topic.vdsm_requests`` carrying ``reply-to: <destination>``;
the server publishes each response as a MESSAGE to *every* subscription of that destination.
Hence the client subscribes to a fresh random-UUID destination before its first request (frames
are processed in order, so no receipt is needed) and matches responses to callers by the
JSON-RPC ``id``. Events are JSON-RPC notifications (a ``method``, no ``id``) published to
``jms.queue.events`` (or any destination the caller subscribes to).

Threading: response matching runs on the connection's I/O thread and only files the response
and wakes the waiting caller. Event callbacks may be slow or even call back into the client, so
they never run on the I/O thread: they are handed to one event thread per client, in arrival
order. A ``queue.Queue`` given as sink receives :class:`Event` tuples directly.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, NamedTuple

from virthost.client import errors
from virthost.client.stomp_client import StompConnection
from virthost.rpc.stomp.frame import Frame

log = logging.getLogger("virthost.client.jsonrpc")

REQUEST_QUEUE: Final = "jms.topic.vdsm_requests"
EVENT_QUEUE: Final = "jms.queue.events"
FLOW_ID_HEADER: Final = "ovirtCorrelationId"

Params = Mapping[str, Any] | Sequence[Any] | None


class Event(NamedTuple):
    """One notification from the server: the event id (its ``method``) and its ``params``."""

    method: str
    params: Any


EventSink = Callable[[Event], None] | queue.Queue[Event]


class _Waiter:
    """Collects the responses for the ids of one call or batch."""

    def __init__(self, ids: Sequence[str]) -> None:
        self.ids = ids
        self.responses: dict[str, dict[str, Any]] = {}
        self.error: errors.Error | None = None
        self.done = threading.Event()

    def deliver(self, request_id: str, response: dict[str, Any]) -> None:
        self.responses[request_id] = response
        if len(self.responses) == len(self.ids):
            self.done.set()

    def fail(self, error: errors.Error) -> None:
        self.error = error
        self.done.set()


class JsonRpcClient:
    """Calls and event subscriptions over one :class:`StompConnection` (which it owns)."""

    def __init__(self, connection: StompConnection, *, request_queue: str = REQUEST_QUEUE) -> None:
        self.connection = connection
        self.request_queue = request_queue
        self.reply_to = str(uuid.uuid4())
        self._lock = threading.Lock()
        self._pending: dict[str, _Waiter] = {}
        self._event_sinks: dict[str, EventSink] = {}
        self._callbacks: queue.SimpleQueue[tuple[Callable[[Event], None], Event] | None] = (
            queue.SimpleQueue()
        )
        self._event_thread: threading.Thread | None = None
        connection.add_close_listener(self._on_close)
        connection.subscribe(self.reply_to, self._on_reply)

    # -- calls -------------------------------------------------------------------------------

    def call(
        self, method: str, params: Params = None, timeout: float = 60.0, flow_id: str | None = None
    ) -> Any:
        """Invoke ``method``; return its result or raise ServerError / TimeoutError / ..."""
        request = _request(method, params)
        response = self._exchange([request], request, timeout, flow_id, method)[0]
        return _result(response)

    def batch(
        self,
        calls: Sequence[tuple[str, Params]],
        timeout: float = 60.0,
        flow_id: str | None = None,
    ) -> list[Any]:
        """Send several calls as one JSON-RPC batch; results in call order.

        A failed call does not spoil the others: its place in the list holds the
        :class:`~virthost.client.errors.ServerError` instead of a result.
        """
        if not calls:
            return []
        requests = [_request(method, params) for method, params in calls]
        what = f"batch of {len(requests)} calls"
        responses = self._exchange(requests, requests, timeout, flow_id, what)
        out: list[Any] = []
        for response in responses:
            try:
                out.append(_result(response))
            except errors.ServerError as exc:
                out.append(exc)
        return out

    def _exchange(
        self,
        requests: list[dict[str, Any]],
        payload: object,
        timeout: float,
        flow_id: str | None,
        what: str,
    ) -> list[dict[str, Any]]:
        ids = [request["id"] for request in requests]
        waiter = _Waiter(ids)
        try:
            body = json.dumps(payload).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise errors.ClientError(f"cannot encode the parameters of {what}: {exc}") from exc
        headers = {"reply-to": self.reply_to, "content-type": "application/json"}
        if flow_id is not None:
            headers[FLOW_ID_HEADER] = flow_id
        with self._lock:
            for request_id in ids:
                self._pending[request_id] = waiter
        try:
            self.connection.send(self.request_queue, body, headers)
            waiter.done.wait(timeout)
        finally:
            with self._lock:
                for request_id in ids:
                    self._pending.pop(request_id, None)
        if len(waiter.responses) < len(ids):  # a complete answer wins over a late failure
            if waiter.error is not None:
                raise waiter.error
            raise errors.TimeoutError(f"no response to {what} within {timeout:g} s")
        return [waiter.responses[request_id] for request_id in ids]

    def _on_reply(self, frame: Frame) -> None:
        try:
            message = json.loads(frame.body)
        except ValueError:
            log.warning("undecodable response on %s dropped", self.reply_to)
            return
        for response in message if isinstance(message, list) else [message]:
            if not isinstance(response, dict):
                log.warning("malformed response dropped: %.200r", response)
                continue
            request_id = response.get("id")
            with self._lock:
                waiter = self._pending.get(request_id) if isinstance(request_id, str) else None
            if waiter is not None and isinstance(request_id, str):
                waiter.deliver(request_id, response)
            elif "method" in response and "id" not in response:
                self._deliver_event(self.reply_to, response)
            else:
                log.warning("response to unknown request %r dropped: %.200r", request_id, response)

    # -- events ------------------------------------------------------------------------------

    def subscribe(self, sink: EventSink, destination: str = EVENT_QUEUE) -> str:
        """Deliver the notifications published to ``destination`` to ``sink``; return the id."""
        sub_id = str(uuid.uuid4())
        with self._lock:
            self._event_sinks[sub_id] = sink
        try:
            self.connection.subscribe(
                destination, lambda frame: self._on_event(sub_id, frame), sub_id=sub_id
            )
        except errors.Error:
            with self._lock:
                self._event_sinks.pop(sub_id, None)
            raise
        return sub_id

    def unsubscribe(self, sub_id: str) -> None:
        with self._lock:
            self._event_sinks.pop(sub_id, None)
        self.connection.unsubscribe(sub_id)

    def _on_event(self, sub_id: str, frame: Frame) -> None:
        try:
            message = json.loads(frame.body)
        except ValueError:
            log.warning("undecodable event dropped")
            return
        for item in message if isinstance(message, list) else [message]:
            if isinstance(item, dict) and isinstance(item.get("method"), str):
                self._deliver_event(sub_id, item)
            else:
                log.warning("malformed event dropped: %.200r", item)

    def _deliver_event(self, sub_id: str, message: dict[str, Any]) -> None:
        event = Event(message["method"], message.get("params"))
        with self._lock:
            sink = self._event_sinks.get(sub_id)
            if sink is None:
                return
            if not isinstance(sink, queue.Queue) and self._event_thread is None:
                self._event_thread = threading.Thread(
                    target=self._run_callbacks, name="jsonrpc-events", daemon=True
                )
                self._event_thread.start()
        if isinstance(sink, queue.Queue):
            sink.put(event)
        else:
            self._callbacks.put((sink, event))

    def _run_callbacks(self) -> None:
        while (item := self._callbacks.get()) is not None:
            callback, event = item
            try:
                callback(event)
            except Exception:
                log.exception("event callback failed for %s", event.method)

    # -- lifetime ----------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self.connection.closed

    def close(self, timeout: float = 5.0) -> None:
        """Disconnect politely; pending calls fail with ConnectionError."""
        self.connection.disconnect(timeout)

    def _on_close(self, exc: errors.ConnectionError) -> None:
        with self._lock:
            waiters = set(self._pending.values())
            self._pending.clear()
        for waiter in waiters:
            waiter.fail(exc)
        self._callbacks.put(None)


def _request(method: str, params: Params) -> dict[str, Any]:
    if params is None:
        params = {}
    elif not isinstance(params, Mapping | Sequence) or isinstance(params, str | bytes):
        raise errors.ClientError(f"{method}: params must be an object or an array")
    return {
        "jsonrpc": "2.0",
        "method": method,
        "params": dict(params) if isinstance(params, Mapping) else list(params),
        "id": str(uuid.uuid4()),
    }


def _result(response: dict[str, Any]) -> Any:
    if "error" not in response:
        if "result" not in response:
            raise errors.ServerError(-32603, "response carries neither result nor error")
        return response["result"]
    error = response["error"]
    if not isinstance(error, dict):
        raise errors.ServerError(-32603, f"malformed error object: {error!r:.200}")
    code = error.get("code")
    return_code = code if isinstance(code, int) else -32603
    raise errors.ServerError(return_code, str(error.get("message", "")), error.get("data"))
