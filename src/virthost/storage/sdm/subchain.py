"""The two volumes of a cold merge: ``top``, to be folded into its parent ``base``.

A cold merge (the VM is down) removes one volume from the middle or the end of an image's
chain: ``top``'s data is committed into ``base``, then whatever was above ``top`` is made to
sit on ``base``. The three steps of it (:mod:`.merge_steps` prepare, :mod:`.merge` the SDM job,
:mod:`.merge_steps` finalize) all start here, with the image locked EXCLUSIVE, by checking the
request against the records:

- ``top`` is a volume of the image, and ``base`` is its parent (VDSM's WrongParentVolume, 921,
  and VolumeIsNotInChain, 920, are not in our error table: both answer ImageIsNotLegalChain,
  262, whose meaning they refine);
- the chain below ``top`` resolves (no missing parent, no loop);
- neither is a template (SharedVolumeNonWritable, 219): a template is read by other images.
"""

from __future__ import annotations

from dataclasses import dataclass

from virthost.storage import constants as sc
from virthost.storage import errors as se
from virthost.storage.images import chain as chains
from virthost.storage.images.layout import ImagePaths
from virthost.storage.images.volume import children_in, records_in_dir
from virthost.storage.jobs.sdmrequests import SubchainInfo
from virthost.storage.sdm.context import LocatedVolume, SdmContext


@dataclass(frozen=True)
class Subchain:
    """``base`` and ``top`` as read under the image lock, and the chain from the base of the
    image up to ``top`` (volume ids, base first)."""

    info: SubchainInfo
    base: LocatedVolume
    top: LocatedVolume
    chain: tuple[str, ...]

    @property
    def below_base(self) -> tuple[str, ...]:
        """The volumes under ``base`` (a template, older snapshots), which stay as they are."""
        return self.chain[: self.chain.index(self.base.volume)]

    def top_children(self) -> list[str]:
        """The volumes whose record names ``top`` as parent (at most one in a sound image)."""
        io = self.top.handle.io
        return children_in(records_in_dir(io, self.top.paths.image_dir), self.top.volume)

    def base_children(self) -> list[str]:
        io = self.base.handle.io
        return children_in(records_in_dir(io, self.base.paths.image_dir), self.base.volume)


def locate_subchain(ctx: SdmContext, info: SubchainInfo) -> Subchain:
    """Read and check ``info``'s volumes; the caller holds the image EXCLUSIVE."""
    if info.top_id == info.base_id:
        raise se.InvalidParameterException(f"top_id and base_id are both {info.top_id}")
    if sc.BLANK_UUID in (info.top_id, info.base_id):
        raise se.InvalidParameterException("the blank UUID is not a volume")
    handle = ctx.domains.locate(info.sd_id)
    links = chains.resolve(handle.io, ImagePaths(handle.images_dir, info.img_id), info.top_id)
    top_link = links[-1]
    if top_link.metadata.image != info.img_id:
        raise se.ImageIsNotLegalChain(
            f"volume {info.top_id} is not a volume of image {info.img_id}"
        )
    if top_link.metadata.parent != info.base_id:
        raise se.ImageIsNotLegalChain(
            f"wrong parent volume: the parent of {info.top_id} is {top_link.metadata.parent}, "
            f"not {info.base_id}"
        )
    base_link = links[-2]
    for link in (base_link, top_link):
        if link.metadata.voltype is sc.VolumeRole.SHARED:
            raise se.SharedVolumeNonWritable(f"volume {link.volume} is a template")
    return Subchain(
        info=info,
        base=LocatedVolume(handle, base_link.paths, base_link.metadata),
        top=LocatedVolume(handle, top_link.paths, top_link.metadata),
        chain=tuple(link.volume for link in links),
    )


def check_legal(subchain: Subchain, *volumes: LocatedVolume) -> None:
    """PrepareIllegalVolumeError (227) when one of ``volumes`` or a volume under the base is
    ILLEGAL: qemu-img would read data nobody vouches for."""
    below = [subchain.base.sibling(vol) for vol in subchain.below_base]
    for volume in (*below, *volumes):
        if volume.metadata.legality is sc.Legality.ILLEGAL:
            raise se.PrepareIllegalVolumeError(f"volume {volume.volume} is ILLEGAL")
