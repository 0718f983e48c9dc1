"""STOMP 1.2 frames: the data type, the encoder and an incremental parser.

Both ends of the wire (our server and our client) share this module, so it is pure: it never
touches a socket and never blocks. The server feeds whatever ``recv()`` returned into a
:class:`FrameParser` and gets whole frames back; the client does the same. Keeping the codec
free of I/O lets the tests split a byte stream at every possible boundary.

Decisions taken from the STOMP 1.2 specification:

* A frame is ``COMMAND EOL *(header EOL) EOL body NUL *(EOL)`` where EOL is LF or CR LF.
  EOLs between frames are heart-beats; the parser counts them in :attr:`FrameParser.heartbeats`.
* Header names and values are UTF-8 and escaped (``\\\\``, ``\\n``, ``\\r``, ``\\c``) in every
  frame except CONNECT and CONNECTED, which stay unescaped for STOMP 1.0 compatibility. In
  those two a value may therefore contain raw colons (the line splits at the first one); in all
  other frames a raw colon inside a value, or an undefined escape such as ``\\t``, is a fatal
  protocol error.
* When a header repeats, the first occurrence wins.
* ``content-length`` says how many body octets follow (the body may then contain NUL); without
  it the body runs to the first NUL. The encoder always writes it for a non-empty body.
* An unknown command *word* is not a framing error: the parser returns the frame and the server
  answers with an ERROR frame. A command line that is not an upper-case word is an error.

Limits protect a server from a hostile peer: the header section plus the body may not exceed
``max_frame_size`` octets and a frame may not carry more than ``max_header_count`` header lines.
Both are checked while the data arrives, so the parser never buffers more than one limit's worth.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

__all__ = [
    "COMMANDS",
    "HEARTBEAT",
    "UNESCAPED_COMMANDS",
    "Frame",
    "FrameError",
    "FrameParser",
    "encode",
]

HEARTBEAT: Final = b"\n"

#: Every command STOMP 1.2 defines, client and server frames together.
COMMANDS: Final = frozenset(
    {
        "CONNECT",
        "STOMP",
        "CONNECTED",
        "SEND",
        "SUBSCRIBE",
        "UNSUBSCRIBE",
        "ACK",
        "NACK",
        "BEGIN",
        "COMMIT",
        "ABORT",
        "DISCONNECT",
        "MESSAGE",
        "RECEIPT",
        "ERROR",
    }
)

#: Frames whose headers are sent verbatim (no escaping), as the specification requires.
UNESCAPED_COMMANDS: Final = frozenset({"CONNECT", "CONNECTED"})

_COMMAND_RE: Final = re.compile(rb"[A-Z]+")
_COMMAND_STR_RE: Final = re.compile(r"[A-Z]+")
_DIGITS_RE: Final = re.compile(r"[0-9]+")
_ESCAPES: Final = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", ":": "\\c"}
_UNESCAPES: Final = {"\\": "\\", "n": "\n", "r": "\r", "c": ":"}
_ESCAPE_RE: Final = re.compile(r"[\\\n\r:]")


class FrameError(ValueError):
    """The byte stream is not valid STOMP 1.2; the connection cannot be used any more.

    ``frames`` holds the frames completed by the same :meth:`FrameParser.feed` call before the
    error was found, so a server may still act on them (for instance answer a DISCONNECT).
    """

    def __init__(self, message: str, frames: list[Frame] | None = None) -> None:
        super().__init__(message)
        self.frames: list[Frame] = frames if frames is not None else []


@dataclass
class Frame:
    command: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def _escape(text: str) -> str:
    return _ESCAPE_RE.sub(lambda m: _ESCAPES[m.group()], text)


def _encode_header(command: str, name: str, value: str) -> bytes:
    if not name:
        raise FrameError(f"{command}: empty header name")
    if command in UNESCAPED_COMMANDS:
        if ":" in name or any(c in "\r\n" for c in name + value):
            raise FrameError(f"{command}: header {name!r} cannot be sent without escaping")
        return f"{name}:{value}\n".encode()
    return f"{_escape(name)}:{_escape(value)}\n".encode()


def encode(frame: Frame) -> bytes:
    """The wire form of ``frame``; ``content-length`` is set from the body (dropped if empty)."""
    command = frame.command
    if _COMMAND_STR_RE.fullmatch(command) is None:
        raise FrameError(f"invalid command {command!r}")
    parts = [command.encode("ascii"), b"\n"]
    for name, value in frame.headers.items():
        if name != "content-length":
            parts.append(_encode_header(command, name, value))
    if frame.body:
        parts.append(_encode_header(command, "content-length", str(len(frame.body))))
    parts += [b"\n", frame.body, b"\0"]
    return b"".join(parts)


def _unescape(text: str) -> str:
    if "\\" not in text:
        return text
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1 : i + 2]
        if nxt not in _UNESCAPES:
            raise FrameError(f"undefined escape sequence {text[i : i + 2]!r}")
        out.append(_UNESCAPES[nxt])
        i += 2
    return "".join(out)


def _parse_header(command: str, line: bytes) -> tuple[str, str]:
    if b"\r" in line:
        raise FrameError("raw carriage return in a header line")
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FrameError(f"header line is not UTF-8: {exc}") from None
    name, sep, value = text.partition(":")
    if not sep:
        raise FrameError(f"header line without a colon: {text[:80]!r}")
    if not name:
        raise FrameError(f"header line without a name: {text[:80]!r}")
    if command in UNESCAPED_COMMANDS:
        return name, value
    if ":" in value:
        raise FrameError(f"raw colon in the value of header {name!r} (must be escaped as \\c)")
    return _unescape(name), _unescape(value)


class FrameParser:
    """Turns a byte stream, delivered in arbitrary pieces, into :class:`Frame` objects."""

    def __init__(self, max_frame_size: int = 16 * 1024 * 1024, max_header_count: int = 64) -> None:
        self.max_frame_size = max_frame_size
        self.max_header_count = max_header_count
        #: EOLs received between frames (heart-beats), since the parser was created.
        self.heartbeats = 0
        self._buf = bytearray()
        self._pos = 0  # start of the unparsed part of _buf
        self._error: FrameError | None = None
        self._frame_start = 0  # offset in _buf where the current frame's command line starts
        self._scan = 0  # offset in _buf from which to look for the next LF or NUL
        self._reset_frame()

    def _reset_frame(self) -> None:
        self._command: str | None = None
        self._headers: dict[str, str] = {}
        self._header_count = 0
        self._in_body = False
        self._body_start = 0  # offset in _buf where the body begins
        self._content_length: int | None = None

    def feed(self, data: bytes) -> list[Frame]:
        """Consume ``data``; return the frames it completed, in order.

        Raises :class:`FrameError` on malformed input; after that the parser is unusable and
        every later call raises the same error again.
        """
        if self._error is not None:
            raise self._error
        self._buf += data
        frames: list[Frame] = []
        try:
            while True:
                frame = self._next_frame()
                if frame is None:
                    break
                frames.append(frame)
        except FrameError as exc:
            exc.frames = frames
            self._error = exc
            self._buf = bytearray()
            raise
        if self._pos:
            del self._buf[: self._pos]
            self._body_start -= self._pos
            self._frame_start -= self._pos
            self._scan = max(self._scan - self._pos, 0)
            self._pos = 0
        return frames

    # -- internals -------------------------------------------------------------------------

    def _next_frame(self) -> Frame | None:
        if self._command is None and not self._skip_heartbeats():
            return None
        if not self._in_body and not self._read_headers():
            return None
        return self._read_body()

    def _skip_heartbeats(self) -> bool:
        """Consume EOLs before a frame; True once a command line starts at ``_pos``."""
        buf = self._buf
        while self._pos < len(buf):
            byte = buf[self._pos]
            if byte == 0x0A:
                self.heartbeats += 1
                self._pos += 1
            elif byte == 0x0D:
                if self._pos + 1 >= len(buf):
                    return False  # wait: CR LF may be split across reads
                if buf[self._pos + 1] != 0x0A:
                    raise FrameError("carriage return without line feed between frames")
                self.heartbeats += 1
                self._pos += 2
            else:
                self._frame_start = self._scan = self._pos
                return True
        return False

    def _read_headers(self) -> bool:
        """Consume complete lines of the frame head; True once the blank line was read."""
        buf = self._buf
        while True:
            end = buf.find(b"\n", self._scan)
            if end < 0:
                self._scan = len(buf)
                self._check_size(len(buf) - self._frame_start)
                return False
            self._check_size(end - self._frame_start)
            line = bytes(buf[self._pos : end])
            self._pos = self._scan = end + 1
            if line.endswith(b"\r"):
                line = line[:-1]
            if self._command is None:
                self._command = self._parse_command(line)
            elif line:
                self._add_header(line)
            else:
                self._start_body()
                return True

    def _parse_command(self, line: bytes) -> str:
        if _COMMAND_RE.fullmatch(line) is None:
            raise FrameError(f"invalid command line {line[:40]!r}")
        return line.decode("ascii")

    def _add_header(self, line: bytes) -> None:
        assert self._command is not None
        self._header_count += 1
        if self._header_count > self.max_header_count:
            raise FrameError(f"more than {self.max_header_count} headers")
        name, value = _parse_header(self._command, line)
        self._headers.setdefault(name, value)

    def _start_body(self) -> None:
        self._in_body = True
        self._body_start = self._pos
        raw = self._headers.get("content-length")
        if raw is None:
            return
        if _DIGITS_RE.fullmatch(raw) is None or len(raw) > 20:
            raise FrameError(f"invalid content-length {raw[:40]!r}")
        self._content_length = int(raw)
        self._check_size(self._body_start - self._frame_start + self._content_length)

    def _read_body(self) -> Frame | None:
        buf = self._buf
        if self._content_length is not None:
            end = self._body_start + self._content_length
            if len(buf) <= end:
                return None
            if buf[end] != 0:
                raise FrameError("frame body is not followed by NUL (content-length mismatch?)")
        else:
            end = buf.find(b"\0", self._scan)
            if end < 0:
                self._scan = len(buf)
                self._check_size(len(buf) - self._frame_start)
                return None
            self._check_size(end - self._frame_start)
        assert self._command is not None
        frame = Frame(self._command, self._headers, bytes(buf[self._body_start : end]))
        self._pos = end + 1
        self._reset_frame()
        return frame

    def _check_size(self, size: int) -> None:
        if size > self.max_frame_size:
            raise FrameError(f"frame larger than {self.max_frame_size} bytes")
