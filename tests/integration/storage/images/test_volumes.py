"""Volumes on a real file domain: RAW and COW creation, snapshots, templates, extend, measure,
delete rules, with real qemu-img, real out-of-process I/O and real sanlock leases."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest

from virthost.storage import clusterlock
from virthost.storage import errors as se
from virthost.storage.volmetadata import VolumeMetadata

from .conftest import Lab

pytestmark = pytest.mark.integration

MiB = 1024 * 1024
V5_KEYS = {
    "CAP", "CTIME", "DESCRIPTION", "DISKTYPE", "DOMAIN", "FORMAT", "GEN", "IMAGE", "LEGALITY",
    "PUUID", "SEQ", "TYPE", "VOLTYPE",
}  # fmt: skip


def new_id() -> str:
    return str(uuid.uuid4())


def qemu_info(path: Path, chain: bool = False) -> object:
    argv = ["qemu-img", "info", "--output", "json", "-U", *(["--backing-chain"] if chain else [])]
    out = subprocess.run([*argv, str(path)], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def meta_keys(path: Path) -> set[str]:
    lines = path.read_text().splitlines()
    assert lines[-1] == "EOF"
    return {line.split("=", 1)[0] for line in lines[:-1]}


def test_raw_sparse_and_preallocated(lab: Lab) -> None:
    sd, img, sparse, full = lab.new_domain(), new_id(), new_id(), new_id()
    lab.store.create_volume(sd, img, sparse, 8 * MiB, "RAW", "SPARSE", "DATA", "s", None, None)
    lab.store.create_volume(sd, img, full, 4 * MiB, 5, 1, "DATA", "p", None, None)
    directory = lab.image_dir(sd, img)
    data = directory / sparse
    assert data.stat().st_size == 8 * MiB and data.stat().st_blocks == 0
    assert data.stat().st_mode & 0o777 == 0o660
    assert (directory / full).stat().st_blocks * 512 >= 4 * MiB
    md = VolumeMetadata.parse((directory / f"{sparse}.meta").read_bytes())
    assert (md.legality.value, md.voltype.name, md.capacity) == ("LEGAL", "LEAF", 8 * MiB)
    assert meta_keys(directory / f"{sparse}.meta") == V5_KEYS
    lease = directory / f"{sparse}.lease"
    assert lease.stat().st_size == MiB
    status = clusterlock.read_resource_owners(sd, sparse, str(lease), 0)
    assert (status.lockspace, status.resource, status.owners) == (sd, sparse, ())
    info = lab.store.volume_info(sd, img, full)
    assert (info["format"], info["type"], info["status"]) == ("RAW", "PREALLOCATED", "OK")
    assert info["capacity"] == str(4 * MiB) and int(info["truesize"]) >= 4 * MiB
    assert lab.store.volume_size(sd, img, sparse) == {"truesize": "0", "apparentsize": str(8 * MiB)}
    with pytest.raises(se.VolumeAlreadyExists):
        lab.store.create_volume(sd, img, sparse, MiB, "RAW", "SPARSE", "DATA", "", None, None)


def test_snapshot_chain_prepare_and_delete_rules(lab: Lab) -> None:
    sd, img, base, top = lab.new_domain(), new_id(), new_id(), new_id()
    lab.store.create_volume(sd, img, base, 2 * MiB, "COW", "SPARSE", "DATA", "", None, None)
    lab.store.create_volume(sd, img, top, None, "COW", "SPARSE", "DATA", "", img, base)
    directory = lab.image_dir(sd, img)
    info = qemu_info(directory / top)
    assert isinstance(info, dict)
    assert info["backing-filename"] == base and info["backing-filename-format"] == "qcow2"
    assert info["format-specific"]["data"]["compat"] == "1.1"
    assert info["virtual-size"] == 2 * MiB
    assert lab.store.volume_info(sd, img, base)["voltype"] == "INTERNAL"
    assert lab.store.chain(sd, img, top) == [base, top]
    prepared = lab.store.prepare_image(sd, img, top)
    assert prepared["path"] == str(directory / top)
    assert [v["volumeID"] for v in prepared["imgVolumesInfo"]] == [base, top]
    assert lab.store.image_volumes(sd, img) == sorted([base, top])
    with pytest.raises(se.VolumeImageHasChildren) as e:
        lab.store.delete_volume(sd, img, base)
    assert e.value.code == 204
    lab.store.delete_volume(sd, img, top)
    assert sorted(p.name for p in directory.iterdir()) == sorted(
        [base, f"{base}.meta", f"{base}.lease"]
    )
    assert lab.store.volume_info(sd, img, base)["voltype"] == "LEAF"
    lab.store.delete_volume(sd, img, base)
    assert not directory.exists()


def test_illegal_volume_is_not_prepared_nor_snapshotted(lab: Lab) -> None:
    sd, img, vol = lab.new_domain(), new_id(), new_id()
    lab.store.create_volume(sd, img, vol, MiB, "COW", "SPARSE", "DATA", "", None, None)
    lab.store.set_legality(sd, img, vol, "ILLEGAL")
    with pytest.raises(se.PrepareIllegalVolumeError):
        lab.store.prepare_image(sd, img, vol)
    assert lab.store.prepare_image(sd, img, vol, allow_illegal=True)["path"]
    with pytest.raises(se.CreateIllegalVolumeSnapshotError):
        lab.store.create_volume(sd, img, new_id(), None, "COW", "SPARSE", "DATA", "", img, vol)


def test_leaf_over_a_template_of_another_image(lab: Lab) -> None:
    sd, tmpl_img, base, img, leaf = lab.new_domain(), new_id(), new_id(), new_id(), new_id()
    lab.store.create_volume(sd, tmpl_img, base, 4 * MiB, "RAW", "SPARSE", "DATA", "", None, None)
    lab.store.update_volume(sd, tmpl_img, base, vol_type="SHARED")
    lab.store.create_volume(sd, img, leaf, None, "COW", "SPARSE", "DATA", "", tmpl_img, base)
    original, linked = lab.image_dir(sd, tmpl_img), lab.image_dir(sd, img)
    for suffix in ("", ".meta", ".lease"):
        assert os.path.samefile(original / f"{base}{suffix}", linked / f"{base}{suffix}")
    chain = qemu_info(linked / leaf, chain=True)
    assert isinstance(chain, list) and len(chain) == 2
    assert chain[0]["backing-filename"] == base and chain[1]["format"] == "raw"
    assert lab.store.image_volumes(sd, img) == sorted([base, leaf])
    assert lab.store.chain(sd, img, leaf) == [base, leaf]
    assert lab.store.volume_info(sd, tmpl_img, base)["voltype"] == "SHARED"
    with pytest.raises(se.CannotDeleteSharedVolume):
        lab.store.delete_image(sd, tmpl_img)
    with pytest.raises(se.CannotDeleteSharedVolume):
        lab.store.delete_volume(sd, tmpl_img, base)
    lab.store.delete_image(sd, img)
    assert not linked.exists()
    assert not (linked.parent / f"_remove_me_{img}").exists()
    assert (original / base).stat().st_nlink == 1
    assert lab.store.volume_info(sd, tmpl_img, base)["status"] == "OK"
    lab.store.delete_image(sd, tmpl_img)
    assert not original.exists()


def test_snapshot_of_a_non_template_in_another_image_is_refused(lab: Lab) -> None:
    sd, other, base = lab.new_domain(), new_id(), new_id()
    lab.store.create_volume(sd, other, base, MiB, "RAW", "SPARSE", "DATA", "", None, None)
    img = new_id()
    with pytest.raises(se.CannotShareVolume):
        lab.store.create_volume(sd, img, new_id(), None, "COW", "SPARSE", "DATA", "", other, base)
    assert not lab.image_dir(sd, img).exists()


def test_extend_and_measure(lab: Lab) -> None:
    sd, img, raw, cow = lab.new_domain(), new_id(), new_id(), new_id()
    lab.store.create_volume(sd, img, raw, MiB, "RAW", "SPARSE", "DATA", "", None, None)
    lab.store.extend_size(sd, img, raw, 3 * MiB)
    assert (lab.image_dir(sd, img) / raw).stat().st_size == 3 * MiB
    assert lab.store.volume_info(sd, img, raw)["capacity"] == str(3 * MiB)
    with pytest.raises(se.VolumeExtendingError):
        lab.store.extend_size(sd, img, raw, MiB)
    other = new_id()
    lab.store.create_volume(sd, other, cow, MiB, "COW", "SPARSE", "DATA", "", None, None)
    lab.store.extend_size(sd, other, cow, 5 * MiB)
    info = qemu_info(lab.image_dir(sd, other) / cow)
    assert isinstance(info, dict) and info["virtual-size"] == 5 * MiB
    assert lab.store.qemu_image_info(sd, other, cow)["virtualsize"] == 5 * MiB
    measured = lab.store.measure(sd, img, raw, "COW")
    assert measured["required"] > 0 and measured["bitmaps"] == 0
    assert lab.store.measure(sd, img, raw, "RAW")["required"] == 3 * MiB
