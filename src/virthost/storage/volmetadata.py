"""A volume's metadata: the ``KEY=value`` record that says what a volume is.

Each volume has one record: the ``<volUUID>.meta`` file next to it on a file domain, a slot in
the ``metadata`` LV on a block domain. Both hold the same bytes, and VDSM hosts read and write
them too, so the layout is VDSM's to the byte:

- ``KEY=value\\n`` lines sorted by key, then ``EOF\\n``; no checksum, UTF-8;
- a domain of version 5 stores the capacity in bytes (``CAP``) and the volume's sequence
  number (``SEQ``); older versions store ``SIZE`` in 512-byte blocks and ``MTIME=0`` instead,
  and readers turn ``SIZE`` into a capacity;
- the whole record must fit one 512-byte sector, so that a block device writes it in one
  atomic write: a longer record is refused with
  :class:`~virthost.common.storage_errors.MetadataOverflowError` (756), never written in part;
- descriptions longer than 210 characters are cut, as VDSM does, because old engines send
  them and old disks have them; what still overflows the sector is refused;
- readers stop at the ``EOF`` line (a block slot may hold anything after it), skip lines
  without ``=``, strip keys and values, default ``GEN`` and ``SEQ`` to 0, and treat a record
  holding ``NONE`` as cleared (old VDSM versions "deleted" metadata that way).

A value cannot hold a line break, and surrounding whitespace does not survive a read: a line
break is refused, whitespace is read back stripped. Anything unreadable is a
:class:`~virthost.common.storage_errors.VolumeMetadataReadError` (207) listing every problem found.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from virthost.common import errors
from virthost.storage import constants as sc
from virthost.storage import errors as storage_errors

log = logging.getLogger("virthost.storage.volmetadata")

EOF_LINE = "EOF"
_CLEARED_KEY = "NONE"
_LINE_BREAKS = ("\n", "\r")

# Keys of a v5 record, with the VolumeMetadata field each one fills.
CAP, CTIME, DESCRIPTION, DISKTYPE, DOMAIN = "CAP", "CTIME", "DESCRIPTION", "DISKTYPE", "DOMAIN"
FORMAT, GEN, IMAGE, LEGALITY, PUUID = "FORMAT", "GEN", "IMAGE", "LEGALITY", "PUUID"
SEQ, TYPE, VOLTYPE = "SEQ", "TYPE", "VOLTYPE"
# Keys of records on domains older than v5.
SIZE, MTIME = "SIZE", "MTIME"

_FIELDS: dict[str, tuple[str, Callable[[str], Any]]] = {
    DOMAIN: ("domain", str),
    IMAGE: ("image", str),
    PUUID: ("parent", str),
    CAP: ("capacity", int),
    FORMAT: ("format", sc.VolumeFormat.from_value),
    TYPE: ("type", sc.VolumeType.from_value),
    VOLTYPE: ("voltype", sc.VolumeRole.from_value),
    DISKTYPE: ("disktype", sc.DiskType.from_value),
    DESCRIPTION: ("description", str),
    LEGALITY: ("legality", sc.Legality.from_value),
    CTIME: ("ctime", int),
    GEN: ("generation", int),
    SEQ: ("sequence", int),
}


def _now() -> int:
    return int(time.time())


@dataclass(frozen=True)
class VolumeMetadata:
    """What a volume is: its image and parent, size, format, allocation, role and state.

    ``capacity`` is the virtual size in bytes; ``generation`` (0-999, wrapping) is bumped by
    operations that must fence stale writers; ``sequence`` orders the volumes of an image.
    """

    domain: str
    image: str
    parent: str
    capacity: int
    format: sc.VolumeFormat
    type: sc.VolumeType
    voltype: sc.VolumeRole
    disktype: sc.DiskType
    description: str = ""
    legality: sc.Legality = sc.Legality.ILLEGAL
    ctime: int = field(default_factory=_now)
    generation: int = sc.DEFAULT_GENERATION
    sequence: int = sc.DEFAULT_SEQUENCE

    def __post_init__(self) -> None:
        for name in ("domain", "image", "parent", "description"):
            _check_text(name, getattr(self, name))
        _check_range("capacity", self.capacity, 0, None)
        _check_range("ctime", self.ctime, 0, None)
        _check_range("generation", self.generation, 0, sc.MAX_GENERATION)
        _check_range("sequence", self.sequence, 0, sc.MAX_SEQUENCE)
        if len(self.description) > sc.DESCRIPTION_SIZE:
            log.warning("Description is too long, cutting it to %d chars", sc.DESCRIPTION_SIZE)
            object.__setattr__(self, "description", self.description[: sc.DESCRIPTION_SIZE])

    def render(self, domain_version: int = 5) -> bytes:
        """The record as stored on a domain of ``domain_version``; at most 512 bytes."""
        if domain_version not in sc.DOMAIN_VERSIONS:
            raise storage_errors.InvalidParameterException(f"domain_version={domain_version!r}")
        values: dict[str, str | int] = {
            CTIME: self.ctime,
            DESCRIPTION: self.description,
            DISKTYPE: self.disktype.value,
            DOMAIN: self.domain,
            FORMAT: self.format.name,
            GEN: self.generation,
            IMAGE: self.image,
            LEGALITY: self.legality.value,
            PUUID: self.parent,
            TYPE: self.type.name,
            VOLTYPE: self.voltype.name,
        }
        if domain_version >= 5:
            values[CAP] = self.capacity
            values[SEQ] = self.sequence
        else:
            if self.capacity % sc.BLOCK_SIZE_512:
                raise storage_errors.InvalidParameterException(
                    f"capacity={self.capacity} is not a multiple of 512 (domain v{domain_version})"
                )
            values[SIZE] = self.capacity // sc.BLOCK_SIZE_512
            values[MTIME] = 0
        text = "".join(f"{key}={values[key]}\n" for key in sorted(values)) + EOF_LINE + "\n"
        data = text.encode("utf-8")
        if len(data) > sc.METADATA_SIZE:
            raise storage_errors.MetadataOverflowError(
                f"{len(data)} bytes, at most {sc.METADATA_SIZE} fit: {data!r}"
            )
        return data

    @classmethod
    def parse(cls, data: bytes) -> VolumeMetadata:
        """The metadata in a record (a ``.meta`` file, or a block slot with anything after EOF)."""
        values, problems = _read_lines(data)
        if _CLEARED_KEY in values:
            raise storage_errors.VolumeMetadataReadError("metadata was cleared (NONE)")
        if SIZE in values and CAP not in values:
            try:
                values[CAP] = str(int(values[SIZE]) * sc.BLOCK_SIZE_512)
            except ValueError:
                problems.append(f"invalid SIZE {values[SIZE]!r}")
        values.setdefault(GEN, str(sc.DEFAULT_GENERATION))
        values.setdefault(SEQ, str(sc.DEFAULT_SEQUENCE))
        kwargs: dict[str, Any] = {}
        for key, (name, convert) in _FIELDS.items():
            if key not in values:
                problems.append(f"required key {key} is missing")
                continue
            try:
                kwargs[name] = convert(values[key])
            except (ValueError, errors.VirtHostError) as e:
                problems.append(f"invalid {key} {values[key]!r}: {e}")
        if problems:
            raise storage_errors.VolumeMetadataReadError("; ".join(problems))
        try:
            return cls(**kwargs)
        except errors.VirtHostError as e:
            raise storage_errors.VolumeMetadataReadError(e.wire_message) from e


def _read_lines(data: bytes) -> tuple[dict[str, str], list[str]]:
    values: dict[str, str] = {}
    problems: list[str] = []
    for raw in data.split(b"\n"):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            problems.append(f"line {raw!r} is not UTF-8: {e}")
            continue
        if line.startswith(EOF_LINE):
            break
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip()
    return values, problems


def _check_text(name: str, value: str) -> None:
    if any(c in value for c in _LINE_BREAKS):
        raise storage_errors.InvalidParameterException(f"{name}={value!r} (line break)")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise storage_errors.InvalidParameterException(
            f"{name}={value!r} (not encodable)"
        ) from None


def _check_range(name: str, value: int, low: int, high: int | None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise storage_errors.InvalidParameterException(f"{name}={value!r} (not an integer)")
    if value < low or (high is not None and value > high):
        raise storage_errors.InvalidParameterException(f"{name}={value} (out of range)")


def next_generation(generation: int) -> int:
    """The generation after ``generation``: 999 wraps to 0."""
    return (generation + 1) % (sc.MAX_GENERATION + 1)


def slot_offset(slot: int, domain_version: int) -> int:
    """Where metadata slot ``slot`` starts in a block domain's ``metadata`` LV."""
    if slot < 0:
        raise storage_errors.InvalidParameterException(f"slot={slot}")
    if domain_version >= 5:
        return sc.SLOTS_OFFSET_V5 + slot * sc.SLOT_SIZE_V5
    return slot * sc.SLOT_SIZE_V4
