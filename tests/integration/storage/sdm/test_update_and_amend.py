"""SDM.update_volume and SDM.amend_volume on real file domains, through real jobs."""

from __future__ import annotations

import subprocess

import pytest

from .conftest import MiB, SdmLab, identical, new_id, qemu_info, qemu_io

pytestmark = pytest.mark.integration


def vol_info(sd: str, img: str, vol: str, generation: int | None = None) -> dict[str, object]:
    info: dict[str, object] = {"sd_id": sd, "img_id": img, "vol_id": vol}
    if generation is not None:
        info["generation"] = generation
    return info


def test_update_volume_changes_attributes_and_fences_by_generation(sdm: SdmLab) -> None:
    sd, img, vol = sdm.new_domain(), new_id(), new_id()
    sdm.store.create_volume(sd, img, vol, MiB, "RAW", "SPARSE", "DATA", "old", None, None)

    status, info = sdm.run_job(
        "update_volume", vol_info(sd, img, vol, 0), {"legality": "ILLEGAL", "description": "new"}
    )

    assert status == "done", info
    md = sdm.meta(sd, img, vol)
    assert (md.legality.value, md.description, md.generation) == ("ILLEGAL", "new", 1)

    status, info = sdm.run_job("update_volume", vol_info(sd, img, vol, 0), {"description": "x"})
    assert status == "failed" and info["error"]["code"] == 911
    assert sdm.meta(sd, img, vol).description == "new"

    status, info = sdm.run_job(
        "update_volume", vol_info(sd, img, vol), {"type": 6, "generation": 7}
    )
    assert status == "done", info
    md = sdm.meta(sd, img, vol)
    assert (md.voltype.name, md.generation) == ("SHARED", 7)


def test_amend_upgrades_compat_0_10_to_1_1_keeping_data(sdm: SdmLab) -> None:
    sd, img, base, top = sdm.new_domain(), new_id(), new_id(), new_id()
    sdm.store.create_volume(sd, img, base, 4 * MiB, "COW", "SPARSE", "DATA", "", None, None)
    sdm.store.create_volume(sd, img, top, None, "COW", "SPARSE", "DATA", "", img, base)
    path = sdm.path(sd, img, top)
    qemu_io(path, "qcow2", "write -P 9 1M 1M")
    subprocess.run(["qemu-img", "amend", "-f", "qcow2", "-o", "compat=0.10", str(path)], check=True)
    assert qemu_info(path)["format-specific"]["data"]["compat"] == "0.10"
    flat = sdm.root / "before.raw"
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(path), str(flat)], check=True)

    status, info = sdm.run_job("amend_volume", vol_info(sd, img, top, 0), {"compat": "1.1"})

    assert status == "done", info
    assert qemu_info(path)["format-specific"]["data"]["compat"] == "1.1"
    assert qemu_info(path)["backing-filename"] == base
    md = sdm.meta(sd, img, top)
    assert (md.legality.value, md.generation) == ("LEGAL", 1)
    assert identical(flat, "raw", path, "qcow2")


def test_amend_refuses_raw_volumes_and_templates(sdm: SdmLab) -> None:
    sd, img, raw, tmpl_img, tmpl = sdm.new_domain(), new_id(), new_id(), new_id(), new_id()
    sdm.store.create_volume(sd, img, raw, MiB, "RAW", "SPARSE", "DATA", "", None, None)
    sdm.store.create_volume(sd, tmpl_img, tmpl, MiB, "COW", "SPARSE", "DATA", "", None, None)
    sdm.store.update_volume(sd, tmpl_img, tmpl, vol_type="SHARED")

    for target, reason in (
        (vol_info(sd, img, raw), "not COW"),
        (vol_info(sd, tmpl_img, tmpl), "shared"),
    ):
        status, info = sdm.run_job("amend_volume", target, {"compat": "0.10"})
        assert status == "failed"
        assert info["error"]["code"] == 100 and reason in info["error"]["message"]
    assert sdm.meta(sd, tmpl_img, tmpl).generation == 1  # only the update bumped it
    assert qemu_info(sdm.path(sd, tmpl_img, tmpl))["format-specific"]["data"]["compat"] == "1.1"


def test_amend_on_a_v4_domain_and_its_generation_fence(sdm: SdmLab) -> None:
    sd, img, vol = sdm.new_domain(version=4), new_id(), new_id()
    sdm.store.create_volume(sd, img, vol, MiB, "COW", "SPARSE", "DATA", "", None, None)
    path = sdm.path(sd, img, vol)

    status, info = sdm.run_job("amend_volume", vol_info(sd, img, vol, 5), {"compat": "0.10"})
    assert status == "failed" and info["error"]["code"] == 911
    assert qemu_info(path)["format-specific"]["data"]["compat"] == "1.1"

    status, info = sdm.run_job("amend_volume", vol_info(sd, img, vol, 0), {"compat": "0.10"})
    assert status == "done", info
    assert qemu_info(path)["format-specific"]["data"]["compat"] == "0.10"
    assert sdm.meta(sd, img, vol).generation == 1
