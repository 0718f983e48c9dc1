"""What qemu-img reports, as frozen dataclasses built from its ``--output json``.

qemu-img's JSON is the contract, not its human output, so results are read from it and
checked: a field ``virtual_size`` is the key ``virtual-size`` (two keys are renamed, see
``_JSON_KEYS``), each value must have the field's type (``int``, ``str | None``,
``tuple[X, ...]``), a field without a default must be present, and anything else is a
:class:`~virthost.storage.qemuimg.running.QemuImgError` naming the command. qcow2 details
(``compat``, ``corrupt``, bitmaps) come from ``format-specific`` and are None elsewhere.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from virthost.common.commands import CommandResult
from virthost.storage.qemuimg.running import QemuImgError, shown

T = TypeVar("T")


@dataclass(frozen=True)
class BitmapInfo:
    """A persistent dirty bitmap of a qcow2 image; ``flags`` include ``auto`` when enabled."""

    name: str
    granularity: int
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImageInfo:
    """``qemu-img info``; ``backing_chain`` lists the images below this one, when asked for."""

    filename: str
    format: str
    virtual_size: int
    actual_size: int | None = None
    cluster_size: int | None = None
    backing_filename: str | None = None
    full_backing_filename: str | None = None
    backing_format: str | None = None  # key "backing-filename-format"
    dirty: bool = False  # key "dirty-flag"
    compat: str | None = None
    lazy_refcounts: bool | None = None
    corrupt: bool | None = None
    bitmaps: tuple[BitmapInfo, ...] = ()
    backing_chain: tuple[ImageInfo, ...] = ()


@dataclass(frozen=True)
class CheckResult:
    """``qemu-img check``: ``corruptions`` lose data, ``leaks`` only waste space."""

    filename: str
    format: str
    check_errors: int
    corruptions: int = 0
    leaks: int = 0
    corruptions_fixed: int = 0
    leaks_fixed: int = 0
    image_end_offset: int | None = None
    total_clusters: int | None = None
    allocated_clusters: int | None = None

    @property
    def clean(self) -> bool:
        return not (self.check_errors or self.corruptions or self.leaks)


@dataclass(frozen=True)
class MeasureResult:
    """``qemu-img measure``: bytes needed for the data as it is, and fully allocated."""

    required: int
    fully_allocated: int
    bitmaps: int | None = None


@dataclass(frozen=True)
class MapExtent:
    """A ``qemu-img map`` extent; ``offset`` locates its data in the file at chain ``depth``."""

    start: int
    length: int
    depth: int
    present: bool
    zero: bool
    data: bool
    offset: int | None = None


def parse(result: CommandResult, build: Callable[[Any], T]) -> T:
    """``build`` applied to the JSON ``result`` printed; bad output is a QemuImgError."""
    try:
        return build(json.loads(result.out))
    except (ValueError, TypeError, KeyError, AttributeError, IndexError) as e:
        detail = f"invalid output of {shown(result.argv)}: {e!r}"
        raise QemuImgError(detail, result.argv, result.rc) from e


def image_info(out: Mapping[str, Any]) -> ImageInfo:
    specific = out.get("format-specific", {})
    data = specific.get("data", {}) if specific.get("type") == "qcow2" else {}
    bitmaps = tuple(build(BitmapInfo, item) for item in data.get("bitmaps", ()))
    return build(
        ImageInfo,
        out,
        compat=_checked("compat", data.get("compat"), str | None),
        lazy_refcounts=_checked("lazy-refcounts", data.get("lazy-refcounts"), bool | None),
        corrupt=_checked("corrupt", data.get("corrupt"), bool | None),
        bitmaps=bitmaps,
    )


def image_chain(out: list[Mapping[str, Any]]) -> ImageInfo:
    """The first image of a ``--backing-chain`` list, holding the others."""
    top, *below = [image_info(item) for item in out]
    return dataclasses.replace(top, backing_chain=tuple(below))


_JSON_KEYS = {"backing_format": "backing-filename-format", "dirty": "dirty-flag"}


def build(cls: Callable[..., T], out: Mapping[str, Any], **given: Any) -> T:
    """``cls`` from the JSON object ``out``, each value checked against its field's type."""
    hints = typing.get_type_hints(cls)
    values = dict(given)
    for spec in dataclasses.fields(cls):  # type: ignore[arg-type]
        key = _JSON_KEYS.get(spec.name, spec.name.replace("_", "-"))
        if spec.name in given or (key not in out and spec.default is not dataclasses.MISSING):
            continue
        values[spec.name] = _checked(key, out[key], hints[spec.name])
    return cls(**values)


def _checked(key: str, value: Any, hint: Any) -> Any:
    """``value``, if it has the type ``hint``."""
    origin = typing.get_origin(hint)
    if origin is tuple:
        if not isinstance(value, list):
            raise TypeError(f"{key!r} is {value!r}, not a list")
        return tuple(_checked(key, item, typing.get_args(hint)[0]) for item in value)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(hint):
            return None
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise TypeError(f"{key!r} is {value!r}, not {hint.__name__}")
    return value
