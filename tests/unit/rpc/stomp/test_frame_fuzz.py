"""Property tests of the STOMP frame codec: round trips, chunking, and only FrameError on junk."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from virthost.rpc.stomp.frame import (
    COMMANDS,
    UNESCAPED_COMMANDS,
    Frame,
    FrameError,
    FrameParser,
    encode,
)

header_text = st.text(st.characters(codec="utf-8"), max_size=20)
plain_text = st.text(
    st.characters(codec="utf-8", exclude_characters="\r\n"), min_size=1, max_size=20
)


@st.composite
def frames(draw: st.DrawFn) -> Frame:
    command = draw(
        st.sampled_from(sorted(COMMANDS)) | st.from_regex(r"[A-Z]{1,12}", fullmatch=True)
    )
    if command in UNESCAPED_COMMANDS:
        names = plain_text.filter(lambda s: ":" not in s)
        values = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=20)
    else:
        names = header_text.filter(bool)
        values = header_text
    headers = draw(st.dictionaries(names, values, max_size=6))
    headers.pop("content-length", None)
    body = draw(st.binary(max_size=64))
    return Frame(command, headers, body)


def expected(frame: Frame) -> Frame:
    """What the parser yields for ``frame``: the encoder adds content-length to a body."""
    headers = dict(frame.headers)
    if frame.body:
        headers["content-length"] = str(len(frame.body))
    return Frame(frame.command, headers, frame.body)


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(data)) for c in cuts})
    pieces, start = [], 0
    for point in [*points, len(data)]:
        pieces.append(data[start:point])
        start = point
    return pieces


@given(frames())
def test_encode_parse_round_trip(frame: Frame) -> None:
    assert FrameParser().feed(encode(frame)) == [expected(frame)]


@given(
    st.lists(st.tuples(frames(), st.sampled_from([b"", b"\n", b"\r\n", b"\n\n"])), max_size=5),
    st.lists(st.integers(min_value=0, max_value=2000), max_size=12),
)
def test_arbitrary_chunking_gives_the_same_frames(
    items: list[tuple[Frame, bytes]], cuts: list[int]
) -> None:
    stream = b"".join(encode(frame) + eols for frame, eols in items)
    parser = FrameParser()
    got: list[Frame] = []
    for piece in chunked(stream, cuts):
        got += parser.feed(piece)
    assert got == [expected(frame) for frame, _ in items]
    assert parser.heartbeats == sum(eols.count(b"\n") for _, eols in items)


def outcome(pieces: list[bytes]) -> tuple[list[Frame], bool]:
    """Every frame parsed from ``pieces`` and whether the stream was rejected."""
    parser = FrameParser(max_frame_size=256, max_header_count=4)
    got: list[Frame] = []
    try:
        for piece in pieces:
            got += parser.feed(piece)
    except FrameError as exc:
        return got + exc.frames, True
    return got, False


stomp_ish = st.lists(
    st.sampled_from(
        [
            *(b"SEND", b"CONNECT", b"MESSAGE\n", b"\n", b"\r\n", b"\r", b":", b"\\", b"\\c"),
            *(b"\0", b"a", b"x:y", b"content-length:", b"content-length:3", b"0", b"\xff"),
        ]
    )
    | st.binary(max_size=8),
    max_size=40,
).map(b"".join)


@settings(max_examples=300)
@given(st.binary(max_size=300) | stomp_ish, st.lists(st.integers(0, 300), max_size=10))
def test_arbitrary_bytes_only_raise_frame_error(data: bytes, cuts: list[int]) -> None:
    whole = outcome([data])
    # Splitting the stream never changes what is parsed or whether it is rejected.
    assert outcome(chunked(data, cuts)) == whole
