"""create_volume: argument checks, VDSM's format rules, the order of the steps, recoveries."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from virthost.common import errors
from virthost.storage import errors as se
from virthost.storage.images import RECOVERY_NAMES
from virthost.storage.volmetadata import VolumeMetadata

from .conftest import Env, MiB, new_id


def legality(path: Path) -> str:
    return VolumeMetadata.parse(path.read_bytes()).legality.value


@pytest.mark.parametrize(
    "field, value",
    [
        ("sd", "../etc"),
        ("img", "../../etc"),
        ("vol", "x/y"),
        ("img", "00000000-0000-0000-0000-000000000000"),
        ("src_vol", ".."),
    ],
)
def test_bad_identifiers_are_refused_before_any_path(env: Env, field: str, value: str) -> None:
    args = {"sd": env.sd, "img": new_id(), "vol": new_id(), "src_img": None, "src_vol": None}
    args[field] = value
    with pytest.raises((errors.InvalidParameter, se.InvalidParameterException)):
        env.store.create_volume(
            args["sd"], args["img"], args["vol"], MiB, "RAW", "SPARSE", "DATA", "",
            args["src_img"], args["src_vol"],
        )  # fmt: skip
    assert list((env.root / "storage" / env.sd / "images").iterdir()) == []


@pytest.mark.parametrize(
    "fmt, prealloc, size, initial, error",
    [
        ("QCOW9", "SPARSE", MiB, None, se.IncorrectFormat),
        (3, "SPARSE", MiB, None, se.IncorrectFormat),
        ("RAW", "THICK", MiB, None, se.IncorrectType),
        ("RAW", "SPARSE", 0, None, se.InvalidParameterException),
        ("RAW", "SPARSE", -1, None, se.InvalidParameterException),
        ("RAW", "SPARSE", "many", None, se.InvalidParameterException),
        ("RAW", "SPARSE", MiB, MiB // 2, se.InvalidParameterException),
        ("RAW", "PREALLOCATED", MiB, 2 * MiB, se.InvalidParameterException),
        ("COW", "SPARSE", MiB, MiB // 2, se.InvalidParameterException),
    ],
)
def test_vdsm_format_rules(
    env: Env, fmt: object, prealloc: object, size: object, initial: object, error: type
) -> None:
    with pytest.raises(error):
        env.store.create_volume(
            env.sd, new_id(), new_id(), size, fmt, prealloc, "DATA", "", None, None, initial
        )


def test_a_volume_with_a_parent_must_be_cow(env: Env) -> None:
    img, base = new_id(), new_id()
    env.store.create_volume(env.sd, img, base, MiB, "RAW", "SPARSE", "DATA", "", None, None)
    with pytest.raises(se.IncorrectFormat) as e:
        env.store.create_volume(env.sd, img, new_id(), None, "RAW", "SPARSE", "DATA", "", img, base)
    assert e.value.code == 202


def test_cow_preallocated_is_a_plain_qcow2_on_file(env: Env) -> None:
    img, vol = new_id(), new_id()
    env.store.create_volume(env.sd, img, vol, MiB, "COW", "PREALLOCATED", "DATA", "", None, None)
    create = next(c for c in env.qemu.calls if c[1] == "create")
    assert "qcow2" in create and not any("preallocation" in arg for arg in create)
    assert "compat=1.1" in create
    md = VolumeMetadata.parse((env.image_dir(img) / f"{vol}.meta").read_bytes())
    assert md.type.name == "PREALLOCATED"


def test_raw_preallocated_with_initial_size(env: Env) -> None:
    img, vol = new_id(), new_id()
    env.store.create_volume(
        env.sd, img, vol, 8 * MiB, "RAW", "PREALLOCATED", "DATA", "", None, None, 100
    )
    create = next(c for c in env.qemu.calls if c[1] == "create")
    assert "preallocation=falloc" in create and create[-1] == "4096"
    resize = next(c for c in env.qemu.calls if c[1] == "resize")
    assert resize[-1] == str(8 * MiB)


def test_size_is_rounded_to_sectors_and_snapshot_takes_parent_capacity(env: Env) -> None:
    img, base, top = new_id(), new_id(), new_id()
    env.store.create_volume(env.sd, img, base, MiB + 1, "COW", "SPARSE", "DATA", "", None, None)
    assert env.store.volume_info(env.sd, img, base)["capacity"] == str(MiB + 512)
    env.store.create_volume(env.sd, img, top, 0, "COW", "SPARSE", "DATA", "", None, base)
    assert env.store.volume_info(env.sd, img, top)["capacity"] == str(MiB + 512)
    with pytest.raises(se.InvalidParameterException):
        env.store.create_volume(env.sd, img, new_id(), MiB, "COW", "SPARSE", "DATA", "", img, top)


def test_metadata_is_illegal_until_the_last_step(env: Env) -> None:
    img, vol = new_id(), new_id()
    meta = env.image_dir(img) / f"{vol}.meta"
    seen: list[str] = []
    env.qemu.on_create = lambda argv: seen.append(legality(meta))
    env.leases.on_init = lambda path: seen.append(legality(meta))
    journal: list[tuple[str, Mapping[str, str]]] = []
    env.store.create_volume(
        env.sd, img, vol, MiB, "COW", "SPARSE", "DATA", "d", None, None,
        record=lambda name, params: journal.append((name, params)),
    )  # fmt: skip
    assert seen == ["ILLEGAL", "ILLEGAL"]
    assert legality(meta) == "LEGAL"
    assert env.leases.calls == [(env.sd, vol, str(env.image_dir(img) / f"{vol}.lease"))]
    assert (env.image_dir(img) / f"{vol}.lease").stat().st_size == MiB
    assert [name for name, _ in journal] == ["images.remove_partial_volume"]
    assert dict(journal[0][1]) == {"sd": env.sd, "img": img, "vol": vol}


def test_legal_false_leaves_the_volume_illegal(env: Env) -> None:
    img, vol = new_id(), new_id()
    env.store.create_volume(
        env.sd, img, vol, MiB, "RAW", "SPARSE", "DATA", "", None, None, legal=False, sequence=7
    )
    md = VolumeMetadata.parse((env.image_dir(img) / f"{vol}.meta").read_bytes())
    assert (md.legality.value, md.sequence) == ("ILLEGAL", 7)


def test_existing_volume_is_212(env: Env) -> None:
    img, vol = new_id(), new_id()
    env.store.create_volume(env.sd, img, vol, MiB, "RAW", "SPARSE", "DATA", "", None, None)
    with pytest.raises(se.VolumeAlreadyExists) as e:
        env.store.create_volume(env.sd, img, vol, MiB, "RAW", "SPARSE", "DATA", "", None, None)
    assert e.value.code == 212


def test_failure_without_a_task_is_rolled_back_inline(env: Env) -> None:
    img, base, top = new_id(), new_id(), new_id()
    env.store.create_volume(env.sd, img, base, MiB, "COW", "SPARSE", "DATA", "", None, None)

    def fail(path: str) -> None:
        raise se.ClusterLockInitError("sanlock said no")

    env.leases.on_init = fail
    with pytest.raises(se.ClusterLockInitError):
        env.store.create_volume(env.sd, img, top, None, "COW", "SPARSE", "DATA", "", img, base)
    assert sorted(p.name for p in env.image_dir(img).iterdir()) == sorted(
        [base, f"{base}.meta", f"{base}.lease"]
    )
    assert env.store.volume_info(env.sd, img, base)["voltype"] == "LEAF"


def test_recoveries_are_idempotent_and_safe_on_nothing(env: Env) -> None:
    recoveries = env.store.recoveries()
    assert set(recoveries) == set(RECOVERY_NAMES)
    img, vol = new_id(), new_id()
    params = {"sd": env.sd, "img": img, "vol": vol, "src_sd": env.sd}
    for _ in range(2):
        for name in RECOVERY_NAMES:
            recoveries[name](params)
    env.store.create_volume(env.sd, img, vol, MiB, "RAW", "SPARSE", "DATA", "", None, None)
    recoveries["images.remove_partial_volume"](params)
    recoveries["images.remove_partial_volume"](params)
    assert not env.image_dir(img).exists()
    with pytest.raises((errors.InvalidParameter, se.InvalidParameterException)):
        recoveries["images.remove_partial_volume"]({**params, "img": "../x"})
