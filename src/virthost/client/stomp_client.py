"""A blocking STOMP 1.2 client connection, with one I/O thread per connection.

Why one thread does all socket I/O: an ``ssl.SSLSocket`` must not be read and written from two
threads at once (OpenSSL objects are not safe for concurrent use), yet callers send from any
thread while responses and events arrive at any time. So callers only append encoded frames to
an outbound buffer and wake the I/O thread through a socket pair; the I/O thread multiplexes
reading, writing, outgoing heart-beats and the incoming-silence deadline with a selector on a
non-blocking socket. Incoming frames are dispatched on the I/O thread: subscription callbacks
must return quickly and must not wait for other frames (the JSON-RPC layer only files them).

Heart-beats follow STOMP 1.2: CONNECT offers ``heart-beat:<outgoing>,<incoming>``; with the
server's ``<sx>,<sy>`` we send a lone EOL once the line was idle for 80% of ``max(outgoing, sy)``
(so it arrives on time despite jitter), and declare the connection dead when nothing at all
arrived for ``max(sx, incoming)`` plus half that again. Zero on either side disables a direction.

Failures (EOF, socket errors, an ERROR frame, heart-beat silence) are final: the connection is
closed, the exception is kept in :attr:`StompConnection.failure`, and every close listener is
called with it so pending callers wake up with an error instead of waiting for their timeout.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Final

from virthost.client import errors
from virthost.rpc.stomp.frame import HEARTBEAT, Frame, FrameError, FrameParser, encode

log = logging.getLogger("virthost.client.stomp")

FrameCallback = Callable[[Frame], None]
CloseListener = Callable[[errors.ConnectionError], None]

SEND_EARLY_FACTOR: Final = 0.8  # send a heart-beat after this share of the interval
SILENCE_GRACE_FACTOR: Final = 0.5  # tolerate this share of the interval on top of it
_IO_CHUNK: Final = 256 * 1024
_WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


def open_connection(
    host: str,
    port: int,
    *,
    ssl_context: ssl.SSLContext | None = None,
    timeout: float = 60.0,
    incoming_heartbeat: int = 30000,
    outgoing_heartbeat: int = 0,
) -> StompConnection:
    """Connect over TCP (and TLS when ``ssl_context`` is given) and log in with CONNECT."""
    where = f"{host}:{port}"
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise errors.ConnectionError(f"cannot connect to {where}: {exc}") from exc
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if ssl_context is not None:
            sock = ssl_context.wrap_socket(sock, server_hostname=host)
    except (OSError, ValueError) as exc:
        sock.close()
        raise errors.ConnectionError(f"TLS handshake with {where} failed: {exc}") from exc
    return StompConnection(
        sock,
        host=host,
        timeout=timeout,
        incoming_heartbeat=incoming_heartbeat,
        outgoing_heartbeat=outgoing_heartbeat,
        name=where,
    )


class StompConnection:
    """One logged-in STOMP 1.2 session over a connected (and handshaken) socket."""

    def __init__(
        self,
        sock: socket.socket,
        *,
        host: str,
        timeout: float = 60.0,
        incoming_heartbeat: int = 30000,
        outgoing_heartbeat: int = 0,
        name: str = "",
    ) -> None:
        if incoming_heartbeat < 0 or outgoing_heartbeat < 0:
            raise ValueError("heart-beat intervals must not be negative")
        self.name = name or host
        self._sock = sock
        self._parser = FrameParser()
        self._lock = threading.Lock()
        self._out = bytearray()
        self._subscriptions: dict[str, tuple[str, FrameCallback]] = {}
        self._receipts: dict[str, threading.Event] = {}
        self._close_listeners: list[CloseListener] = []
        self._failure: errors.ConnectionError | None = None
        self._connected = threading.Event()
        self._send_interval = 0.0  # seconds; 0 = we send no heart-beats
        self._silence_limit = 0.0  # seconds; 0 = we do not watch for silence
        self._last_send = self._last_recv = time.monotonic()
        self._write_needs_read = False
        #: The negotiated heart-beat intervals in ms: (we send every, we expect every).
        self.heartbeat = (0, 0)
        self.server_headers: dict[str, str] = {}
        self._offer = (outgoing_heartbeat, incoming_heartbeat)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_w.setblocking(False)
        sock.setblocking(False)
        self._thread = threading.Thread(target=self._run, name=f"stomp-io {self.name}", daemon=True)
        self._thread.start()
        beat = f"{outgoing_heartbeat},{incoming_heartbeat}"
        self.send_frame(
            Frame("CONNECT", {"accept-version": "1.2", "host": host, "heart-beat": beat})
        )
        if not self._connected.wait(timeout):
            self.close()
            raise errors.ConnectionError(f"no CONNECTED from {self.name} within {timeout} s")
        if self._failure is not None:
            self.close()
            raise self._failure

    # -- public API --------------------------------------------------------------------------

    @property
    def failure(self) -> errors.ConnectionError | None:
        """Why the connection ended, or None while it is alive."""
        return self._failure

    @property
    def closed(self) -> bool:
        return self._failure is not None

    def add_close_listener(self, listener: CloseListener) -> None:
        """Call ``listener(exc)`` once when the connection ends (at once if it already did)."""
        with self._lock:
            failure = self._failure
            if failure is None:
                self._close_listeners.append(listener)
        if failure is not None:
            listener(failure)

    def subscribe(
        self,
        destination: str,
        callback: FrameCallback,
        *,
        sub_id: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> str:
        """SUBSCRIBE (ack auto); MESSAGE frames for it go to ``callback`` on the I/O thread."""
        sub_id = sub_id or str(uuid.uuid4())
        with self._lock:
            if sub_id in self._subscriptions:
                raise errors.ClientError(f"subscription id {sub_id!r} is already in use")
            self._subscriptions[sub_id] = (destination, callback)
        frame_headers = {**(headers or {}), "destination": destination, "id": sub_id}
        frame_headers.setdefault("ack", "auto")
        try:
            self.send_frame(Frame("SUBSCRIBE", frame_headers))
        except errors.Error:
            with self._lock:
                self._subscriptions.pop(sub_id, None)
            raise
        return sub_id

    def unsubscribe(self, sub_id: str) -> None:
        with self._lock:
            if self._subscriptions.pop(sub_id, None) is None:
                raise errors.ClientError(f"no subscription with id {sub_id!r}")
        self.send_frame(Frame("UNSUBSCRIBE", {"id": sub_id}))

    def send(self, destination: str, body: bytes, headers: Mapping[str, str] | None = None) -> None:
        """SEND ``body`` to ``destination`` (content-length is added by the codec)."""
        self.send_frame(Frame("SEND", {"destination": destination, **(headers or {})}, body))

    def send_frame(self, frame: Frame) -> None:
        """Queue ``frame`` for the I/O thread; raises ConnectionError once the link is gone."""
        try:
            data = encode(frame)
        except FrameError as exc:
            raise errors.ClientError(f"cannot encode {frame.command} frame: {exc}") from exc
        self._enqueue(data)

    def disconnect(self, timeout: float = 5.0) -> None:
        """DISCONNECT politely (waiting up to ``timeout`` for the RECEIPT), then close."""
        receipt = str(uuid.uuid4())
        done = threading.Event()
        with self._lock:
            self._receipts[receipt] = done
        with contextlib.suppress(errors.Error):  # already gone: just clean up
            self.send_frame(Frame("DISCONNECT", {"receipt": receipt}))
            done.wait(timeout)
        self.close()

    def close(self) -> None:
        """Close at once (no DISCONNECT); idempotent, safe from any thread."""
        self._fail(errors.ConnectionError(f"connection to {self.name} closed"))
        if threading.current_thread() is not self._thread:
            self._thread.join()

    # -- callers' side of the I/O thread ---------------------------------------------------

    def _enqueue(self, data: bytes) -> None:
        with self._lock:
            if self._failure is not None:
                raise errors.ConnectionError(str(self._failure))
            self._out += data
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    def _fail(self, exc: errors.ConnectionError) -> None:
        with self._lock:
            if self._failure is not None:
                return
            self._failure = exc
            listeners, self._close_listeners = self._close_listeners, []
            receipts = list(self._receipts.values())
        log.debug("%s: connection ended: %s", self.name, exc)
        self._connected.set()
        for event in receipts:
            event.set()
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        for listener in listeners:
            try:
                listener(exc)
            except Exception:
                log.exception("%s: close listener failed", self.name)

    # -- the I/O thread ------------------------------------------------------------------------

    def _run(self) -> None:
        selector = selectors.DefaultSelector()
        try:
            selector.register(self._wake_r, selectors.EVENT_READ)
            selector.register(self._sock, selectors.EVENT_READ)
            while self._failure is None:
                self._loop_once(selector)
        except OSError as exc:
            self._fail(errors.ConnectionError(f"connection to {self.name} failed: {exc}"))
        except Exception as exc:
            log.exception("%s: I/O thread crashed", self.name)
            self._fail(errors.ConnectionError(f"connection to {self.name} failed: {exc!r}"))
        finally:
            selector.close()
            for sock in (self._sock, self._wake_r, self._wake_w):
                with contextlib.suppress(OSError):
                    sock.close()

    def _loop_once(self, selector: selectors.BaseSelector) -> None:
        now = time.monotonic()
        timeout = self._check_heartbeats(now)
        with self._lock:
            want_write = bool(self._out) and not self._write_needs_read
        mask = selectors.EVENT_READ | (selectors.EVENT_WRITE if want_write else 0)
        selector.modify(self._sock, mask)
        for key, events in selector.select(timeout):
            if key.fileobj is self._wake_r:
                with contextlib.suppress(*_WOULD_BLOCK):
                    self._wake_r.recv(4096)
            elif events & selectors.EVENT_READ:
                self._write_needs_read = False
                self._read()
        if self._failure is None:
            self._write()

    def _check_heartbeats(self, now: float) -> float | None:
        """Queue a heart-beat or fail on silence; return how long the selector may sleep."""
        deadlines: list[float] = []
        if self._silence_limit:
            due = self._last_recv + self._silence_limit
            if now >= due:
                silence = f"{self._silence_limit:.1f} s"
                self._fail(errors.ConnectionError(f"no heart-beat from {self.name} for {silence}"))
                return 0.0
            deadlines.append(due)
        if self._send_interval:
            due = self._last_send + self._send_interval * SEND_EARLY_FACTOR
            with self._lock:
                idle = not self._out
                if idle and now >= due:
                    self._out += HEARTBEAT
            if idle and now < due:
                deadlines.append(due)
        return max(0.0, min(deadlines) - now) if deadlines else None

    def _read(self) -> None:
        chunks: list[bytes] = []
        eof = False
        while True:
            try:
                data = self._sock.recv(_IO_CHUNK)
            except _WOULD_BLOCK:
                break
            if not data:
                eof = True
                break
            chunks.append(data)
        if chunks:
            self._last_recv = time.monotonic()
            try:
                frames = self._parser.feed(b"".join(chunks))
            except FrameError as exc:
                for frame in exc.frames:
                    self._dispatch(frame)
                self._fail(errors.ConnectionError(f"bad STOMP data from {self.name}: {exc}"))
                return
            for frame in frames:
                if self._failure is None:
                    self._dispatch(frame)
        if eof:
            self._fail(errors.ConnectionError(f"connection closed by {self.name}"))

    def _write(self) -> None:
        with self._lock:
            while self._out:
                try:
                    sent = self._sock.send(self._out[:_IO_CHUNK])
                except ssl.SSLWantReadError:
                    self._write_needs_read = True
                    return
                except _WOULD_BLOCK:
                    return
                del self._out[:sent]
                self._last_send = time.monotonic()

    # -- dispatch (I/O thread) -------------------------------------------------------------

    def _dispatch(self, frame: Frame) -> None:
        if frame.command == "MESSAGE":
            self._on_message(frame)
        elif frame.command == "RECEIPT":
            with self._lock:
                event = self._receipts.pop(frame.headers.get("receipt-id", ""), None)
            if event is not None:
                event.set()
        elif frame.command == "CONNECTED":
            self._on_connected(frame)
        elif frame.command == "ERROR":
            message = frame.headers.get("message", "") or frame.body.decode("utf-8", "replace")
            self._fail(errors.StompError(message, frame.body))
        else:
            log.warning("%s: ignoring unexpected %s frame", self.name, frame.command)

    def _on_connected(self, frame: Frame) -> None:
        if self._connected.is_set():
            log.warning("%s: ignoring a second CONNECTED frame", self.name)
            return
        version = frame.headers.get("version", "1.2")
        if version != "1.2":
            self._fail(errors.ConnectionError(f"{self.name} speaks STOMP {version}, not 1.2"))
            return
        try:
            send_ms, recv_ms = negotiate_heartbeat(
                self._offer, frame.headers.get("heart-beat", "0,0")
            )
        except ValueError:
            self._fail(errors.ConnectionError(f"bad heart-beat header from {self.name}"))
            return
        self.heartbeat = (send_ms, recv_ms)
        self._send_interval = send_ms / 1000
        self._silence_limit = recv_ms / 1000 * (1 + SILENCE_GRACE_FACTOR)
        self._last_recv = time.monotonic()
        self.server_headers = dict(frame.headers)
        self._connected.set()

    def _on_message(self, frame: Frame) -> None:
        sub_id = frame.headers.get("subscription", "")
        with self._lock:
            entry = self._subscriptions.get(sub_id)
            if entry is None:  # tolerate servers that omit the subscription header
                destination = frame.headers.get("destination")
                entry = next((e for e in self._subscriptions.values() if e[0] == destination), None)
        if entry is None:
            log.debug("%s: MESSAGE for unknown subscription %r dropped", self.name, sub_id)
            return
        try:
            entry[1](frame)
        except Exception:
            log.exception("%s: subscription callback failed", self.name)


def negotiate_heartbeat(offer: tuple[int, int], server_value: str) -> tuple[int, int]:
    """(send every, expect every) in ms from our CONNECT offer and the CONNECTED header."""
    first, sep, second = server_value.partition(",")
    if not sep or not first.strip().isdigit() or not second.strip().isdigit():
        raise ValueError(f"bad heart-beat value {server_value!r}")
    server_out, server_in = int(first), int(second)
    our_out, our_in = offer
    send_ms = max(our_out, server_in) if our_out and server_in else 0
    recv_ms = max(our_in, server_out) if our_in and server_out else 0
    return send_ms, recv_ms
