"""Deleting volumes and images from a file domain.

A volume is first marked ILLEGAL (no host will prepare it from then on), then its data, lease
and record go, then its parent is LEAF again when it has no other child, and its image
directory goes when no volume of its own is left. The recoveries recorded before the first
change *finish* a deletion rather than undo it: removed data cannot come back, and a half
deleted volume is worth nothing.

An image is renamed ``_remove_me_<img>`` before anything is removed, as VDSM does: the rename
is atomic, so other hosts see the whole image or no image, and a deletion cut short leaves a
directory every host knows to be garbage. Template volumes shared with other images are hard
links there: removing an image that only links a template removes its names for the files, not
the template; removing the template's own image while other images still use it is refused.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from virthost.common import errors
from virthost.storage import constants as sc
from virthost.storage import errors as se
from virthost.storage.filedomain import DomainHandle
from virthost.storage.images import recovery
from virthost.storage.images.context import Record, noted
from virthost.storage.images.layout import ImagePaths, image_id
from virthost.storage.images.volume import (
    children,
    list_dir,
    read_metadata,
    recheck_role,
    records_in_dir,
    remove_volume_files,
    write_metadata,
)

log = logging.getLogger("virthost.storage.images")


def image_dirs(handle: DomainHandle) -> list[str]:
    """The directories of the domain's images (``_remove_me_`` ones and strays excluded)."""
    found = []
    for name in list_dir(handle.io, handle.images_dir):
        try:
            found.append(ImagePaths(handle.images_dir, image_id(name, "image")).directory)
        except errors.VirtHostError:
            continue  # not an image
    return found


def delete_volume(
    handle: DomainHandle, img: str, vol: str, force: bool, record: Record | None
) -> None:
    """Delete volume ``vol`` of image ``img``; the caller holds the image EXCLUSIVE."""
    io, version = handle.io, handle.metadata.version
    image = ImagePaths(handle.images_dir, img)
    paths = image.volume(vol)
    md = read_metadata(io, paths)
    if md.image != img:
        raise se.CannotDeleteVolume(
            f"{vol} is a template of image {md.image} linked into {img}; delete the image instead"
        )
    if not force:
        if md.voltype is sc.VolumeRole.SHARED:
            raise se.CannotDeleteSharedVolume(f"image {img} volume {vol}")
        kids = children(io, [image.directory], vol)
        if kids:
            raise se.VolumeImageHasChildren(f"volume {vol} has children {kids}")
    parent_paths = image.volume(md.parent) if md.parent != sc.BLANK_UUID else None
    if parent_paths is not None:
        noted(record, recovery.RESTORE_PARENT_ROLE, sd=handle.sd_uuid, img=img, vol=md.parent)
    noted(record, recovery.REMOVE_PARTIAL_VOLUME, sd=handle.sd_uuid, img=img, vol=vol)

    if md.legality is not sc.Legality.ILLEGAL:
        write_metadata(io, paths, replace(md, legality=sc.Legality.ILLEGAL), version)
    remove_volume_files(io, paths)
    if parent_paths is not None:
        recheck_role(io, parent_paths, version, [image.directory])
    recovery.remove_image_dir_if_unused(handle, img)
    log.info("Deleted volume %s/%s", img, vol)


def delete_image(handle: DomainHandle, img: str, record: Record | None) -> None:
    """Delete image ``img``: rename it ``_remove_me_<img>``, then remove that directory."""
    io = handle.io
    image = ImagePaths(handle.images_dir, img)
    if not io.exists(image.directory):
        raise se.ImageDoesNotExistInSD(f"image {img} in domain {handle.sd_uuid}")
    for vol, md in records_in_dir(io, image.directory).items():
        shared = md.image == img and md.voltype is sc.VolumeRole.SHARED
        if shared and io.stat(image.volume(vol).meta).st_nlink > 1:
            raise se.CannotDeleteSharedVolume(
                f"template volume {vol} of image {img} is used by other images"
            )
    noted(record, recovery.FINISH_IMAGE_REMOVAL, sd=handle.sd_uuid, img=img)
    if io.exists(image.removed_directory):
        io.rmtree(image.removed_directory, handle.images_dir)  # an earlier attempt's
    try:
        io.rename(image.directory, image.removed_directory)
    except OSError as e:
        raise se.ImageDeleteError(f"image {img}: {e}") from e
    try:
        io.rmtree(image.removed_directory, handle.images_dir)
    except OSError as e:
        raise se.ImageDeleteError(f"image {img}: {e}") from e
    log.info("Deleted image %s from domain %s", img, handle.sd_uuid)
