"""Cold merge on a real file domain: prepare_merge, the SDM.merge job (real qemu-img commit)
and finalize_merge leave the right chain, records and guest-visible data."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from virthost.storage import errors as se
from virthost.storage.jobs.sdmrequests import SubchainInfo
from virthost.storage.sdm import finalize_merge, prepare_merge

from .conftest import MiB, SdmLab, identical, new_id, qemu_info, qemu_io

pytestmark = pytest.mark.integration


def three_volume_chain(sdm: SdmLab) -> tuple[str, str, list[str]]:
    """An image ``a <- b <- c`` whose volumes each hold data of their own (c the leaf);
    b, a later snapshot, is larger than a (the disk was extended in between)."""
    sd, img, vols = sdm.new_domain(), new_id(), [new_id(), new_id(), new_id()]
    a, b, c = vols
    sdm.store.create_volume(sd, img, a, 4 * MiB, "COW", "SPARSE", "DATA", "", None, None)
    sdm.store.create_volume(sd, img, b, None, "COW", "SPARSE", "DATA", "", img, a)
    sdm.store.extend_size(sd, img, b, 6 * MiB)
    sdm.store.create_volume(sd, img, c, None, "COW", "SPARSE", "DATA", "", img, b)
    qemu_io(sdm.path(sd, img, a), "qcow2", "write -P 1 0 3M")
    qemu_io(sdm.path(sd, img, b), "qcow2", "write -P 2 1M 1M", "write -P 4 5M 512k")
    qemu_io(sdm.path(sd, img, c), "qcow2", "write -P 3 2M 512k")
    return sd, img, vols


def flattened(sdm: SdmLab, path: Path) -> Path:
    flat = sdm.root / f"{path.name}.flat.raw"
    subprocess.run(["qemu-img", "convert", "-U", "-O", "raw", str(path), str(flat)], check=True)
    return flat


def subchain(sd: str, img: str, base: str, top: str, generation: int | None) -> dict[str, object]:
    info: dict[str, object] = {"sd_id": sd, "img_id": img, "base_id": base, "top_id": top}
    if generation is not None:
        info["base_generation"] = generation
    return info


def test_merging_the_middle_volume_of_three(sdm: SdmLab) -> None:
    sd, img, (a, b, c) = three_volume_chain(sdm)
    leaf = sdm.path(sd, img, c)
    before = flattened(sdm, leaf)
    info = SubchainInfo(sd_id=sd, img_id=img, top_id=b, base_id=a, base_generation=0)

    prepare_merge(sdm.ctx, info)
    assert sdm.meta(sd, img, a).capacity == 6 * MiB
    status, job = sdm.run_job("merge", subchain(sd, img, a, b, 0))
    assert status == "done", job
    assert job["progress"] == 100.0
    # The job moved data only: the chain is as it was, base LEGAL with its next generation.
    md = sdm.meta(sd, img, a)
    assert (md.legality.value, md.generation, md.voltype.name) == ("LEGAL", 1, "INTERNAL")
    assert sdm.store.chain(sd, img, c) == [a, b, c]
    finalize_merge(sdm.ctx, info, remove_top=True)

    assert sdm.store.chain(sd, img, c) == [a, c]
    assert sorted(p.name for p in sdm.path(sd, img, a).parent.iterdir()) == sorted(
        f"{v}{suffix}" for v in (a, c) for suffix in ("", ".meta", ".lease")
    )
    assert qemu_info(leaf)["backing-filename"] == a
    assert (sdm.meta(sd, img, c).parent, sdm.meta(sd, img, c).voltype.name) == (a, "LEAF")
    assert sdm.meta(sd, img, a).voltype.name == "INTERNAL"
    assert qemu_info(sdm.path(sd, img, a))["virtual-size"] == 6 * MiB
    assert identical(before, "raw", leaf, "qcow2")
    assert sdm.store.prepare_image(sd, img, c)["path"] == str(leaf)  # qemu and records agree


def test_merging_the_leaf_into_its_parent(sdm: SdmLab) -> None:
    sd, img, (a, b, c) = three_volume_chain(sdm)
    before = flattened(sdm, sdm.path(sd, img, c))
    info = SubchainInfo(sd_id=sd, img_id=img, top_id=c, base_id=b)

    prepare_merge(sdm.ctx, info)
    status, job = sdm.run_job("merge", subchain(sd, img, b, c, None))
    assert status == "done", job
    finalize_merge(sdm.ctx, info)

    # As with VDSM, the top is left to the engine to delete: ILLEGAL, out of the chain.
    top, base = sdm.meta(sd, img, c), sdm.meta(sd, img, b)
    assert (top.legality.value, base.voltype.name, base.legality.value) == (
        "ILLEGAL",
        "LEAF",
        "LEGAL",
    )
    assert sdm.store.chain(sd, img, b) == [a, b]
    assert identical(before, "raw", sdm.path(sd, img, b), "qcow2")
    sdm.store.delete_volume(sd, img, c)
    assert sdm.store.volume_info(sd, img, b)["voltype"] == "LEAF"


def test_a_stale_base_generation_is_fenced_and_finalize_waits_for_a_legal_base(
    sdm: SdmLab,
) -> None:
    sd, img, (a, b, c) = three_volume_chain(sdm)
    before = flattened(sdm, sdm.path(sd, img, c))

    status, job = sdm.run_job("merge", subchain(sd, img, a, b, 3))
    assert status == "failed" and job["error"]["code"] == 911
    assert sdm.meta(sd, img, a).legality.value == "LEGAL"

    # An interrupted commit leaves the base ILLEGAL with its old generation: finalize refuses,
    # the engine's retry with that generation completes the merge.
    sdm.store.set_legality(sd, img, a, "ILLEGAL")
    info = SubchainInfo(sd_id=sd, img_id=img, top_id=b, base_id=a)
    with pytest.raises(se.PrepareIllegalVolumeError):
        finalize_merge(sdm.ctx, info)
    prepare_merge(sdm.ctx, info)
    status, job = sdm.run_job("merge", subchain(sd, img, a, b, 0))
    assert status == "done", job
    finalize_merge(sdm.ctx, info)
    assert sdm.store.chain(sd, img, c) == [a, c]
    assert identical(before, "raw", sdm.path(sd, img, c), "qcow2")


def test_a_volume_that_is_not_the_child_of_base_is_not_merged(sdm: SdmLab) -> None:
    sd, img, (a, b, c) = three_volume_chain(sdm)

    status, job = sdm.run_job("merge", subchain(sd, img, a, c, None))

    assert status == "failed" and job["error"]["code"] == 262
    assert [sdm.meta(sd, img, v).generation for v in (a, b, c)] == [0, 0, 0]
