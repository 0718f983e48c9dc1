"""Which volumes SDM.amend_volume accepts, by format, role and domain version."""

from __future__ import annotations

from dataclasses import replace

import pytest

from virthost.common import errors
from virthost.storage.sdm.amend_volume import check_amendable, supported_compat

from .conftest import Env, MiB, new_id


def test_compat_levels_by_domain_version() -> None:
    assert supported_compat(3) == ("0.10",)
    assert supported_compat(4) == supported_compat(5) == ("0.10", "1.1")


def test_an_old_domain_takes_0_10_only(env: Env) -> None:
    img, vol = new_id(), new_id()
    env.store.create_volume(env.sd, img, vol, MiB, "COW", "SPARSE", "DATA", "", None, None)
    volume = env.ctx.locate(env.sd, img, vol)
    old = replace(
        volume, handle=replace(volume.handle, metadata=replace(volume.handle.metadata, version=3))
    )
    check_amendable(old, "0.10")
    with pytest.raises(errors.VirtHostError) as e:
        check_amendable(old, "1.1")
    assert e.value.code == 100
    assert f"Cannot amend volume {vol}" in str(e.value) and "does not support compat 1.1" in str(
        e.value
    )
    check_amendable(volume, "1.1")
