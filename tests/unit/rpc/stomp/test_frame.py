"""The STOMP 1.2 frame codec: encoding, escaping, incremental parsing and its limits."""

from __future__ import annotations

import pytest

from virthost.rpc.stomp.frame import HEARTBEAT, Frame, FrameError, FrameParser, encode


def parse_all(data: bytes, **limits: int) -> list[Frame]:
    return FrameParser(**limits).feed(data)


# --- encoding ----------------------------------------------------------------------------


def test_encode_layout() -> None:
    frame = Frame("SEND", {"destination": "jms.topic.vdsm_requests"}, b"{}")
    assert encode(frame) == (b"SEND\ndestination:jms.topic.vdsm_requests\ncontent-length:2\n\n{}\0")


def test_encode_without_body_has_no_content_length() -> None:
    frame = Frame("SUBSCRIBE", {"id": "1", "content-length": "99"})
    assert encode(frame) == b"SUBSCRIBE\nid:1\n\n\0"


def test_encode_overrides_given_content_length() -> None:
    frame = Frame("SEND", {"content-length": "1", "destination": "q"}, b"hello")
    assert encode(frame) == b"SEND\ndestination:q\ncontent-length:5\n\nhello\0"


def test_encode_escapes_names_and_values() -> None:
    frame = Frame("MESSAGE", {"a:b\\": "line1\nline2\r:x\\"})
    assert encode(frame) == b"MESSAGE\na\\cb\\\\:line1\\nline2\\r\\cx\\\\\n\n\0"


@pytest.mark.parametrize("command", ["CONNECT", "CONNECTED"])
def test_connect_frames_are_not_escaped(command: str) -> None:
    frame = Frame(command, {"host": "a:b\\c"})
    assert encode(frame) == f"{command}\nhost:a:b\\c\n\n\0".encode()
    assert parse_all(encode(frame)) == [frame]


@pytest.mark.parametrize("value", ["a\nb", "a\rb"])
def test_connect_frames_reject_unencodable_values(value: str) -> None:
    with pytest.raises(FrameError):
        encode(Frame("CONNECT", {"host": value}))


@pytest.mark.parametrize("command", ["", "send", "SEND ", "SE-ND", "SÉND"])
def test_encode_rejects_invalid_command(command: str) -> None:
    with pytest.raises(FrameError):
        encode(Frame(command))


def test_encode_rejects_empty_header_name() -> None:
    with pytest.raises(FrameError):
        encode(Frame("SEND", {"": "x"}))


def test_heartbeat_is_a_lone_eol() -> None:
    assert HEARTBEAT == b"\n"


# --- decoding ----------------------------------------------------------------------------


def test_decode_escapes() -> None:
    data = b"MESSAGE\na\\cb\\\\:line1\\nline2\\r\\cx\\\\\n\n\0"
    assert parse_all(data) == [Frame("MESSAGE", {"a:b\\": "line1\nline2\r:x\\"})]


@pytest.mark.parametrize("header", [b"a:b\\t", b"a:b\\", b"a\\x:b", b"a:\\C"])
def test_undefined_escape_is_an_error(header: bytes) -> None:
    with pytest.raises(FrameError, match="escape"):
        parse_all(b"SEND\n" + header + b"\n\n\0")


def test_raw_colon_in_value_is_an_error() -> None:
    with pytest.raises(FrameError, match="colon"):
        parse_all(b"SEND\ndestination:a:b\n\n\0")


def test_raw_colon_in_connect_value_is_kept() -> None:
    frames = parse_all(b"CONNECT\nhost:[::1]:54321\nx:a\\nb\n\n\0")
    assert frames == [Frame("CONNECT", {"host": "[::1]:54321", "x": "a\\nb"})]


def test_empty_value_is_allowed() -> None:
    assert parse_all(b"SEND\nx:\n\n\0") == [Frame("SEND", {"x": ""})]


def test_first_repeated_header_wins() -> None:
    frames = parse_all(b"MESSAGE\nfoo:first\nfoo:second\nbar:1\n\n\0")
    assert frames[0].headers == {"foo": "first", "bar": "1"}


def test_body_without_content_length_runs_to_nul() -> None:
    assert parse_all(b"SEND\n\nhello\0") == [Frame("SEND", {}, b"hello")]


def test_content_length_body_may_contain_nul() -> None:
    body = b"\0a\0\0b\0"
    data = encode(Frame("SEND", {"destination": "q"}, body))
    (frame,) = parse_all(data)
    assert frame.body == body
    assert frame.headers == {"destination": "q", "content-length": "6"}


def test_zero_content_length() -> None:
    assert parse_all(b"SEND\ncontent-length:0\n\n\0")[0].body == b""


@pytest.mark.parametrize("value", [b"abc", b"-1", b"+3", b" 3", b"3 ", b"", b"1" * 30])
def test_bad_content_length(value: bytes) -> None:
    with pytest.raises(FrameError):
        parse_all(b"SEND\ncontent-length:" + value + b"\n\nabc\0")


def test_missing_nul_after_content_length_body() -> None:
    with pytest.raises(FrameError, match="NUL"):
        parse_all(b"SEND\ncontent-length:2\n\nabc\0")


def test_crlf_line_endings() -> None:
    data = b"\r\nMESSAGE\r\ndestination:q\r\nid:7\r\n\r\nbody\0\r\n"
    parser = FrameParser()
    assert parser.feed(data) == [Frame("MESSAGE", {"destination": "q", "id": "7"}, b"body")]
    assert parser.heartbeats == 2


def test_raw_carriage_return_inside_header_is_an_error() -> None:
    with pytest.raises(FrameError):
        parse_all(b"SEND\na:b\rc\n\n\0")


def test_several_frames_in_one_read() -> None:
    frames = [
        Frame("CONNECTED", {"version": "1.2", "heart-beat": "0,0"}),
        Frame("MESSAGE", {"subscription": "s1", "content-length": "9"}, b'{"id": 1}'),
        Frame("RECEIPT", {"receipt-id": "r1"}),
    ]
    data = b"".join(encode(f) for f in frames)
    assert parse_all(data) == frames


def test_heartbeats_are_counted_between_frames() -> None:
    parser = FrameParser()
    frame = Frame("SEND", {"destination": "q", "content-length": "1"}, b"x")
    data = b"\n\n" + encode(frame) + b"\r\n\n" + encode(frame) + b"\n"
    assert parser.feed(data) == [frame, frame]
    assert parser.heartbeats == 5
    assert parser.feed(HEARTBEAT) == []
    assert parser.heartbeats == 6


def test_split_crlf_heartbeat_is_one_heartbeat() -> None:
    parser = FrameParser()
    assert parser.feed(b"\r") == []
    assert parser.heartbeats == 0
    assert parser.feed(b"\n") == []
    assert parser.heartbeats == 1


def test_split_at_every_byte_boundary() -> None:
    frames = [
        Frame("CONNECT", {"accept-version": "1.2", "host": "h:1"}),
        Frame("SEND", {"destination": "a:b", "x": "1\n2", "content-length": "7"}, b"\0\0body\0"),
        Frame("SUBSCRIBE", {"id": "s", "destination": "d"}),
        Frame("DISCONNECT", {"receipt": "r"}),
    ]
    stream = b"\n" + encode(frames[0]) + b"\r\n" + b"".join(encode(f) for f in frames[1:]) + b"\n"
    stream += b"ERROR\nmessage:no content-length\n\nplain body\0"
    frames.append(Frame("ERROR", {"message": "no content-length"}, b"plain body"))
    for cut in range(len(stream) + 1):
        for second_cut in (cut, min(cut + 7, len(stream))):
            parser = FrameParser()
            got = parser.feed(stream[:cut])
            got += parser.feed(stream[cut:second_cut])
            got += parser.feed(stream[second_cut:])
            assert got == frames, cut
            assert parser.heartbeats == 3


def test_byte_by_byte() -> None:
    frame = Frame("MESSAGE", {"subscription": "s", "content-length": "100"}, b"x" * 100)
    parser = FrameParser()
    got: list[Frame] = []
    for byte in encode(frame) * 3:
        got += parser.feed(bytes([byte]))
    assert got == [frame] * 3


def test_unknown_command_word_is_returned() -> None:
    assert parse_all(b"HELLO\nx:y\n\n\0") == [Frame("HELLO", {"x": "y"})]


@pytest.mark.parametrize(
    "line", [b"send", b"SEND ", b" SEND", b"SE ND", b"GET / HTTP/1.1", b"S3ND", b"\xc3\x89"]
)
def test_bad_command_line(line: bytes) -> None:
    with pytest.raises(FrameError, match="command"):
        parse_all(line + b"\n\n\0")


@pytest.mark.parametrize("line", [b"nocolon", b":novalue", b"\xff:x", b"x:\xfe"])
def test_bad_header_line(line: bytes) -> None:
    with pytest.raises(FrameError):
        parse_all(b"SEND\n" + line + b"\n\n\0")


def test_lone_carriage_return_between_frames() -> None:
    with pytest.raises(FrameError):
        parse_all(b"\rSEND\n\n\0")


def test_too_many_headers() -> None:
    headers = b"".join(b"h%d:v\n" % i for i in range(5))
    assert len(parse_all(b"SEND\n" + headers + b"\n\0", max_header_count=5)) == 1
    with pytest.raises(FrameError, match="headers"):
        parse_all(b"SEND\n" + headers + b"h:v\n\n\0", max_header_count=5)


def test_frame_at_the_size_limit_is_accepted() -> None:
    data = encode(Frame("SEND", {}, b"x" * 10))  # SEND\ncontent-length:10\n\n = 24 bytes
    assert len(parse_all(data, max_frame_size=34)) == 1
    with pytest.raises(FrameError, match="larger"):
        parse_all(data, max_frame_size=33)


def test_oversize_content_length_is_rejected_before_the_body_arrives() -> None:
    parser = FrameParser(max_frame_size=1000)
    with pytest.raises(FrameError, match="larger"):
        parser.feed(b"SEND\ncontent-length:5000\n\n")


def test_oversize_body_without_content_length_is_rejected_early() -> None:
    parser = FrameParser(max_frame_size=1000)
    parser.feed(b"SEND\n\n")
    with pytest.raises(FrameError, match="larger"):
        for _ in range(100):
            parser.feed(b"y" * 100)


def test_oversize_header_section_is_rejected_early() -> None:
    parser = FrameParser(max_frame_size=1000)
    parser.feed(b"SEND\nname:")
    with pytest.raises(FrameError, match="larger"):
        for _ in range(100):
            parser.feed(b"v" * 100)


def test_error_keeps_earlier_frames_and_is_sticky() -> None:
    parser = FrameParser()
    with pytest.raises(FrameError) as info:
        parser.feed(b"SEND\n\nok\0bad line\n\n\0")
    assert info.value.frames == [Frame("SEND", {}, b"ok")]
    with pytest.raises(FrameError):
        parser.feed(b"SEND\n\n\0")


def test_frame_error_is_a_value_error() -> None:
    assert issubclass(FrameError, ValueError)
