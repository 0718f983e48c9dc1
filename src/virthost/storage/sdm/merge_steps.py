"""The steps around SDM.merge, for the SPM verbs StoragePool.prepareMerge and finalizeMerge.

A cold merge of ``top`` into its parent ``base``, as the engine drives it with VDSM::

    StoragePool.prepareMerge   -> prepare_merge(ctx, info)     base can hold top's data
    SDM.merge (a host job)     -> .merge.commit_subchain       top's data committed into base
    StoragePool.finalizeMerge  -> finalize_merge(ctx, info)    the chain no longer has top
    Volume.delete / Image.deleteVolumes of top (engine)        or finalize_merge(remove_top=True)

:func:`prepare_merge` grows the base to the top's capacity when the top is larger (a snapshot
taken after the disk was extended): a COW base only needs its record changed, qemu-img grows
the image itself while committing; a RAW base has its file extended like Volume.extendSize.

:func:`finalize_merge` re-links the chain the way VDSM's finalize does, so that what the chain
shows a guest stays the same:

- *leaf merge* (top was the LEAF): top is marked ILLEGAL and base becomes the LEAF;
- *internal merge*: top is marked ILLEGAL first, then top's child is rebased onto base
  (``qemu-img rebase -u``: only the header changes, base already holds top's data) and its
  record's parent (``PUUID``) set to base; if the rebase fails top is made LEGAL again, so the
  whole merge can be retried. Base stays INTERNAL.

Top is then only an ILLEGAL volume nobody reads; VDSM leaves its removal to the engine, and so
does ``remove_top=False``, which is what the SPM verb must pass. ``remove_top=True`` also deletes
its files, for callers running the whole merge themselves.

Each step runs with the image locked EXCLUSIVE and re-checks the subchain. Running finalize
again after an interruption is safe: a child already re-pointed to base is recognised.
"""

from __future__ import annotations

import logging

from virthost.storage import constants as sc
from virthost.storage import errors as se
from virthost.storage import qemuimg
from virthost.storage.images.volume import remove_volume_files
from virthost.storage.jobs.sdmrequests import SubchainInfo
from virthost.storage.sdm.context import EXCLUSIVE, LocatedVolume, SdmContext
from virthost.storage.sdm.subchain import Subchain, check_legal, locate_subchain

log = logging.getLogger("virthost.storage.sdm")


def prepare_merge(ctx: SdmContext, info: SubchainInfo) -> None:
    """Make ``base`` as large as ``top`` (StoragePool.prepareMerge's work)."""
    with ctx.lock_image(info.sd_id, info.img_id, EXCLUSIVE):
        subchain = locate_subchain(ctx, info)
        top_capacity = subchain.top.metadata.capacity
        base = subchain.base
        if top_capacity <= base.metadata.capacity:
            return
        if base.metadata.format is sc.VolumeFormat.COW:
            log.info("Merge: base %s capacity -> %d (record only)", base.volume, top_capacity)
            base.update(capacity=top_capacity)
            return
    # A RAW base: its file must grow too, as Volume.extendSize does (under its own lock).
    log.info("Merge: extending RAW base %s to %d bytes", base.volume, top_capacity)
    ctx.images.extend_size(info.sd_id, info.img_id, info.base_id, top_capacity)


def finalize_merge(ctx: SdmContext, info: SubchainInfo, *, remove_top: bool = False) -> None:
    """Take ``top`` out of the chain after SDM.merge (StoragePool.finalizeMerge's work).

    Refused with PrepareIllegalVolumeError (227) while base is ILLEGAL: the commit did not
    complete, and a chain re-linked onto a half-merged base would show a guest wrong data.
    """
    with ctx.lock_image(info.sd_id, info.img_id, EXCLUSIVE):
        subchain = locate_subchain(ctx, info)
        check_legal(subchain, subchain.base)
        if subchain.top.metadata.voltype is sc.VolumeRole.LEAF:
            _finalize_leaf_merge(subchain)
        else:
            _finalize_internal_merge(ctx, subchain)
        if remove_top:
            remove_volume_files(subchain.top.handle.io, subchain.top.paths)
            log.info("Merge: removed volume %s", subchain.top.volume)


def _finalize_leaf_merge(subchain: Subchain) -> None:
    top = subchain.top.update(legality=sc.Legality.ILLEGAL)
    base = subchain.base.update(voltype=sc.VolumeRole.LEAF)
    log.info("Merge: %s is the leaf now, %s is ILLEGAL", base.volume, top.volume)


def _finalize_internal_merge(ctx: SdmContext, subchain: Subchain) -> None:
    base, top = subchain.base, subchain.top
    children = subchain.top_children()
    if len(children) > 1:
        raise se.ImageIsNotLegalChain(f"volume {top.volume} has several children: {children}")
    if not children:
        moved = [vol for vol in subchain.base_children() if vol != top.volume]
        if not moved:
            raise se.ImageIsNotLegalChain(f"internal volume {top.volume} has no child")
        log.info("Merge: child %s already sits on %s", moved[0], base.volume)
        top.update(legality=sc.Legality.ILLEGAL)
        return
    child = top.sibling(children[0])
    top = top.update(legality=sc.Legality.ILLEGAL)
    try:
        qemuimg.rebase(
            child.path,
            base.volume,
            format=child.qemu_format,
            backing_format=base.qemu_format,
            unsafe=True,
            **ctx.qemu,
        )
    except BaseException:
        _restore_legal(top)
        raise
    child.update(parent=base.volume)
    log.info("Merge: %s now sits on %s, %s is ILLEGAL", child.volume, base.volume, top.volume)


def _restore_legal(top: LocatedVolume) -> None:
    """Make top LEGAL again after a failed rebase, so the merge can be retried; a failure
    here is logged, not raised, so that the rebase's own error is the one reported."""
    try:
        top.update(legality=sc.Legality.LEGAL)
    except Exception:
        log.exception("Merge: cannot make %s LEGAL again", top.volume)
