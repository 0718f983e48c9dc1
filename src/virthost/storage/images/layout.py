"""Where an image and its volumes live in a file domain, from validated identifiers only.

``<sd>/images/<img>/<vol>`` is the data, ``<vol>.meta`` the metadata record and
``<vol>.lease`` the volume's sanlock lease. Every UUID that reaches a path here went through
:func:`virthost.common.validate.uuid` first (canonical lowercase, nothing but hex and dashes),
so an identifier from the wire can never name ``..`` or another directory. The blank UUID is
refused for images and volumes: VDSM uses it to say "no parent", never as a real name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from virthost.common import errors, validate
from virthost.storage import constants as sc
from virthost.storage import errors as se


def volume_id(value: Any, name: str = "volumeID") -> str:
    """A volume UUID from the wire; the blank UUID is not a volume."""
    vol = validate.uuid(value, name)
    if vol == sc.BLANK_UUID:
        raise se.InvalidParameterException(f"{name}={value!r} (blank UUID)")
    return vol


def image_id(value: Any, name: str = "imageID") -> str:
    """An image UUID from the wire; the blank UUID is not an image."""
    img = validate.uuid(value, name)
    if img == sc.BLANK_UUID:
        raise se.InvalidParameterException(f"{name}={value!r} (blank UUID)")
    return img


def domain_id(value: Any, name: str = "storagedomainID") -> str:
    return validate.uuid(value, name)


def optional_id(value: Any, name: str) -> str:
    """A parent reference: a UUID, with None and "" meaning the blank UUID."""
    if value is None or value == "":
        return sc.BLANK_UUID
    return validate.uuid(value, name)


@dataclass(frozen=True)
class ImagePaths:
    """An image directory of a domain, and the names that go with it."""

    images_dir: str
    image: str

    @property
    def directory(self) -> str:
        return os.path.join(self.images_dir, self.image)

    @property
    def removed_directory(self) -> str:
        """Where the image goes while it is being deleted (``_remove_me_<img>``)."""
        return os.path.join(self.images_dir, sc.REMOVED_IMAGE_PREFIX + self.image)

    def volume(self, vol: str) -> VolumePaths:
        return VolumePaths(self.directory, vol)


@dataclass(frozen=True)
class VolumePaths:
    """The three files of one volume in one image directory."""

    image_dir: str
    volume: str

    @property
    def data(self) -> str:
        return os.path.join(self.image_dir, self.volume)

    @property
    def meta(self) -> str:
        return self.data + sc.META_FILEEXT

    @property
    def lease(self) -> str:
        return self.data + sc.LEASE_FILEEXT

    def all(self) -> tuple[str, str, str]:
        """Data, metadata and lease: what a volume leaves in its image directory."""
        return (self.data, self.meta, self.lease)


def volume_name_of_meta(file_name: str) -> str | None:
    """The volume UUID a ``<vol>.meta`` file name stands for, or None for other files."""
    if not file_name.endswith(sc.META_FILEEXT):
        return None
    stem = file_name[: -len(sc.META_FILEEXT)]
    try:
        return volume_id(stem, "volume")
    except errors.VirtHostError:
        return None  # a stray file, not a volume


def is_volume_file(file_name: str) -> bool:
    """Whether ``file_name`` is a volume's data, record or lease, or a temporary file left by
    an interrupted atomic write of one (``.<name>.<random>.tmp``)."""
    if file_name.startswith(".") and file_name.endswith(".tmp"):
        return is_volume_file(file_name[1:].split(".tmp", 1)[0].rsplit(".", 1)[0])
    for suffix in (sc.META_FILEEXT, sc.LEASE_FILEEXT, ""):
        if suffix and not file_name.endswith(suffix):
            continue
        stem = file_name[: len(file_name) - len(suffix)] if suffix else file_name
        try:
            volume_id(stem, "volume")
            return True
        except errors.VirtHostError:
            continue
    return False
