"""Creating a volume on a file domain, in an order that survives a crash at any point.

The steps, each preceded by a recorded recovery when it leaves something behind:

1. the image directory (when it is the image's first volume), and for a volume over a
   template of another image, hard links to the template's data, record and lease, as VDSM
   does on file domains (the overlay's backing file is then a name in its own directory);
2. the record, ILLEGAL: from now on every host sees a volume that must not be used;
3. the parent, if it was the image's LEAF, becomes INTERNAL;
4. the data: a sparse file, a preallocated raw file (``qemu-img create -o
   preallocation=falloc``), or a qcow2 image, backed by its parent's file name (relative);
5. the lease: a file of one alignment unit, initialised as a sanlock resource named by the
   volume in the domain's lockspace;
6. the record again, LEGAL (unless the caller wants it ILLEGAL, to fill it first).

Rules VDSM applies on file domains, applied here: a volume with a parent is COW; a parent must
be LEGAL (226) and, in another image, a template (218); the capacity of a snapshot defaults to
its parent's and may not be smaller; ``initial_size`` only exists for preallocated RAW (at least
4 KiB allocated, the rest grown sparsely), never for COW; COW + PREALLOCATED is accepted and
created as a plain qcow2 (VDSM does not preallocate qcow2 on file domains).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from virthost.common import errors
from virthost.storage import constants as sc
from virthost.storage import errors as se
from virthost.storage import qemuimg
from virthost.storage.filedomain import DomainHandle
from virthost.storage.images import layout, recovery
from virthost.storage.images.context import Record, StoreContext, noted
from virthost.storage.images.layout import ImagePaths, VolumePaths
from virthost.storage.images.volume import (
    hard_link,
    read_metadata,
    volume_exists,
    write_metadata,
)
from virthost.storage.volmetadata import VolumeMetadata

log = logging.getLogger("virthost.storage.images")

IMAGE_DIR_MODE = 0o755
MIN_RAW_ALLOCATION = 4 * sc.KiB


@dataclass(frozen=True)
class CreateVolumeRequest:
    """create_volume's arguments, validated."""

    sd: str
    img: str
    vol: str
    size: int | None
    format: sc.VolumeFormat
    type: sc.VolumeType
    disktype: sc.DiskType
    description: str
    src_img: str
    src_vol: str
    initial_size: int | None
    legal: bool
    sequence: int

    @property
    def has_parent(self) -> bool:
        return self.src_vol != sc.BLANK_UUID

    @classmethod
    def from_args(
        cls,
        sd: Any,
        img: Any,
        vol: Any,
        size: Any,
        vol_format: Any,
        preallocate: Any,
        disk_type: Any,
        description: Any,
        src_img: Any,
        src_vol: Any,
        initial_size: Any = None,
        legal: bool = True,
        sequence: Any = 0,
    ) -> CreateVolumeRequest:
        img_id = layout.image_id(img)
        src_vol_id = layout.optional_id(src_vol, "srcVolUUID")
        src_img_id = layout.optional_id(src_img, "srcImgUUID")
        if src_img_id == sc.BLANK_UUID:
            src_img_id = img_id
        fmt = sc.VolumeFormat.from_value(vol_format)
        if fmt is sc.VolumeFormat.UNKNOWN:
            raise se.IncorrectFormat(repr(vol_format))
        kind = sc.VolumeType.from_value(preallocate)
        if kind is sc.VolumeType.UNKNOWN:
            raise se.IncorrectType(repr(preallocate))
        if src_vol_id != sc.BLANK_UUID and fmt is not sc.VolumeFormat.COW:
            raise se.IncorrectFormat(f"a volume with a parent must be COW, not {fmt.name}")
        if not isinstance(description, str):
            raise se.InvalidParameterException(f"description={description!r}")
        return cls(
            sd=layout.domain_id(sd),
            img=img_id,
            vol=layout.volume_id(vol),
            size=size_arg(size, "size", required=src_vol_id == sc.BLANK_UUID),
            format=fmt,
            type=kind,
            disktype=sc.DiskType.from_value(disk_type),
            description=description,
            src_img=src_img_id,
            src_vol=src_vol_id,
            initial_size=size_arg(initial_size, "initial_size", required=False, zero_ok=True),
            legal=bool(legal),
            sequence=_int(sequence, "sequence"),
        )


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise se.InvalidParameterException(f"{name}={value!r}")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise se.InvalidParameterException(f"{name}={value!r}") from None


def size_arg(value: Any, name: str, required: bool, zero_ok: bool = False) -> int | None:
    """A size in bytes, rounded up to whole 512-byte sectors; None when absent and optional."""
    if value is None or value == "":
        if required:
            raise se.InvalidParameterException(f"{name} is required")
        return None
    number = _int(value, name)
    if number < 0 or (number == 0 and required):
        raise se.InvalidParameterException(f"{name}={value!r} (must be positive)")
    if number == 0 and not zero_ok:
        return None
    return -(-number // sc.BLOCK_SIZE_512) * sc.BLOCK_SIZE_512


@dataclass(frozen=True)
class _Parent:
    paths: VolumePaths
    metadata: VolumeMetadata
    in_other_image: bool


def create_volume(
    ctx: StoreContext, handle: DomainHandle, req: CreateVolumeRequest, record: Record | None
) -> None:
    """Create the volume ``req`` describes; the caller holds the locks.

    Without ``record`` (no task to roll back), a failure is undone here.
    """
    image = ImagePaths(handle.images_dir, req.img)
    paths = image.volume(req.vol)
    if volume_exists(handle.io, paths):
        raise se.VolumeAlreadyExists(req.vol)
    parent = _parent(handle, req)
    capacity = _capacity(req, parent)
    _check_initial_size(req, capacity)

    journal: list[tuple[str, dict[str, str]]] = []

    def note(name: str, **params: str) -> None:
        noted(record, name, **params)
        journal.append((name, params))

    try:
        _create_steps(ctx, handle, req, image, paths, parent, capacity, note)
    except BaseException as e:
        if record is None and isinstance(e, Exception):
            _roll_back(handle, journal)
        if isinstance(e, errors.VirtHostError) and not isinstance(e, errors.CommandError):
            raise
        if isinstance(e, OSError | errors.CommandError):
            raise se.VolumeCreationError(f"volume {req.vol}: {e}") from e
        raise
    log.info(
        "Created %s %s volume %s/%s (capacity %d)",
        req.format.name,
        req.type.name,
        req.img,
        req.vol,
        capacity,
    )


def _parent(handle: DomainHandle, req: CreateVolumeRequest) -> _Parent | None:
    if not req.has_parent:
        return None
    paths = ImagePaths(handle.images_dir, req.src_img).volume(req.src_vol)
    md = read_metadata(handle.io, paths)
    if md.legality is sc.Legality.ILLEGAL:
        raise se.CreateIllegalVolumeSnapshotError(req.src_vol)
    other = req.src_img != req.img
    if other and md.voltype is not sc.VolumeRole.SHARED:
        raise se.CannotShareVolume(
            f"volume {req.src_vol} of image {req.src_img} is {md.voltype.name}, not a template"
        )
    return _Parent(paths, md, other)


def _capacity(req: CreateVolumeRequest, parent: _Parent | None) -> int:
    if parent is None:
        assert req.size is not None
        return req.size
    if req.size is None:
        return parent.metadata.capacity
    if req.size < parent.metadata.capacity:
        raise se.InvalidParameterException(
            f"size={req.size} is smaller than the parent's capacity {parent.metadata.capacity}"
        )
    return req.size


def _check_initial_size(req: CreateVolumeRequest, capacity: int) -> None:
    if req.initial_size is None:
        return
    if req.format is sc.VolumeFormat.COW:
        if not req.initial_size:
            return
        raise se.InvalidParameterException("initial size is not supported for COW file volumes")
    if req.type is sc.VolumeType.SPARSE:
        raise se.InvalidParameterException("initial size is not supported for sparse volumes")
    if req.initial_size > capacity:
        raise se.InvalidParameterException(
            f"initial size {req.initial_size} exceeds capacity {capacity}"
        )


def _create_steps(
    ctx: StoreContext,
    handle: DomainHandle,
    req: CreateVolumeRequest,
    image: ImagePaths,
    paths: VolumePaths,
    parent: _Parent | None,
    capacity: int,
    note: Callable[..., None],
) -> None:
    io, version = handle.io, handle.metadata.version
    parent_was_leaf = (
        parent is not None
        and not parent.in_other_image
        and parent.metadata.voltype is sc.VolumeRole.LEAF
    )
    if parent_was_leaf:
        # Recorded first so that it runs last, once the new volume's record is gone.
        note(recovery.RESTORE_PARENT_ROLE, sd=req.sd, img=req.img, vol=req.src_vol)
    note(recovery.REMOVE_PARTIAL_VOLUME, sd=req.sd, img=req.img, vol=req.vol)

    if not io.exists(image.directory):
        with contextlib.suppress(FileExistsError):
            io.mkdir(image.directory, IMAGE_DIR_MODE)
    if parent is not None and parent.in_other_image:
        _link_template(ctx, handle, parent, image)

    md = VolumeMetadata(
        domain=req.sd,
        image=req.img,
        parent=req.src_vol,
        capacity=capacity,
        format=req.format,
        type=req.type,
        voltype=sc.VolumeRole.LEAF,
        disktype=req.disktype,
        description=req.description,
        legality=sc.Legality.ILLEGAL,
        sequence=req.sequence,
    )
    write_metadata(io, paths, md, version)

    if parent_was_leaf:
        assert parent is not None
        write_metadata(
            io, parent.paths, replace(parent.metadata, voltype=sc.VolumeRole.INTERNAL), version
        )

    _create_data(ctx, handle, req, paths, parent, capacity)

    io.truncate(paths.lease, handle.metadata.effective_alignment, mode=sc.FILE_VOLUME_PERMISSIONS)
    ctx.leases.init_volume_lease(
        req.sd,
        req.vol,
        paths.lease,
        handle.metadata.effective_alignment,
        handle.metadata.effective_block_size,
    )

    if req.legal:
        write_metadata(io, paths, replace(md, legality=sc.Legality.LEGAL), version)


def _link_template(
    ctx: StoreContext, handle: DomainHandle, parent: _Parent, image: ImagePaths
) -> None:
    """Give the new image its own names for the template's files (hard links)."""
    target = image.volume(parent.paths.volume)
    for src, dst in zip(parent.paths.all(), target.all(), strict=True):
        if src == parent.paths.lease and not handle.io.exists(src):
            continue  # a template without a lease (old domain): nothing to share
        hard_link(handle.io, src, dst)


def _create_data(
    ctx: StoreContext,
    handle: DomainHandle,
    req: CreateVolumeRequest,
    paths: VolumePaths,
    parent: _Parent | None,
    capacity: int,
) -> None:
    io = handle.io
    try:
        # Created here, exclusively and 0660: qemu-img then writes into it, keeping the mode.
        sparse_raw = req.format is sc.VolumeFormat.RAW and req.type is sc.VolumeType.SPARSE
        initial = capacity if sparse_raw else 0
        io.truncate(paths.data, initial, mode=sc.FILE_VOLUME_PERMISSIONS, exclusive=True)
    except FileExistsError:
        raise se.VolumeAlreadyExists(req.vol) from None
    if req.format is sc.VolumeFormat.RAW:
        if req.type is sc.VolumeType.PREALLOCATED:
            wanted = capacity if req.initial_size is None else req.initial_size
            allocated = max(wanted, MIN_RAW_ALLOCATION) if wanted < capacity else capacity
            qemuimg.create(
                paths.data, qemuimg.RAW, size=allocated, preallocation="falloc", **ctx.qemu
            )
            if allocated < capacity:
                qemuimg.resize(paths.data, capacity, format=qemuimg.RAW, **ctx.qemu)
        return
    compat = sc.qcow2_compat(handle.metadata.version)
    if parent is None:
        qemuimg.create(paths.data, qemuimg.QCOW2, size=capacity, compat=compat, **ctx.qemu)
        return
    # The backing file is the parent's file name, relative to the image directory, where
    # even a template has a name of its own. The size is known, so qemu-img need not open
    # the parent (-u): a running VM holds it locked when the engine takes a snapshot.
    qemuimg.create(
        paths.data,
        qemuimg.QCOW2,
        size=capacity,
        backing=req.src_vol,
        backing_format=parent.metadata.format.qemu_format,
        compat=compat,
        unsafe=True,
        **ctx.qemu,
    )


def _roll_back(handle: DomainHandle, journal: list[tuple[str, dict[str, str]]]) -> None:
    """Undo a failed creation when no task will: the journal's recoveries, in reverse."""
    for name, params in reversed(journal):
        try:
            if name == recovery.REMOVE_PARTIAL_VOLUME:
                recovery.remove_partial_volume(handle, params["img"], params["vol"])
            elif name == recovery.RESTORE_PARENT_ROLE:
                recovery.restore_parent_role(handle, params["img"], params["vol"])
        except Exception:
            log.exception("Rolling back %s %s failed", name, params)
