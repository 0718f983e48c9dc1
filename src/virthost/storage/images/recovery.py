"""Undoing or finishing what an interrupted operation left behind.

A task records a recovery (a name from :data:`RECOVERY_NAMES` and string parameters) before
each step that leaves something on the storage; when the task fails, or when the daemon died
and the task is reloaded, the recoveries run in reverse order. They must therefore work from
*any* intermediate state, including "nothing was done yet" and "this already ran once":
every function here looks at what is on the storage and only removes or rewrites what is
actually there. Each one takes the same locks the operation took (the operation's own locks
are released by the time a task rolls back).

The functions below the public ones work on an already located, already locked domain, so
the operations themselves reuse them for an inline rollback when no task is watching.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Mapping
from dataclasses import replace

from virthost.common.resources import LockMode
from virthost.storage import constants as sc
from virthost.storage import errors as se
from virthost.storage import qemuimg
from virthost.storage.filedomain import DomainHandle
from virthost.storage.images import layout
from virthost.storage.images.context import Recovery, StoreContext, image_lock
from virthost.storage.images.layout import ImagePaths
from virthost.storage.images.volume import (
    list_dir,
    read_metadata,
    recheck_role,
    records_in_dir,
    remove_file,
    remove_volume_files,
    volumes_in_dir,
    write_metadata,
)

log = logging.getLogger("virthost.storage.images")

REMOVE_PARTIAL_VOLUME = "images.remove_partial_volume"
RESTORE_PARENT_ROLE = "images.restore_parent_role"
SYNC_CAPACITY = "images.sync_capacity"
FINISH_IMAGE_REMOVAL = "images.finish_image_removal"
REMOVE_PARTIAL_COPY = "images.remove_partial_copy"
RECOVERY_NAMES = (
    REMOVE_PARTIAL_VOLUME,
    RESTORE_PARENT_ROLE,
    SYNC_CAPACITY,
    FINISH_IMAGE_REMOVAL,
    REMOVE_PARTIAL_COPY,
)


# --- on a located and locked domain ----------------------------------------------------------


def own_volumes(handle: DomainHandle, img: str) -> list[str]:
    """Volumes of image ``img`` in its directory; unreadable records count as its own."""
    image = ImagePaths(handle.images_dir, img)
    records = records_in_dir(handle.io, image.directory)
    return [
        vol
        for vol in volumes_in_dir(handle.io, image.directory)
        if vol not in records or records[vol].image == img
    ]


def remove_image_dir_if_unused(handle: DomainHandle, img: str) -> bool:
    """Remove the image directory once no volume of its own is left in it.

    Linked template volumes are only unlinked: they are other names of the template's files,
    whose originals stay in the template's image. Files of volumes without a record (a
    creation cut short between two links, say) and temporary files of an interrupted
    metadata write go too; anything else keeps the directory.
    """
    io, image = handle.io, ImagePaths(handle.images_dir, img)
    if not io.exists(image.directory) or own_volumes(handle, img):
        return False
    for name in list_dir(io, image.directory):
        if layout.is_volume_file(name):
            remove_file(io, os.path.join(image.directory, name))
    try:
        io.rmdir(image.directory)
    except FileNotFoundError:
        return False
    except OSError as e:
        if e.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise
        log.warning("Image directory %s is not empty, keeping it", image.directory)
        return False
    log.info("Removed image directory %s", image.directory)
    return True


def remove_partial_volume(handle: DomainHandle, img: str, vol: str) -> None:
    """Remove whatever exists of volume ``vol``, then its image directory if now unused."""
    remove_volume_files(handle.io, ImagePaths(handle.images_dir, img).volume(vol))
    remove_image_dir_if_unused(handle, img)


def restore_parent_role(handle: DomainHandle, img: str, vol: str) -> None:
    """Make the parent LEAF again if no child is left (INTERNAL otherwise)."""
    image = ImagePaths(handle.images_dir, img)
    recheck_role(handle.io, image.volume(vol), handle.metadata.version, [image.directory])


def sync_capacity(handle: DomainHandle, img: str, vol: str, runner_options: qemuimg.Run) -> None:
    """Make ``CAP`` say what the image's virtual size really is (after an interrupted extend)."""
    paths = ImagePaths(handle.images_dir, img).volume(vol)
    try:
        md = read_metadata(handle.io, paths)
    except se.VolumeDoesNotExist:
        return
    if md.format is sc.VolumeFormat.RAW:
        actual = handle.io.stat(paths.data).st_size
    else:
        actual = qemuimg.info(paths.data, format=qemuimg.QCOW2, **runner_options).virtual_size
    if actual != md.capacity:
        write_metadata(handle.io, paths, replace(md, capacity=actual), handle.metadata.version)
        log.info("Capacity of %s set to %d after an interrupted change", vol, actual)


def finish_image_removal(handle: DomainHandle, img: str) -> None:
    """Remove ``_remove_me_<img>`` if a deletion left it (the live image is never touched)."""
    removed = ImagePaths(handle.images_dir, img).removed_directory
    if handle.io.exists(removed):
        handle.io.rmtree(removed, handle.images_dir)
        log.info("Removed %s", removed)


def remove_partial_copy(handle: DomainHandle, img: str, source: DomainHandle) -> None:
    """Remove the copy of ``img`` from ``handle``'s domain while the source image still exists.

    Once a move has started to remove the source, the copy is the only one left and stays.
    """
    if not source.io.exists(ImagePaths(source.images_dir, img).directory):
        log.warning("Source of image %s is gone, keeping its copy in %s", img, handle.sd_uuid)
        return
    directory = ImagePaths(handle.images_dir, img).directory
    if handle.io.exists(directory):
        handle.io.rmtree(directory, handle.images_dir)
        log.info("Removed the partial copy %s", directory)


# --- the task-facing recoveries ----------------------------------------------------------------


class Recoveries:
    """The recovery functions by name, each taking its locks and locating its domain."""

    def __init__(self, ctx: StoreContext) -> None:
        self._ctx = ctx

    def by_name(self) -> dict[str, Recovery]:
        return {
            REMOVE_PARTIAL_VOLUME: self.remove_partial_volume,
            RESTORE_PARENT_ROLE: self.restore_parent_role,
            SYNC_CAPACITY: self.sync_capacity,
            FINISH_IMAGE_REMOVAL: self.finish_image_removal,
            REMOVE_PARTIAL_COPY: self.remove_partial_copy,
        }

    def _image(self, params: Mapping[str, str]) -> tuple[str, str]:
        return layout.domain_id(params.get("sd"), "sd"), layout.image_id(params.get("img"), "img")

    def remove_partial_volume(self, params: Mapping[str, str]) -> None:
        sd, img = self._image(params)
        vol = layout.volume_id(params.get("vol"), "vol")
        with self._ctx.lock(image_lock(sd, img, LockMode.EXCLUSIVE)):
            remove_partial_volume(self._ctx.domains.locate(sd), img, vol)

    def restore_parent_role(self, params: Mapping[str, str]) -> None:
        sd, img = self._image(params)
        vol = layout.volume_id(params.get("vol"), "vol")
        with self._ctx.lock(image_lock(sd, img, LockMode.EXCLUSIVE)):
            restore_parent_role(self._ctx.domains.locate(sd), img, vol)

    def sync_capacity(self, params: Mapping[str, str]) -> None:
        sd, img = self._image(params)
        vol = layout.volume_id(params.get("vol"), "vol")
        with self._ctx.lock(image_lock(sd, img, LockMode.EXCLUSIVE)):
            sync_capacity(self._ctx.domains.locate(sd), img, vol, self._ctx.qemu)

    def finish_image_removal(self, params: Mapping[str, str]) -> None:
        sd, img = self._image(params)
        with self._ctx.lock(image_lock(sd, img, LockMode.EXCLUSIVE)):
            finish_image_removal(self._ctx.domains.locate(sd), img)

    def remove_partial_copy(self, params: Mapping[str, str]) -> None:
        sd, img = self._image(params)
        src = layout.domain_id(params.get("src_sd"), "src_sd")
        locks = image_lock(sd, img, LockMode.EXCLUSIVE) + image_lock(src, img, LockMode.SHARED)
        with self._ctx.lock(locks):
            remove_partial_copy(self._ctx.domains.locate(sd), img, self._ctx.domains.locate(src))
