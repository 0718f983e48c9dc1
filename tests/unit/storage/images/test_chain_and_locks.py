"""Chains (262, 227), child checks (204), metadata updates, and the locks each verb takes."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from virthost.common.resources import LockMode
from virthost.storage import errors as se
from virthost.storage.volmetadata import VolumeMetadata

from .conftest import Env, MiB, new_id

WAIT = 10.0


def qcow2(filename: str, backing: str | None) -> dict[str, Any]:
    info: dict[str, Any] = {"filename": filename, "format": "qcow2", "virtual-size": MiB}
    if backing:
        info.update({"backing-filename": backing, "backing-filename-format": "qcow2"})
    return info


def snapshot_chain(env: Env) -> tuple[str, str, str]:
    img, base, top = new_id(), new_id(), new_id()
    env.store.create_volume(env.sd, img, base, MiB, "COW", "SPARSE", "DATA", "", None, None)
    env.store.create_volume(env.sd, img, top, None, "COW", "SPARSE", "DATA", "", img, base)
    top_path = str(env.image_dir(img) / top)
    env.qemu.infos[top_path] = [qcow2(top_path, base), qcow2(base, None)]
    return img, base, top


def test_chain_is_resolved_and_checked_against_qemu_img(env: Env) -> None:
    img, base, top = snapshot_chain(env)
    assert env.store.chain(env.sd, img, top) == [base, top]
    prepared = env.store.prepare_image(env.sd, img, top)
    assert [v["volumeID"] for v in prepared["imgVolumesInfo"]] == [base, top]
    assert prepared["info"]["type"] == "file"
    info = next(c for c in env.qemu.calls if c[1] == "info")
    assert "--backing-chain" in info and "-U" in info


def test_backing_file_that_disagrees_is_262(env: Env) -> None:
    img, base, top = snapshot_chain(env)
    top_path = str(env.image_dir(img) / top)
    env.qemu.infos[top_path] = [qcow2(top_path, new_id()), qcow2(base, None)]
    with pytest.raises(se.ImageIsNotLegalChain) as e:
        env.store.prepare_image(env.sd, img, top)
    assert e.value.code == 262
    env.qemu.infos[top_path] = [qcow2(top_path, None)]
    with pytest.raises(se.ImageIsNotLegalChain):
        env.store.prepare_image(env.sd, img, top)


def test_missing_parent_is_262(env: Env) -> None:
    img, base, top = snapshot_chain(env)
    (env.image_dir(img) / f"{base}.meta").unlink()
    with pytest.raises(se.ImageIsNotLegalChain):
        env.store.chain(env.sd, img, top)
    with pytest.raises(se.ImageIsNotLegalChain):
        env.store.prepare_image(env.sd, img, top)


def test_parent_loop_is_262(env: Env) -> None:
    img, base, top = snapshot_chain(env)
    meta = env.image_dir(img) / f"{base}.meta"
    meta.write_text(
        meta.read_text().replace("PUUID=00000000-0000-0000-0000-000000000000", f"PUUID={top}")
    )
    with pytest.raises(se.ImageIsNotLegalChain):
        env.store.chain(env.sd, img, top)


def test_illegal_member_is_227(env: Env) -> None:
    img, base, top = snapshot_chain(env)
    env.store.set_legality(env.sd, img, base, "ILLEGAL")
    with pytest.raises(se.PrepareIllegalVolumeError) as e:
        env.store.prepare_image(env.sd, img, top)
    assert e.value.code == 227
    assert env.store.volume_info(env.sd, img, base)["status"] == "ILLEGAL"
    assert env.store.prepare_image(env.sd, img, top, allow_illegal=True)["path"]


def test_children_block_deletion_and_force_is_needed_for_templates(env: Env) -> None:
    img, base, _ = snapshot_chain(env)
    with pytest.raises(se.VolumeImageHasChildren) as e:
        env.store.delete_volume(env.sd, img, base)
    assert e.value.code == 204
    other, tmpl = new_id(), new_id()
    env.store.create_volume(env.sd, other, tmpl, MiB, "RAW", "SPARSE", "DATA", "", None, None)
    env.store.update_volume(env.sd, other, tmpl, vol_type="SHARED")
    with pytest.raises(se.CannotDeleteSharedVolume):
        env.store.delete_volume(env.sd, other, tmpl)
    env.store.delete_volume(env.sd, other, tmpl, force=True)
    assert not env.image_dir(other).exists()


def test_update_volume_bumps_or_sets_the_generation(env: Env) -> None:
    img, vol = new_id(), new_id()
    env.store.create_volume(env.sd, img, vol, MiB, "RAW", "SPARSE", "DATA", "", None, None)

    def md() -> VolumeMetadata:
        return VolumeMetadata.parse((env.image_dir(img) / f"{vol}.meta").read_bytes())

    env.store.update_volume(env.sd, img, vol, description="new")
    assert (md().description, md().generation) == ("new", 1)
    env.store.update_volume(env.sd, img, vol, legality="ILLEGAL", generation=42)
    assert (md().legality.value, md().generation) == ("ILLEGAL", 42)
    with pytest.raises(se.GenerationMismatch) as e:
        env.store.update_volume(env.sd, img, vol, legality="LEGAL", expected_generation=1)
    assert e.value.code == 911
    with pytest.raises(se.InvalidParameterException):
        env.store.update_volume(env.sd, img, vol, legality="ILLEGAL")
    env.store.set_description(env.sd, img, vol, "x" * 300)
    assert (len(md().description), md().generation) == (210, 42)


def test_locks_held_while_creating(env: Env) -> None:
    img = new_id()
    seen: list[dict[str, Any]] = []
    env.qemu.on_create = lambda argv: seen.append(env.resources.snapshot())
    env.store.create_volume(env.sd, img, new_id(), MiB, "COW", "SPARSE", "DATA", "", None, None)
    assert seen[0]["00_storage"][env.sd]["mode"] == "shared"
    assert seen[0][f"01_img_{env.sd}"][img]["mode"] == "exclusive"
    assert env.resources.snapshot() == {}


def test_reads_share_the_image_lock(env: Env) -> None:
    img, base, top = snapshot_chain(env)
    with env.resources.acquire(f"01_img_{env.sd}", img, LockMode.SHARED, 1.0):
        assert env.store.chain(env.sd, img, top) == [base, top]
        assert env.store.volume_info(env.sd, img, top)["uuid"] == top


class BlockingCreate:
    """qemu-img create that waits until released, telling which images got that far."""

    def __init__(self) -> None:
        self.entered: dict[str, threading.Event] = {}
        self.release = threading.Event()

    def __call__(self, argv: list[str]) -> None:
        image = argv[-2].split("/")[-2]
        self.entered.setdefault(image, threading.Event()).set()
        assert self.release.wait(WAIT)

    def event(self, image: str) -> threading.Event:
        return self.entered.setdefault(image, threading.Event())


def start(target: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def create_in(env: Env, img: str) -> Callable[[], None]:
    return lambda: env.store.create_volume(
        env.sd, img, new_id(), MiB, "COW", "SPARSE", "DATA", "", None, None
    )


def test_creates_in_different_images_overlap(env: Env) -> None:
    blocking = BlockingCreate()
    env.qemu.on_create = blocking
    first, second = new_id(), new_id()
    blocking.event(first), blocking.event(second)
    threads = [start(create_in(env, first)), start(create_in(env, second))]
    assert blocking.event(first).wait(WAIT)
    assert blocking.event(second).wait(WAIT)  # both inside qemu-img at once
    blocking.release.set()
    for thread in threads:
        thread.join(WAIT)
    assert len(env.store.image_volumes(env.sd, first)) == 1


def test_creates_in_one_image_queue(env: Env) -> None:
    blocking = BlockingCreate()
    env.qemu.on_create = blocking
    img = new_id()
    entered = blocking.event(img)
    first = start(create_in(env, img))
    assert entered.wait(WAIT)
    entered.clear()
    second = start(create_in(env, img))
    namespace = f"01_img_{env.sd}"
    queued = threading.Event()
    for _ in range(int(WAIT / 0.01)):
        if env.resources.snapshot().get(namespace, {}).get(img, {}).get("waiters"):
            queued.set()
            break
        threading.Event().wait(0.01)
    assert queued.is_set()
    assert not entered.is_set()  # the second is waiting for the image, not in qemu-img
    blocking.release.set()
    first.join(WAIT)
    assert entered.wait(WAIT)
    second.join(WAIT)
    assert len(env.store.image_volumes(env.sd, img)) == 2
