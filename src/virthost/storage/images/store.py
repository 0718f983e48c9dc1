"""The ImageStore service: the volume and image verbs of file storage domains.

Each verb validates its identifiers, takes its locks (see :mod:`.context`), locates the
domain, and does its work through the domain's out-of-process I/O and the time-boxed qemu-img
runner. The steps of the bigger verbs live in their own modules (:mod:`.create`,
:mod:`.delete`, :mod:`.copy`); what is left here is short enough to read in place.

Verbs that change storage take ``record`` (the task's ``add_recovery``) and call it with the
name of one of :meth:`ImageStore.recoveries` before each step that leaves something behind.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from virthost.common.commands import Runner
from virthost.common.resources import LockMode, LockSet, ResourceManager
from virthost.storage import constants as sc
from virthost.storage import errors as se
from virthost.storage import qemuimg
from virthost.storage.filedomain import DomainHandle
from virthost.storage.images import chain as chains
from virthost.storage.images import copy, create, delete, layout, recovery
from virthost.storage.images.context import (
    DomainLocator,
    LockRequest,
    Record,
    Recovery,
    StoreContext,
    image_lock,
    noted,
)
from virthost.storage.images.layout import ImagePaths, VolumePaths
from virthost.storage.images.leases import LEASE_OFFSET, VolumeLeaseInitializer
from virthost.storage.images.volume import (
    read_metadata,
    records_in_dir,
    sizes,
    volumes_in_dir,
    write_metadata,
)
from virthost.storage.volmetadata import VolumeMetadata, next_generation

log = logging.getLogger("virthost.storage.images")

EXCLUSIVE, SHARED = LockMode.EXCLUSIVE, LockMode.SHARED
VM_DISK_TYPE = "file"


class ImageStore:
    """Images and volumes of the file domains ``domains`` finds."""

    def __init__(
        self,
        domains: DomainLocator,
        runner: Runner,
        resources: ResourceManager,
        lock_timeout: float,
        leases: VolumeLeaseInitializer,
    ) -> None:
        self._ctx = StoreContext(domains, runner, resources, lock_timeout, leases)
        self._recoveries = recovery.Recoveries(self._ctx)

    def recoveries(self) -> dict[str, Recovery]:
        """The functions a task may have to run, by the names the verbs record."""
        return self._recoveries.by_name()

    # --- helpers --------------------------------------------------------------------------

    def _lock(self, sd: str, img: str, mode: LockMode, *extra: LockRequest) -> LockSet:
        return self._ctx.lock([*image_lock(sd, img, mode), *extra])

    def _volume(self, sd: Any, img: Any, vol: Any) -> tuple[str, str, str]:
        return layout.domain_id(sd), layout.image_id(img), layout.volume_id(vol)

    @staticmethod
    def _paths(handle: DomainHandle, img: str, vol: str) -> VolumePaths:
        return ImagePaths(handle.images_dir, img).volume(vol)

    # --- volumes --------------------------------------------------------------------------

    def create_volume(
        self,
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
        record: Record | None = None,
    ) -> None:
        """Create a volume (Volume.create); a snapshot when ``src_vol`` is given."""
        req = create.CreateVolumeRequest.from_args(
            sd, img, vol, size, vol_format, preallocate, disk_type, description, src_img,
            src_vol, initial_size, legal, sequence,
        )  # fmt: skip
        extra: list[LockRequest] = []
        if req.has_parent and req.src_img != req.img:
            extra = image_lock(req.sd, req.src_img, SHARED)
        with self._lock(req.sd, req.img, EXCLUSIVE, *extra):
            create.create_volume(self._ctx, self._ctx.domains.locate(req.sd), req, record)

    def delete_volume(
        self, sd: Any, img: Any, vol: Any, force: bool = False, record: Record | None = None
    ) -> None:
        """Delete a volume (Volume.delete): refused with children (204), or SHARED (223)
        unless ``force``."""
        sd, img, vol = self._volume(sd, img, vol)
        with self._lock(sd, img, EXCLUSIVE):
            delete.delete_volume(self._ctx.domains.locate(sd), img, vol, force, record)

    def volume_info(self, sd: Any, img: Any, vol: Any) -> dict[str, Any]:
        """Volume.getInfo, in VDSM's shape (sizes as strings)."""
        sd, img, vol = self._volume(sd, img, vol)
        with self._lock(sd, img, SHARED):
            handle = self._ctx.domains.locate(sd)
            paths = self._paths(handle, img, vol)
            try:
                md = read_metadata(handle.io, paths)
            except se.VolumeMetadataReadError as e:
                log.warning("Volume %s has unreadable metadata: %s", vol, e)
                return _invalid_info(vol)
            try:
                apparent, true = sizes(handle.io, paths)
                status = sc.VolumeStatus.OK.value
            except (se.VolumeDoesNotExist, se.VolumeAccessError):
                apparent, true, status = 0, 0, sc.VolumeStatus.INVALID.value
            return _info(vol, md, paths, status, apparent, true)

    def volume_size(self, sd: Any, img: Any, vol: Any) -> dict[str, str]:
        """Volume.getSize: allocated (``truesize``) and visible (``apparentsize``) bytes."""
        sd, img, vol = self._volume(sd, img, vol)
        with self._lock(sd, img, SHARED):
            handle = self._ctx.domains.locate(sd)
            apparent, true = sizes(handle.io, self._paths(handle, img, vol))
        return {"truesize": str(true), "apparentsize": str(apparent)}

    def extend_size(
        self, sd: Any, img: Any, vol: Any, new_size: Any, record: Record | None = None
    ) -> None:
        """Grow the virtual size (Volume.extendSize); shrinking is refused."""
        sd, img, vol = self._volume(sd, img, vol)
        size = create.size_arg(new_size, "newSize", required=True)
        assert size is not None
        with self._lock(sd, img, EXCLUSIVE):
            handle = self._ctx.domains.locate(sd)
            paths = self._paths(handle, img, vol)
            md = read_metadata(handle.io, paths)
            if md.voltype is sc.VolumeRole.SHARED:
                raise se.SharedVolumeNonWritable(f"volume {vol} is a template")
            if md.voltype is sc.VolumeRole.INTERNAL and md.parent != sc.BLANK_UUID:
                raise se.InternalVolumeNonWritable(f"volume {vol} is an internal volume")
            if size < md.capacity:
                raise se.VolumeExtendingError(
                    f"volume {vol}: {size} is smaller than its capacity {md.capacity}"
                )
            if size == md.capacity:
                return
            noted(record, recovery.SYNC_CAPACITY, sd=sd, img=img, vol=vol)
            self._resize(handle, paths, md, size)
            write_metadata(handle.io, paths, replace(md, capacity=size), handle.metadata.version)
            log.info("Extended volume %s/%s to %d bytes", img, vol, size)

    def _resize(
        self, handle: DomainHandle, paths: VolumePaths, md: VolumeMetadata, size: int
    ) -> None:
        try:
            if md.format is sc.VolumeFormat.COW:
                qemuimg.resize(paths.data, size, format=qemuimg.QCOW2, **self._ctx.qemu)
            elif md.type is sc.VolumeType.PREALLOCATED:
                qemuimg.resize(
                    paths.data, size, format=qemuimg.RAW, preallocation="falloc", **self._ctx.qemu
                )
            else:
                handle.io.truncate(paths.data, size)
        except (OSError, qemuimg.QemuImgError) as e:
            raise se.VolumeExtendingError(f"volume {paths.volume}: {e}") from e

    def measure(
        self,
        sd: Any,
        img: Any,
        vol: Any,
        dest_format: Any,
        backing_chain: bool = True,
        base: Any = None,
    ) -> dict[str, int]:
        """Bytes a ``dest_format`` copy of the volume (with its backing chain) needs."""
        sd, img, vol = self._volume(sd, img, vol)
        output = sc.VolumeFormat.from_value(dest_format).qemu_format
        with self._lock(sd, img, SHARED):
            handle = self._ctx.domains.locate(sd)
            chain = chains.resolve(handle.io, ImagePaths(handle.images_dir, img), vol)
            if base is not None and layout.volume_id(base, "baseID") != chain[0].volume:
                raise se.InvalidParameterException(
                    f"baseID={base!r}: measuring part of a chain is not supported yet"
                )
            if not backing_chain and len(chain) > 1:
                raise se.InvalidParameterException(
                    "backing_chain=False: measuring one layer of a chain is not supported yet"
                )
            top = chain[-1]
            result = qemuimg.measure(
                top.paths.data, format=top.metadata.format.qemu_format, output_format=output,
                **self._ctx.qemu,
            )  # fmt: skip
        return {"required": result.required, "bitmaps": result.bitmaps or 0}

    def qemu_image_info(self, sd: Any, img: Any, vol: Any) -> dict[str, Any]:
        """What qemu-img says about the volume, in VDSM's key names."""
        sd, img, vol = self._volume(sd, img, vol)
        with self._lock(sd, img, SHARED):
            handle = self._ctx.domains.locate(sd)
            paths = self._paths(handle, img, vol)
            md = read_metadata(handle.io, paths)
            info = qemuimg.info(
                paths.data, format=md.format.qemu_format, force_share=True, **self._ctx.qemu
            )
        result: dict[str, Any] = {"format": info.format, "virtualsize": info.virtual_size}
        optional = {
            "actualsize": info.actual_size,
            "clustersize": info.cluster_size,
            "backingfile": info.backing_filename,
            "compat": info.compat,
        }
        result.update({key: value for key, value in optional.items() if value is not None})
        return result

    def refresh_volume(self, sd: Any, img: Any, vol: Any) -> None:
        """Volume.refresh: on a file domain, only check that the volume is there."""
        sd, img, vol = self._volume(sd, img, vol)
        with self._lock(sd, img, SHARED):
            handle = self._ctx.domains.locate(sd)
            if not handle.io.exists(self._paths(handle, img, vol).data):
                raise se.VolumeDoesNotExist(vol)

    def teardown_volume(self, sd: Any, img: Any, vol: Any) -> None:
        """Volume.teardown: a file volume holds nothing to release."""
        self._volume(sd, img, vol)

    # --- metadata updates -------------------------------------------------------------------

    def update_volume(
        self,
        sd: Any,
        img: Any,
        vol: Any,
        legality: Any = None,
        description: Any = None,
        generation: Any = None,
        vol_type: Any = None,
        expected_generation: Any = None,
    ) -> None:
        """SDM.update_volume: change attributes and bump the generation (or set ``generation``).

        ``expected_generation`` fences stale callers (911); the type may only go from LEAF to
        SHARED, for a volume without a parent; setting the current legality again is refused.
        """
        sd, img, vol = self._volume(sd, img, vol)
        with self._lock(sd, img, EXCLUSIVE):
            handle = self._ctx.domains.locate(sd)
            paths = self._paths(handle, img, vol)
            md = read_metadata(handle.io, paths)
            if expected_generation is not None and int(expected_generation) != md.generation:
                raise se.GenerationMismatch(
                    f"volume {vol}: expected generation {expected_generation}, "
                    f"found {md.generation}"
                )
            changes: dict[str, Any] = {}
            if vol_type is not None:
                role = sc.VolumeRole.from_value(vol_type)
                if md.voltype is not sc.VolumeRole.LEAF or md.parent != sc.BLANK_UUID:
                    raise se.InvalidParameterException(
                        f"volume {vol} ({md.voltype.name}, parent {md.parent}) cannot become "
                        f"{role.name}"
                    )
                changes["voltype"] = role
            if legality is not None:
                wanted = sc.Legality.from_value(legality)
                if wanted is md.legality:
                    raise se.InvalidParameterException(f"volume {vol} is already {wanted.value}")
                changes["legality"] = wanted
            if description is not None:
                changes["description"] = _description(description)
            new_generation = (
                next_generation(md.generation) if generation is None else int(generation)
            )
            changes["generation"] = new_generation
            write_metadata(handle.io, paths, replace(md, **changes), handle.metadata.version)

    def set_legality(self, sd: Any, img: Any, vol: Any, legality: Any) -> None:
        """Volume.setLegality (the generation is left alone, as VDSM does)."""
        self._set(sd, img, vol, legality=sc.Legality.from_value(legality))

    def set_description(self, sd: Any, img: Any, vol: Any, description: Any) -> None:
        """Volume.setDescription (cut to 210 characters, as VDSM does)."""
        self._set(sd, img, vol, description=_description(description))

    def _set(self, sd: Any, img: Any, vol: Any, **changes: Any) -> None:
        sd, img, vol = self._volume(sd, img, vol)
        with self._lock(sd, img, EXCLUSIVE):
            handle = self._ctx.domains.locate(sd)
            paths = self._paths(handle, img, vol)
            md = read_metadata(handle.io, paths)
            write_metadata(handle.io, paths, replace(md, **changes), handle.metadata.version)

    # --- images ---------------------------------------------------------------------------

    def image_volumes(self, sd: Any, img: Any) -> list[str]:
        """The volumes of an image, sorted: its own, and a template it is based on."""
        sd, img = layout.domain_id(sd), layout.image_id(img)
        with self._lock(sd, img, SHARED):
            handle = self._ctx.domains.locate(sd)
            return _image_volumes(handle, img)

    def domain_volumes(self, sd: Any, img: Any = None) -> list[str]:
        """StorageDomain.getVolumes: every volume of the domain, or of one image."""
        if img is not None and img != "" and img != sc.BLANK_UUID:
            return self.image_volumes(sd, img)
        sd = layout.domain_id(sd)
        with self._ctx.lock([("00_storage", sd, SHARED)]):
            handle = self._ctx.domains.locate(sd)
            found: set[str] = set()
            for directory in delete.image_dirs(handle):
                found.update(volumes_in_dir(handle.io, directory))
            return sorted(found)

    def chain(self, sd: Any, img: Any, vol: Any) -> list[str]:
        """The volumes from the base up to ``vol``."""
        sd, img, vol = self._volume(sd, img, vol)
        with self._lock(sd, img, SHARED):
            handle = self._ctx.domains.locate(sd)
            links = chains.resolve(handle.io, ImagePaths(handle.images_dir, img), vol)
            return [link.volume for link in links]

    def prepare_image(
        self, sd: Any, img: Any, vol: Any, allow_illegal: bool = False
    ) -> dict[str, Any]:
        """Image.prepare: the checked chain of ``vol`` and where its files are."""
        sd, img, vol = self._volume(sd, img, vol)
        with self._lock(sd, img, SHARED):
            handle = self._ctx.domains.locate(sd)
            links = chains.resolve(handle.io, ImagePaths(handle.images_dir, img), vol)
            if not allow_illegal:
                chains.check_illegal(links)
            chains.check_data_files(handle.io, links)
            top = links[-1]
            try:
                info = qemuimg.info(
                    top.paths.data, format=top.metadata.format.qemu_format, backing_chain=True,
                    force_share=True, **self._ctx.qemu,
                )  # fmt: skip
            except qemuimg.QemuImgError as e:
                raise se.ImageIsNotLegalChain(f"image {img}: {e.detail}") from e
            chains.check_backing(links, info)
        path = top.paths.data
        return {
            "path": path,
            "info": {"type": VM_DISK_TYPE, "path": path},
            "imgVolumesInfo": [
                {
                    "domainID": sd,
                    "imageID": img,
                    "volumeID": link.volume,
                    "path": link.paths.data,
                    "leasePath": link.paths.lease,
                    "leaseOffset": LEASE_OFFSET,
                }
                for link in links
            ],
        }

    def teardown_image(self, sd: Any, img: Any, vol: Any = None) -> None:
        """Image.teardown: nothing to release for file volumes, but the ids must be sound."""
        layout.domain_id(sd)
        layout.image_id(img)
        if vol is not None and vol != "":
            layout.volume_id(vol)

    def delete_image(self, sd: Any, img: Any, record: Record | None = None) -> None:
        """Image.delete: ``_remove_me_<img>``, then gone; a template still in use is kept."""
        sd, img = layout.domain_id(sd), layout.image_id(img)
        with self._lock(sd, img, EXCLUSIVE):
            delete.delete_image(self._ctx.domains.locate(sd), img, record)

    def copy_image(
        self,
        src_sd: Any,
        img: Any,
        dst_sd: Any,
        move: bool,
        record: Record | None = None,
        progress: qemuimg.ProgressCallback | None = None,
    ) -> None:
        """Image.move: copy (``move=False``) or move the image's chain to another domain."""
        src, dst, img = layout.domain_id(src_sd), layout.domain_id(dst_sd), layout.image_id(img)
        if src == dst:
            raise se.InvalidParameterException(f"dstSdUUID={dst} is the source domain")
        locks = [*image_lock(src, img, EXCLUSIVE), *image_lock(dst, img, EXCLUSIVE)]
        with self._ctx.lock(locks):
            source = self._ctx.domains.locate(src)
            target = self._ctx.domains.locate(dst)
            copy.copy_image(self._ctx, source, target, img, record, progress)
            if move:
                delete.delete_image(source, img, record)


def _image_volumes(handle: DomainHandle, img: str) -> list[str]:
    directory = ImagePaths(handle.images_dir, img).directory
    records = records_in_dir(handle.io, directory)
    return sorted(
        vol for vol, md in records.items() if md.image == img or md.voltype is sc.VolumeRole.SHARED
    )


def _description(value: Any) -> str:
    if not isinstance(value, str):
        raise se.InvalidParameterException(f"description={value!r}")
    return value[: sc.DESCRIPTION_SIZE]


def _info(
    vol: str, md: VolumeMetadata, paths: VolumePaths, status: str, apparent: int, true: int
) -> dict[str, Any]:
    if md.legality is sc.Legality.ILLEGAL:
        status = sc.Legality.ILLEGAL.value  # VDSM reports ILLEGAL volumes with that status
    return {
        "uuid": vol,
        "type": md.type.name,
        "format": md.format.name,
        "disktype": md.disktype.value,
        "voltype": md.voltype.name,
        "capacity": str(md.capacity),
        "parent": md.parent,
        "description": md.description,
        "pool": "",
        "domain": md.domain,
        "image": md.image,
        "ctime": str(md.ctime),
        "mtime": "0",
        "legality": md.legality.value,
        "status": status,
        "apparentsize": str(apparent),
        "truesize": str(true),
        "generation": md.generation,
        "sequence": md.sequence,
        "lease": {"path": paths.lease, "offset": LEASE_OFFSET, "owners": [], "version": None},
        "children": [],
    }


def _invalid_info(vol: str) -> dict[str, Any]:
    return {
        "uuid": vol,
        "status": sc.VolumeStatus.INVALID.value,
        "apparentsize": "0",
        "truesize": "0",
        "children": [],
    }
