"""One STOMP 1.2 client connection on the server side: the protocol state machine.

Transport-agnostic: it is given ``write``/``close`` callables and a ``call_later`` timer, all
used on the reactor thread. Protocol errors follow the STOMP specification: the server sends
an ERROR frame and closes the connection.

Heart-beats: the client's CONNECT says ``heart-beat:cx,cy`` (it can send every cx ms, wants
to receive every cy ms). We answer ``heart-beat:cy,cx`` with non-zero values raised to at
least 1000 ms, as VDSM does, then send an EOL whenever we have been silent for cy ms and
drop the connection when the client has been silent for twice cx ms.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from virthost import __version__
from virthost.rpc.stomp.broker import StompBroker
from virthost.rpc.stomp.frame import HEARTBEAT, Frame, FrameError, FrameParser, encode

log = logging.getLogger("virthost.stomp")

MIN_HEARTBEAT_MS = 1000
INCOMING_GRACE = 2.0


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


CallLater = Callable[[float, Callable[[], None]], TimerHandle]


class ProtocolError(Exception):
    """A client broke the protocol; the message goes into the ERROR frame."""


def _clamp(ms: int) -> int:
    return 0 if ms == 0 else max(ms, MIN_HEARTBEAT_MS)


def parse_heartbeat(value: str) -> tuple[int, int]:
    try:
        cx_text, cy_text = value.split(",")
        cx, cy = int(cx_text), int(cy_text)
    except ValueError:
        raise ProtocolError(f"Invalid heart-beat header {value!r}") from None
    if cx < 0 or cy < 0:
        raise ProtocolError(f"Invalid heart-beat header {value!r}")
    return cx, cy


class StompConnection:
    def __init__(
        self,
        broker: StompBroker,
        peer: str,
        write: Callable[[bytes], None],
        close: Callable[[], None],
        call_later: CallLater,
        max_frame_size: int,
        local_address: str = "",
    ) -> None:
        self.broker = broker
        self.peer = peer
        self.local_address = local_address
        self._write = write
        self._close = close
        self._call_later = call_later
        self._parser = FrameParser(max_frame_size=max_frame_size)
        self._connected = False
        self._closed = False
        self._subscriptions: dict[str, str] = {}  # sub id -> destination
        self._last_received = time.monotonic()
        self._last_sent = time.monotonic()
        self._timers: dict[str, TimerHandle] = {}
        self._handlers: dict[str, Callable[[Frame], None]] = {
            "CONNECT": self._cmd_connect,
            "STOMP": self._cmd_connect,
            "SEND": self._cmd_send,
            "SUBSCRIBE": self._cmd_subscribe,
            "UNSUBSCRIBE": self._cmd_unsubscribe,
            "ACK": self._cmd_ack,
            "NACK": self._cmd_ack,
            "DISCONNECT": self._cmd_disconnect,
        }  # "out" / "in" -> the pending timer

    # --- input -----------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._closed:
            return
        self._last_received = time.monotonic()
        failure: FrameError | None = None
        try:
            frames = self._parser.feed(data)
        except FrameError as e:
            frames, failure = e.frames or [], e
        self._handle_all(frames)
        if failure is not None:
            self._fail(f"Malformed frame: {failure}")

    def _handle_all(self, frames: list[Frame]) -> None:
        for frame in frames:
            if self._closed:
                return
            try:
                self._handle(frame)
            except ProtocolError as e:
                self._fail(str(e))
            except Exception:
                log.exception("error handling %s from %s", frame.command, self.peer)
                self._fail("Internal error")

    def _handle(self, frame: Frame) -> None:
        command = frame.command
        if not self._connected and command not in ("CONNECT", "STOMP"):
            raise ProtocolError(f"Expected CONNECT, got {command}")
        handler = self._handlers.get(command)
        if handler is None:
            raise ProtocolError(f"Unsupported command {command}")
        handler(frame)
        receipt = frame.headers.get("receipt")
        if receipt is not None and command not in ("CONNECT", "STOMP", "DISCONNECT"):
            self.send_frame(Frame("RECEIPT", {"receipt-id": receipt}))

    @staticmethod
    def _require(frame: Frame, *names: str) -> None:
        for name in names:
            if not frame.headers.get(name):
                raise ProtocolError(f"Missing header {name!r} in {frame.command}")

    def _cmd_connect(self, frame: Frame) -> None:
        if self._connected:
            raise ProtocolError("Already connected")
        versions = frame.headers.get("accept-version", "1.0").split(",")
        if "1.2" not in [v.strip() for v in versions]:
            raise ProtocolError("Version unsupported")
        cx, cy = parse_heartbeat(frame.headers.get("heart-beat", "0,0"))
        cx, cy = _clamp(cx), _clamp(cy)
        self._connected = True
        self.send_frame(
            Frame(
                "CONNECTED",
                {
                    "version": "1.2",
                    "heart-beat": f"{cy},{cx}",
                    "server": f"virthost/{__version__}",
                },
            )
        )
        if cy:
            self._schedule_outgoing(cy / 1000.0)
        if cx:
            self._schedule_incoming_check(cx / 1000.0 * INCOMING_GRACE)

    def _cmd_subscribe(self, frame: Frame) -> None:
        self._require(frame, "destination", "id")
        destination, sub_id = frame.headers["destination"], frame.headers["id"]
        old = self._subscriptions.pop(sub_id, None)
        if old is not None:
            self.broker.unsubscribe(self, old, sub_id)
        self._subscriptions[sub_id] = destination
        self.broker.subscribe(self, destination, sub_id)

    def _cmd_unsubscribe(self, frame: Frame) -> None:
        self._require(frame, "id")
        sub_id = frame.headers["id"]
        destination = self._subscriptions.pop(sub_id, None)
        if destination is None:
            raise ProtocolError(f"No subscription {sub_id!r}")
        self.broker.unsubscribe(self, destination, sub_id)

    def _cmd_send(self, frame: Frame) -> None:
        self._require(frame, "destination")
        if not self.broker.handle_send(self, frame):
            raise ProtocolError("Subscription not available")

    def _cmd_ack(self, frame: Frame) -> None:
        """Subscriptions are ack=auto; acknowledgements are accepted and have no effect."""

    def _cmd_disconnect(self, frame: Frame) -> None:
        receipt = frame.headers.get("receipt")
        if receipt is not None:
            self.send_frame(Frame("RECEIPT", {"receipt-id": receipt}))
        self.close()

    # --- output ----------------------------------------------------------------------

    def send_raw(self, data: bytes) -> None:
        if self._closed:
            return
        self._last_sent = time.monotonic()
        self._write(data)

    def send_frame(self, frame: Frame) -> None:
        self.send_raw(encode(frame))

    def _fail(self, message: str) -> None:
        log.info("closing STOMP connection from %s: %s", self.peer, message)
        self.send_frame(Frame("ERROR", {"message": message}, message.encode("utf-8")))
        self.close()

    def close(self) -> None:
        if self._closed:
            return
        self.connection_lost()
        self._close()

    def connection_lost(self) -> None:
        """The transport is gone: forget subscriptions and timers."""
        if self._closed:
            return
        self._closed = True
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for sub_id, destination in self._subscriptions.items():
            self.broker.unsubscribe(self, destination, sub_id)
        self._subscriptions.clear()

    # --- heart-beats -----------------------------------------------------------------

    def _schedule(self, kind: str, delay: float, func: Callable[[], None]) -> None:
        self._timers[kind] = self._call_later(delay, func)

    def _schedule_outgoing(self, interval: float) -> None:
        def beat() -> None:
            if self._closed:
                return
            if time.monotonic() - self._last_sent >= interval * 0.9:
                self.send_raw(HEARTBEAT)
            self._schedule_outgoing(interval)

        self._schedule("out", interval, beat)

    def _schedule_incoming_check(self, limit: float) -> None:
        def check() -> None:
            if self._closed:
                return
            silent = time.monotonic() - self._last_received
            if silent > limit:
                log.info("%s sent no heart-beat for %.1f s; closing", self.peer, silent)
                self.close()
                return
            self._schedule_incoming_check(limit)

        self._schedule("in", limit / 2, check)

    @property
    def closed(self) -> bool:
        return self._closed

    def info(self) -> dict[str, Any]:
        return {"peer": self.peer, "subscriptions": dict(self._subscriptions)}
