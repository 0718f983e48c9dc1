"""What each SDM verb asks for, as checked typed records, and the factories making its work.

The schema has already checked the shape of the wire params; here every identifier is
validated with :mod:`virthost.common.validate` (UUIDs made canonical, device and bitmap
names restricted to safe characters) because the work functions build paths and command
lines from them. A work author plugs in by writing a :class:`JobFactory` for a verb: it
receives the job id and the verb's request, checks what it can cheaply and at once (an error
raised here answers the verb itself), and returns the :class:`~virthost.storage.jobs.job.JobWork`
the job will run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from virthost.common import errors, validate
from virthost.storage.jobs.job import JobWork

QCOW2_COMPAT_LEVELS = ("0.10", "1.1")
LEGALITIES = ("LEGAL", "ILLEGAL", "FAKE")
VOLUME_ROLES = {6: "SHARED", 7: "INTERNAL", 8: "LEAF"}
BITMAP_NAME_MAX = 1023  # qemu's limit on a dirty bitmap's name

RequestT_contra = TypeVar("RequestT_contra", contravariant=True)


class JobFactory(Protocol[RequestT_contra]):
    """Makes the work of one SDM verb, e.g. ``def copy_data(job_id, request: CopyDataRequest)``."""

    def __call__(self, job_id: str, request: RequestT_contra, /) -> JobWork: ...


# --- records --------------------------------------------------------------------------------


@dataclass(frozen=True)
class VolumeEndpoint:
    """A managed volume and, when given, the generation the caller expects it to have."""

    sd_id: str
    img_id: str
    vol_id: str
    generation: int | None = None


@dataclass(frozen=True)
class DivEndpoint:
    """A copy endpoint on one of our domains; ``prepared`` means already prepared here."""

    volume: VolumeEndpoint
    prepared: bool = False


@dataclass(frozen=True)
class ExternalEndpoint:
    """A copy endpoint outside our domains, given by URL."""

    url: str


CopyEndpoint = DivEndpoint | ExternalEndpoint


@dataclass(frozen=True)
class SubchainInfo:
    sd_id: str
    img_id: str
    top_id: str
    base_id: str
    base_generation: int | None = None


@dataclass(frozen=True)
class VolumeAttributes:
    """Volume metadata to change; None leaves a field as it is."""

    legality: str | None = None
    description: str | None = None
    generation: int | None = None
    role: str | None = None


# --- one request per verb -------------------------------------------------------------------


@dataclass(frozen=True)
class CopyDataRequest:
    source: CopyEndpoint
    destination: CopyEndpoint
    copy_bitmaps: bool = False


@dataclass(frozen=True)
class VolumeRequest:
    """SDM.sparsify_volume and SDM.clear_bitmaps: one volume, nothing else."""

    volume: VolumeEndpoint


@dataclass(frozen=True)
class MergeRequest:
    subchain: SubchainInfo
    merge_bitmaps: bool = False


@dataclass(frozen=True)
class AmendVolumeRequest:
    volume: VolumeEndpoint
    compat: str


@dataclass(frozen=True)
class UpdateVolumeRequest:
    volume: VolumeEndpoint
    attributes: VolumeAttributes


@dataclass(frozen=True)
class BitmapRequest:
    """SDM.add_bitmap and SDM.remove_bitmap."""

    volume: VolumeEndpoint
    bitmap: str


@dataclass(frozen=True)
class MoveDeviceRequest:
    sd_id: str
    guid: str
    dst_guids: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReduceDomainRequest:
    sd_id: str
    guid: str


# --- parsing the wire -----------------------------------------------------------------------


def volume_endpoint(value: Any, where: str) -> VolumeEndpoint:
    record = _record(value, where)
    return VolumeEndpoint(
        sd_id=_uuid(record, "sd_id", where),
        img_id=_uuid(record, "img_id", where),
        vol_id=_uuid(record, "vol_id", where),
        generation=_optional_uint(record, "generation", where),
    )


def copy_endpoint(value: Any, where: str) -> CopyEndpoint:
    record = _record(value, where)
    kind = record.get("endpoint_type")
    if kind == "div":
        return DivEndpoint(
            volume=volume_endpoint(record, where),
            prepared=flag(record.get("prepared"), f"{where}.prepared"),
        )
    if kind == "external":
        url = record.get("url")
        if not isinstance(url, str) or not url:
            raise _invalid(f"{where}.url", "required for an external endpoint")
        return ExternalEndpoint(url=url)
    raise _invalid(f"{where}.endpoint_type", f"{kind!r} is not 'div' or 'external'")


def subchain_info(value: Any, where: str) -> SubchainInfo:
    record = _record(value, where)
    return SubchainInfo(
        sd_id=_uuid(record, "sd_id", where),
        img_id=_uuid(record, "img_id", where),
        top_id=_uuid(record, "top_id", where),
        base_id=_uuid(record, "base_id", where),
        base_generation=_optional_uint(record, "base_generation", where),
    )


def qcow2_compat(value: Any, where: str) -> str:
    compat = _record(value, where).get("compat")
    if compat not in QCOW2_COMPAT_LEVELS:
        raise _invalid(f"{where}.compat", f"{compat!r} is not one of {QCOW2_COMPAT_LEVELS}")
    return str(compat)


def volume_attributes(value: Any, where: str) -> VolumeAttributes:
    record = _record(value, where)
    legality = record.get("legality")
    if legality is not None and legality not in LEGALITIES:
        raise _invalid(f"{where}.legality", f"{legality!r} is not one of {LEGALITIES}")
    description = record.get("description")
    if description is not None and not isinstance(description, str):
        raise _invalid(f"{where}.description", "not a string")
    return VolumeAttributes(
        legality=legality,
        description=description,
        generation=_optional_uint(record, "generation", where),
        role=_volume_role(record.get("type"), f"{where}.type"),
    )


def _volume_role(value: Any, where: str) -> str | None:
    """A role by name, whether the wire sent its code (6) or its name (SHARED)."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        name = VOLUME_ROLES.get(value)
    else:
        name = value if value in VOLUME_ROLES.values() else None
    if name is None:
        raise _invalid(where, f"{value!r} is not a volume role")
    return name


def bitmap_name(value: Any, where: str) -> str:
    return validate.safe_name(value, where, max_len=BITMAP_NAME_MAX)


def move_device(value: Any, where: str) -> MoveDeviceRequest:
    record = _record(value, where)
    dst_guids = record.get("dst_guids") or ()
    if not isinstance(dst_guids, list | tuple):
        raise _invalid(f"{where}.dst_guids", "not a list")
    return MoveDeviceRequest(
        sd_id=_uuid(record, "sd_id", where),
        guid=validate.safe_name(record.get("guid"), f"{where}.guid"),
        dst_guids=tuple(
            validate.safe_name(guid, f"{where}.dst_guids[{i}]") for i, guid in enumerate(dst_guids)
        ),
    )


def reduce_domain(value: Any, where: str) -> ReduceDomainRequest:
    record = _record(value, where)
    return ReduceDomainRequest(
        sd_id=_uuid(record, "sd_id", where),
        guid=validate.safe_name(record.get("guid"), f"{where}.guid"),
    )


def flag(value: Any, where: str) -> bool:
    """A boolean parameter; absent (None) means False."""
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _invalid(where, f"{value!r} is not a boolean")
    return value


def _record(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _invalid(where, "not an object")
    return value


def _uuid(record: Mapping[str, Any], key: str, where: str) -> str:
    return validate.uuid(record.get(key), f"{where}.{key}")


def _optional_uint(record: Mapping[str, Any], key: str, where: str) -> int | None:
    value = record.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _invalid(f"{where}.{key}", f"{value!r} is not a non-negative integer")
    return value


def _invalid(where: str, problem: str) -> errors.InvalidParameter:
    return errors.InvalidParameter(f"{where}: {problem}", param=where)
