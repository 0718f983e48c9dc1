"""Volume chains: from a volume down to its base, by the parent links in the metadata.

An image is a chain of qcow2 overlays, each record naming its parent (``PUUID``) and the base
naming the blank UUID. The chain is resolved from the records alone, inside the image
directory (a template base is linked there too), and is only trusted when the records agree
with what the images themselves say: qemu-img's backing chain must have the same length, the
same formats, and each overlay's backing file must be its parent's file name (relative, as
VDSM writes it). A parent that is missing, a loop, or a disagreement is VDSM's 262
(ImageIsNotLegalChain): preparing such a chain would hand a VM the wrong data.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from virthost.storage import constants as sc
from virthost.storage import errors as se
from virthost.storage.images.layout import ImagePaths, VolumePaths
from virthost.storage.images.volume import VolumeIO, read_metadata
from virthost.storage.qemuimg import ImageInfo
from virthost.storage.volmetadata import VolumeMetadata

# No image is that deep: a loop in broken metadata stops here at the latest.
MAX_CHAIN_LENGTH = 1000


@dataclass(frozen=True)
class ChainLink:
    """One volume of a chain: its files and its record."""

    paths: VolumePaths
    metadata: VolumeMetadata

    @property
    def volume(self) -> str:
        return self.paths.volume

    @property
    def is_template(self) -> bool:
        return self.metadata.voltype is sc.VolumeRole.SHARED


def resolve(io: VolumeIO, image: ImagePaths, vol: str) -> list[ChainLink]:
    """The chain of ``vol`` in ``image``, base first.

    ``vol`` itself missing is 201; a missing parent, a loop, or a volume of another image
    that is not a template is 262.
    """
    top = VolumePaths(image.directory, vol)
    links = [ChainLink(top, read_metadata(io, top))]
    _check_owner(links[0], image.image)
    seen = {vol}
    while links[-1].metadata.parent != sc.BLANK_UUID:
        parent = links[-1].metadata.parent
        if parent in seen or len(links) >= MAX_CHAIN_LENGTH:
            raise se.ImageIsNotLegalChain(f"image {image.image}: loop at volume {parent}")
        seen.add(parent)
        paths = VolumePaths(image.directory, parent)
        try:
            md = read_metadata(io, paths)
        except se.VolumeDoesNotExist:
            raise se.ImageIsNotLegalChain(
                f"image {image.image}: parent {parent} of {links[-1].volume} is missing"
            ) from None
        links.append(ChainLink(paths, md))
        _check_owner(links[-1], image.image)
    links.reverse()
    return links


def _check_owner(link: ChainLink, image: str) -> None:
    if link.metadata.image != image and not link.is_template:
        raise se.ImageIsNotLegalChain(
            f"volume {link.volume} belongs to image {link.metadata.image}, not {image}"
        )


def check_illegal(chain: Sequence[ChainLink]) -> None:
    """227 when a volume of the chain is ILLEGAL (its content cannot be trusted)."""
    for link in chain:
        if link.metadata.legality is sc.Legality.ILLEGAL:
            raise se.PrepareIllegalVolumeError(f"volume {link.volume} is ILLEGAL")


def check_data_files(io: VolumeIO, chain: Sequence[ChainLink]) -> None:
    """262 when a volume of the chain has a record but no data."""
    for link in chain:
        if not io.exists(link.paths.data):
            raise se.ImageIsNotLegalChain(f"volume {link.volume} has no data file")


def check_backing(chain: Sequence[ChainLink], info: ImageInfo) -> None:
    """262 unless qemu-img's view of the top image (``--backing-chain``) matches ``chain``."""
    images = [info, *info.backing_chain]
    links = list(reversed(chain))  # top first, as qemu-img lists them
    if len(images) != len(links):
        raise se.ImageIsNotLegalChain(
            f"metadata chain has {len(links)} volumes, the images {len(images)}"
        )
    for link, image in zip(links, images, strict=True):
        wanted_format = link.metadata.format.qemu_format
        if image.format != wanted_format:
            raise se.ImageIsNotLegalChain(
                f"volume {link.volume} is {image.format}, its metadata says {wanted_format}"
            )
        backing = image.backing_filename
        if link.metadata.parent == sc.BLANK_UUID:
            if backing:
                raise se.ImageIsNotLegalChain(f"base {link.volume} has a backing file {backing}")
        elif backing is None or os.path.basename(backing) != link.metadata.parent:
            raise se.ImageIsNotLegalChain(
                f"volume {link.volume} backs on {backing!r}, its parent is {link.metadata.parent}"
            )
