"""The checks and the chain surgery of a cold merge, on small real images."""

from __future__ import annotations

import itertools

import pytest

from virthost.common import errors
from virthost.storage import constants as sc
from virthost.storage import errors as se
from virthost.storage.jobs.sdmrequests import SubchainInfo
from virthost.storage.sdm import finalize_merge, prepare_merge
from virthost.storage.sdm.subchain import locate_subchain

from .conftest import Env, MiB, new_id


def chain(env: Env, img: str, count: int, base_format: str = "COW") -> list[str]:
    vols = [new_id() for _ in range(count)]
    env.store.create_volume(
        env.sd, img, vols[0], MiB, base_format, "SPARSE", "DATA", "", None, None
    )
    for parent, vol in itertools.pairwise(vols):
        env.store.create_volume(env.sd, img, vol, None, "COW", "SPARSE", "DATA", "", img, parent)
    return vols


def info(env: Env, img: str, base: str, top: str) -> SubchainInfo:
    return SubchainInfo(sd_id=env.sd, img_id=img, top_id=top, base_id=base)


def test_the_subchain_is_checked_against_the_records(env: Env) -> None:
    img = new_id()
    a, b, c = chain(env, img, 3)
    assert locate_subchain(env.ctx, info(env, img, a, b)).chain == (a, b)
    with pytest.raises(se.ImageIsNotLegalChain, match="wrong parent"):
        locate_subchain(env.ctx, info(env, img, a, c))
    with pytest.raises(se.InvalidParameterException):
        locate_subchain(env.ctx, info(env, img, b, b))
    with pytest.raises(se.InvalidParameterException):
        locate_subchain(env.ctx, info(env, img, sc.BLANK_UUID, a))
    with pytest.raises(se.VolumeDoesNotExist):
        locate_subchain(env.ctx, info(env, img, a, new_id()))


def test_a_template_is_never_merged(env: Env) -> None:
    tmpl_img, img = new_id(), new_id()
    (tmpl,) = chain(env, tmpl_img, 1)
    env.store.update_volume(env.sd, tmpl_img, tmpl, vol_type="SHARED")
    leaf = new_id()
    env.store.create_volume(env.sd, img, leaf, None, "COW", "SPARSE", "DATA", "", tmpl_img, tmpl)
    with pytest.raises(se.SharedVolumeNonWritable) as e:
        locate_subchain(env.ctx, info(env, img, tmpl, leaf))
    assert e.value.code == 219


def test_prepare_grows_a_raw_base_file_and_a_cow_base_record(env: Env) -> None:
    raw_img, cow_img = new_id(), new_id()
    for img, fmt in ((raw_img, "RAW"), (cow_img, "COW")):
        base, top = chain(env, img, 2, fmt)
        env.store.extend_size(env.sd, img, top, 3 * MiB)
        prepare_merge(env.ctx, info(env, img, base, top))
        assert env.meta(img, base).capacity == 3 * MiB
        if fmt == "RAW":
            assert env.path(img, base).stat().st_size == 3 * MiB
        prepare_merge(env.ctx, info(env, img, base, top))  # nothing left to do
        assert env.meta(img, base).capacity == 3 * MiB


def test_a_failed_rebase_makes_top_legal_again(env: Env) -> None:
    img = new_id()
    a, b, c = chain(env, img, 3)
    env.runner.fail.add("rebase")
    with pytest.raises(errors.CommandError):
        finalize_merge(env.ctx, info(env, img, a, b), remove_top=True)
    assert env.meta(img, b).legality is sc.Legality.LEGAL
    assert env.meta(img, c).parent == b
    assert env.store.chain(env.sd, img, c) == [a, b, c]


def test_finalize_again_after_the_child_was_moved(env: Env) -> None:
    img = new_id()
    a, b, c = chain(env, img, 3)
    # A first finalize that stopped right after re-pointing the child onto the base:
    env.runner.run(
        ["qemu-img", "rebase", "-u", "-f", "qcow2", "-b", a, "-F", "qcow2", str(env.path(img, c))],
        60.0,
    )
    env.ctx.locate(env.sd, img, c).update(parent=a)
    env.ctx.locate(env.sd, img, b).update(legality=sc.Legality.ILLEGAL)

    finalize_merge(env.ctx, info(env, img, a, b), remove_top=True)

    assert env.store.chain(env.sd, img, c) == [a, c]
    assert not env.path(img, b).exists() and not env.path(img, f"{b}.meta").exists()
