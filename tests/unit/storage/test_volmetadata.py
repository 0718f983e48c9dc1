"""Volume metadata records match VDSM's to the byte, fit one sector, and read back what we wrote.

Golden records follow vdsm-storage.md section 4.2: sorted ``KEY=value`` lines and ``EOF``,
``CAP``/``SEQ`` on v5 domains, ``SIZE`` in 512-byte blocks and ``MTIME=0`` before.
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from virthost.storage import constants as sc
from virthost.storage import errors as storage_errors
from virthost.storage import volmetadata
from virthost.storage.volmetadata import VolumeMetadata

SD = "275766cb-c7d8-43d6-a663-4e52160de620"
IMG = "3b8f4f5e-9d3a-4b4e-8d0e-2f5c6a7b8c9d"
PARENT = "c0ffee00-1234-4abc-9def-0123456789ab"
DESCRIPTION = '{"DiskAlias":"vm1_Disk1","DiskDescription":"boot disk"}'

LEAF_V5 = f"""\
CAP=10737418240
CTIME=1700000000
DESCRIPTION={DESCRIPTION}
DISKTYPE=DATA
DOMAIN={SD}
FORMAT=COW
GEN=3
IMAGE={IMG}
LEGALITY=LEGAL
PUUID={PARENT}
SEQ=2
TYPE=SPARSE
VOLTYPE=LEAF
EOF
""".encode()

TEMPLATE_V4 = f"""\
CTIME=1600000000
DESCRIPTION=
DISKTYPE=2
DOMAIN={SD}
FORMAT=RAW
GEN=0
IMAGE={IMG}
LEGALITY=LEGAL
MTIME=0
PUUID={sc.BLANK_UUID}
SIZE=20971520
TYPE=PREALLOCATED
VOLTYPE=SHARED
EOF
""".encode()


def leaf() -> VolumeMetadata:
    return VolumeMetadata(
        domain=SD,
        image=IMG,
        parent=PARENT,
        capacity=10 * 1024**3,
        format=sc.VolumeFormat.COW,
        type=sc.VolumeType.SPARSE,
        voltype=sc.VolumeRole.LEAF,
        disktype=sc.DiskType.DATA,
        description=DESCRIPTION,
        legality=sc.Legality.LEGAL,
        ctime=1700000000,
        generation=3,
        sequence=2,
    )


def template() -> VolumeMetadata:
    return VolumeMetadata(
        domain=SD,
        image=IMG,
        parent=sc.BLANK_UUID,
        capacity=20971520 * 512,
        format=sc.VolumeFormat.RAW,
        type=sc.VolumeType.PREALLOCATED,
        voltype=sc.VolumeRole.SHARED,
        disktype=sc.DiskType.LEGACY_DATA,
        legality=sc.Legality.LEGAL,
        ctime=1600000000,
    )


# --- golden records ----------------------------------------------------------------------


def test_renders_a_v5_record_byte_for_byte() -> None:
    assert leaf().render(5) == LEAF_V5


def test_renders_a_v4_record_byte_for_byte() -> None:
    assert template().render(4) == TEMPLATE_V4


def test_reads_a_v5_record() -> None:
    assert VolumeMetadata.parse(LEAF_V5) == leaf()


def test_reads_a_v4_record_converting_size_to_capacity() -> None:
    md = VolumeMetadata.parse(TEMPLATE_V4)
    assert md == template()
    assert md.capacity == 10 * 1024**3 and md.sequence == 0


def test_v4_rendering_refuses_a_capacity_it_cannot_express() -> None:
    with pytest.raises(storage_errors.InvalidParameterException):
        dataclasses.replace(template(), capacity=1000).render(4)


def test_unknown_domain_version_is_refused() -> None:
    with pytest.raises(storage_errors.InvalidParameterException):
        leaf().render(6)


# --- reading what VDSM and old versions leave behind ---------------------------------------


def test_block_slot_content_after_eof_is_ignored() -> None:
    slot = LEAF_V5 + b"LEGALITY=ILLEGAL\n\xff\xfe garbage" + b"\0" * 300
    assert VolumeMetadata.parse(slot) == leaf()


def test_missing_generation_and_sequence_default_to_zero() -> None:
    record = LEAF_V5.replace(b"GEN=3\n", b"").replace(b"SEQ=2\n", b"")
    md = VolumeMetadata.parse(record)
    assert (md.generation, md.sequence) == (0, 0)


def test_whitespace_and_lines_without_equal_sign() -> None:
    record = b"junk\n" + LEAF_V5.replace(b"FORMAT=COW", b"  FORMAT = COW  ")
    assert VolumeMetadata.parse(record) == leaf()


def test_cleared_metadata_is_a_read_error() -> None:
    with pytest.raises(storage_errors.VolumeMetadataReadError, match="cleared"):
        VolumeMetadata.parse(b"NONE=" + b"#" * 400 + b"\nEOF\n")


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        (b"IMAGE=", b"IMAGEX=", "IMAGE"),
        (b"CAP=10737418240", b"CAP=ten", "CAP"),
        (b"FORMAT=COW", b"FORMAT=QCOW2", "FORMAT"),
        (b"LEGALITY=LEGAL", b"LEGALITY=SORT-OF", "LEGALITY"),
        (b"GEN=3", b"GEN=1000", "generation"),
        (b"VOLTYPE=LEAF", b"VOLTYPE=\xff", "UTF-8"),
    ],
)
def test_unreadable_records_are_read_errors(old: bytes, new: bytes, problem: str) -> None:
    with pytest.raises(storage_errors.VolumeMetadataReadError, match=problem) as info:
        VolumeMetadata.parse(LEAF_V5.replace(old, new))
    assert info.value.code == 207


def test_empty_record_names_every_missing_key() -> None:
    with pytest.raises(storage_errors.VolumeMetadataReadError) as info:
        VolumeMetadata.parse(b"EOF\n")
    for key in ("DOMAIN", "IMAGE", "PUUID", "CAP", "FORMAT", "CTIME", "LEGALITY"):
        assert key in str(info.value)


# --- size limits -------------------------------------------------------------------------


def test_long_description_is_cut_to_210_characters() -> None:
    md = dataclasses.replace(leaf(), description="d" * 500)
    assert md.description == "d" * sc.DESCRIPTION_SIZE
    assert VolumeMetadata.parse(md.render()) == md


def test_record_over_one_sector_is_refused() -> None:
    md = dataclasses.replace(leaf(), description="é" * sc.DESCRIPTION_SIZE)
    with pytest.raises(storage_errors.MetadataOverflowError) as info:
        md.render()
    assert info.value.code == 756


@given(st.text(st.characters(max_codepoint=127), min_size=210, max_size=210))
def test_longest_ascii_description_always_fits(description: str) -> None:
    worst = VolumeMetadata(
        domain=SD,
        image=IMG,
        parent=PARENT,
        capacity=2**63,
        format=sc.VolumeFormat.UNKNOWN,
        type=sc.VolumeType.PREALLOCATED,
        voltype=sc.VolumeRole.INTERNAL,
        disktype=sc.DiskType.OVFS,
        description=description.replace("\n", " ").replace("\r", " "),
        legality=sc.Legality.ILLEGAL,
        ctime=2**33,
        generation=sc.MAX_GENERATION,
        sequence=sc.MAX_SEQUENCE,
    )
    for version in (4, 5):
        assert len(worst.render(version)) <= sc.METADATA_SIZE


# --- what the model refuses --------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"description": "two\nlines"},
        {"description": "carriage\rreturn"},
        {"image": "\udcff"},
        {"capacity": -1},
        {"generation": 1000},
        {"sequence": 2**32},
        {"ctime": -5},
        {"capacity": True},
    ],
)
def test_invalid_fields_are_refused(changes: dict[str, object]) -> None:
    with pytest.raises(storage_errors.InvalidParameterException):
        dataclasses.replace(leaf(), **changes)  # type: ignore[arg-type]


def test_generation_wraps_after_999() -> None:
    assert volmetadata.next_generation(0) == 1
    assert volmetadata.next_generation(sc.MAX_GENERATION) == 0


def test_block_slot_offsets() -> None:
    assert volmetadata.slot_offset(4, 4) == 4 * 512
    assert volmetadata.slot_offset(1, 5) == 1024 * 1024 + 8 * 1024
    with pytest.raises(storage_errors.InvalidParameterException):
        volmetadata.slot_offset(-1, 5)


# --- round trips -------------------------------------------------------------------------

_descriptions = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r"), max_size=260
)

volumes = st.builds(
    VolumeMetadata,
    domain=st.uuids().map(str),
    image=st.uuids().map(str),
    parent=st.just(sc.BLANK_UUID) | st.uuids().map(str),
    capacity=st.integers(0, 2**50).map(lambda blocks: blocks * 512),
    format=st.sampled_from(sc.VolumeFormat),
    type=st.sampled_from(sc.VolumeType),
    voltype=st.sampled_from(sc.VolumeRole),
    disktype=st.sampled_from(sc.DiskType),
    description=_descriptions,
    legality=st.sampled_from(sc.Legality),
    ctime=st.integers(0, 2**40),
    generation=st.integers(0, sc.MAX_GENERATION),
    sequence=st.integers(0, sc.MAX_SEQUENCE),
)


@given(volumes)
def test_v5_records_round_trip_or_overflow(md: VolumeMetadata) -> None:
    try:
        data = md.render(5)
    except storage_errors.MetadataOverflowError:
        assert len(md.description.encode()) > 200
        return
    assert len(data) <= sc.METADATA_SIZE and data.endswith(b"\nEOF\n")
    expected = dataclasses.replace(md, description=md.description.strip())
    assert VolumeMetadata.parse(data) == expected


@given(volumes)
def test_v4_records_round_trip_except_sequence(md: VolumeMetadata) -> None:
    try:
        data = md.render(4)
    except storage_errors.MetadataOverflowError:
        return
    assert b"MTIME=0\n" in data and b"CAP=" not in data and b"SEQ=" not in data
    expected = dataclasses.replace(md, description=md.description.strip(), sequence=0)
    assert VolumeMetadata.parse(data) == expected


@given(volumes, st.binary(max_size=64))
def test_anything_after_eof_is_ignored(md: VolumeMetadata, tail: bytes) -> None:
    try:
        data = md.render()
    except storage_errors.MetadataOverflowError:
        return
    assert VolumeMetadata.parse(data + tail) == VolumeMetadata.parse(data)
