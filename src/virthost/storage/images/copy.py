"""Copying an image's chain to another domain (Image.move, operations "copy" and "move").

The destination gets the same chain, volume by volume from the base up, with the same UUIDs,
formats, allocation policy and metadata (its ``DOMAIN`` changed): each volume's record is
written ILLEGAL first, the data copied with ``qemu-img convert`` into the same format (an
overlay only gets its own layer, backed by its parent's file name, so the copy's chain is as
relative as the original's), its lease created, and the record made LEGAL last. An image based
on a template needs that template in the destination already (the engine copies templates
first, as with VDSM); it is linked into the new image there.

The recovery recorded first removes the copy, but only while the source image is still there:
a move removes its source only after the copy completed, and from then on the copy is the one
to keep.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import replace

from virthost.common import errors
from virthost.storage import constants as sc
from virthost.storage import errors as se
from virthost.storage import qemuimg
from virthost.storage.filedomain import DomainHandle
from virthost.storage.images import chain as chains
from virthost.storage.images import recovery
from virthost.storage.images.context import Record, StoreContext, noted
from virthost.storage.images.layout import ImagePaths
from virthost.storage.images.volume import hard_link, read_metadata, records_in_dir, write_metadata

log = logging.getLogger("virthost.storage.images")

IMAGE_DIR_MODE = 0o755


def source_chain(source: DomainHandle, img: str) -> list[chains.ChainLink]:
    """The image's chain in the source domain, base first; every volume must be LEGAL."""
    image = ImagePaths(source.images_dir, img)
    if not source.io.exists(image.directory):
        raise se.ImageDoesNotExistInSD(f"image {img} in domain {source.sd_uuid}")
    records = records_in_dir(source.io, image.directory)
    parents = {md.parent for md in records.values()}
    leaves = [vol for vol, md in records.items() if md.image == img and vol not in parents]
    if len(leaves) != 1:
        raise se.ImageIsNotLegalChain(f"image {img} has leaves {leaves}, not one")
    links = chains.resolve(source.io, image, leaves[0])
    own = {vol for vol, md in records.items() if md.image == img}
    if own - {link.volume for link in links}:
        raise se.ImageIsNotLegalChain(f"image {img} has volumes outside its chain")
    for link in links:
        if link.metadata.legality is not sc.Legality.LEGAL:
            raise se.ImageIsNotLegalChain(f"volume {link.volume} is {link.metadata.legality}")
    return links


def copy_image(
    ctx: StoreContext,
    source: DomainHandle,
    target: DomainHandle,
    img: str,
    record: Record | None,
    progress: qemuimg.ProgressCallback | None,
) -> None:
    """Copy image ``img`` from ``source`` to ``target``; the caller holds both image locks."""
    links = source_chain(source, img)
    dst_image = ImagePaths(target.images_dir, img)
    if target.io.exists(dst_image.directory):
        raise se.MoveImageError(f"image {img} already exists in domain {target.sd_uuid}")
    template = links[0] if links[0].metadata.image != img else None
    if template is not None:
        _check_template(target, template)
    own = [link for link in links if link.metadata.image == img]

    noted(record, recovery.REMOVE_PARTIAL_COPY, sd=target.sd_uuid, img=img, src_sd=source.sd_uuid)
    try:
        with contextlib.suppress(FileExistsError):
            target.io.mkdir(dst_image.directory, IMAGE_DIR_MODE)
        if template is not None:
            original = ImagePaths(target.images_dir, template.metadata.image)
            template_paths = original.volume(template.volume)
            for src, dst in zip(
                template_paths.all(), dst_image.volume(template.volume).all(), strict=True
            ):
                if target.io.exists(src):
                    hard_link(target.io, src, dst)
        for index, link in enumerate(own):
            _copy_volume(ctx, source, target, img, link, _scaled(progress, index, len(own)))
    except BaseException as e:
        if record is None and isinstance(e, Exception):
            with contextlib.suppress(Exception):
                recovery.remove_partial_copy(target, img, source)
        if isinstance(e, OSError | errors.CommandError):
            raise se.MoveImageError(f"image {img}: {e}") from e
        raise
    log.info("Copied image %s from %s to %s", img, source.sd_uuid, target.sd_uuid)


def _check_template(target: DomainHandle, template: chains.ChainLink) -> None:
    paths = ImagePaths(target.images_dir, template.metadata.image).volume(template.volume)
    try:
        md = read_metadata(target.io, paths)
    except se.VolumeDoesNotExist:
        raise se.ImageDoesNotExistInSD(
            f"template {template.metadata.image}/{template.volume} is not in domain "
            f"{target.sd_uuid}; copy it first"
        ) from None
    if md.voltype is not sc.VolumeRole.SHARED or md.legality is not sc.Legality.LEGAL:
        raise se.ImageIsNotLegalChain(f"template {template.volume} in {target.sd_uuid} unusable")


def _scaled(
    progress: qemuimg.ProgressCallback | None, index: int, count: int
) -> qemuimg.ProgressCallback | None:
    """The overall progress when volume ``index`` of ``count`` reports its own."""
    if progress is None:
        return None
    callback = progress

    def report(percent: float) -> None:
        callback((index * 100.0 + percent) / count)

    return report


def _copy_volume(
    ctx: StoreContext,
    source: DomainHandle,
    target: DomainHandle,
    img: str,
    link: chains.ChainLink,
    progress: qemuimg.ProgressCallback | None,
) -> None:
    md = link.metadata
    paths = ImagePaths(target.images_dir, img).volume(link.volume)
    version = target.metadata.version
    write_metadata(
        target.io, paths, replace(md, domain=target.sd_uuid, legality=sc.Legality.ILLEGAL), version
    )
    target.io.truncate(paths.data, 0, mode=sc.FILE_VOLUME_PERMISSIONS, exclusive=True)
    fmt = md.format.qemu_format
    parent_format = None
    if md.parent != sc.BLANK_UUID:
        parent_paths = ImagePaths(target.images_dir, img).volume(md.parent)
        parent_format = read_metadata(target.io, parent_paths).format.qemu_format
    prealloc = md.format is sc.VolumeFormat.RAW and md.type is sc.VolumeType.PREALLOCATED
    qemuimg.convert(
        link.paths.data,
        paths.data,
        src_format=fmt,
        dst_format=fmt,
        dst_compat=sc.qcow2_compat(version) if md.format is sc.VolumeFormat.COW else None,
        backing=md.parent if parent_format else None,
        backing_format=parent_format,
        preallocation="falloc" if prealloc else None,
        progress=progress,
        **ctx.qemu,
    )
    alignment = target.metadata.effective_alignment
    target.io.truncate(paths.lease, alignment, mode=sc.FILE_VOLUME_PERMISSIONS)
    ctx.leases.init_volume_lease(
        target.sd_uuid, link.volume, paths.lease, alignment, target.metadata.effective_block_size
    )
    write_metadata(
        target.io, paths, replace(md, domain=target.sd_uuid, legality=sc.Legality.LEGAL), version
    )
