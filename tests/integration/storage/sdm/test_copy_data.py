"""SDM.copy_data on real file domains: whole volumes and chain layers copied with the real
qemu-img, generation fencing, and an abort of a running copy followed by a retry."""

from __future__ import annotations

import subprocess
from pathlib import Path
from urllib.parse import quote

import pytest

from virthost.common import errors
from virthost.storage import errors as se

from .conftest import MiB, SdmLab, div, identical, new_id, qemu_info, qemu_io, qemu_map

pytestmark = pytest.mark.integration


def test_copies_a_raw_volume_into_a_cow_one_and_bumps_its_generation(sdm: SdmLab) -> None:
    src_sd, dst_sd = sdm.new_domain(), sdm.new_domain()
    src_img, src, dst_img, dst = new_id(), new_id(), new_id(), new_id()
    sdm.store.create_volume(src_sd, src_img, src, 8 * MiB, "RAW", "SPARSE", "DATA", "", None, None)
    sdm.store.create_volume(dst_sd, dst_img, dst, 8 * MiB, "COW", "SPARSE", "DATA", "", None, None)
    qemu_io(sdm.path(src_sd, src_img, src), "raw", "write -P 0x5a 1M 2M", "write -P 7 7M 64k")
    before = sdm.meta(dst_sd, dst_img, dst)

    status, info = sdm.run_job("copy_data", div(src_sd, src_img, src),
                               div(dst_sd, dst_img, dst, generation=before.generation))  # fmt: skip

    assert status == "done" and info["progress"] == 100.0
    assert sdm.events.statuses(info["id"]) == ["running", "done"]
    after = sdm.meta(dst_sd, dst_img, dst)
    assert after.legality.value == "LEGAL"
    assert after.generation == before.generation + 1
    assert after.format.name == "COW" and after.capacity == before.capacity
    assert identical(sdm.path(src_sd, src_img, src), "raw", sdm.path(dst_sd, dst_img, dst), "qcow2")
    assert sdm.meta(src_sd, src_img, src).generation == 0  # the source is only read


def test_copies_a_chain_layer_by_layer_onto_the_copied_parent(sdm: SdmLab) -> None:
    sd = sdm.new_domain()
    src_img, s0, s1 = new_id(), new_id(), new_id()
    dst_img, d0, d1 = new_id(), new_id(), new_id()
    for img, base, top in ((src_img, s0, s1), (dst_img, d0, d1)):
        sdm.store.create_volume(sd, img, base, 4 * MiB, "COW", "SPARSE", "DATA", "", None, None)
        sdm.store.create_volume(sd, img, top, None, "COW", "SPARSE", "DATA", "", img, base)
    qemu_io(sdm.path(sd, src_img, s0), "qcow2", "write -P 1 0 2M")
    qemu_io(sdm.path(sd, src_img, s1), "qcow2", "write -P 2 1M 1M", "write -P 3 3M 512k")

    for src, dst in ((s0, d0), (s1, d1)):
        status, info = sdm.run_job("copy_data", div(sd, src_img, src), div(sd, dst_img, dst))
        assert status == "done", info

    top = sdm.path(sd, dst_img, d1)
    assert identical(sdm.path(sd, src_img, s1), "qcow2", top, "qcow2")
    assert identical(sdm.path(sd, src_img, s0), "qcow2", sdm.path(sd, dst_img, d0), "qcow2")
    # Only the layer's own data went into the top: the parent's clusters stay in the parent.
    assert qemu_info(top)["backing-filename"] == d0
    own = [(e["start"], e["length"]) for e in qemu_map(top) if e["depth"] == 0 and e["data"]]
    assert own == [(1 * MiB, MiB), (3 * MiB, MiB // 2)]
    assert [sdm.meta(sd, dst_img, v).generation for v in (d0, d1)] == [1, 1]


def test_a_stale_generation_fails_the_job_and_leaves_the_destination_alone(sdm: SdmLab) -> None:
    sd, img, src, dst_img, dst = sdm.new_domain(), new_id(), new_id(), new_id(), new_id()
    sdm.store.create_volume(sd, img, src, MiB, "RAW", "SPARSE", "DATA", "", None, None)
    sdm.store.create_volume(sd, dst_img, dst, MiB, "RAW", "SPARSE", "DATA", "", None, None)
    sdm.store.update_volume(sd, dst_img, dst, description="gen 1")

    status, info = sdm.run_job("copy_data", div(sd, img, src), div(sd, dst_img, dst, 0))

    assert status == "failed"
    assert info["error"]["code"] == se.GenerationMismatch.code == 911
    md = sdm.meta(sd, dst_img, dst)
    assert (md.legality.value, md.generation) == ("LEGAL", 1)


def test_an_illegal_source_is_not_copied(sdm: SdmLab) -> None:
    sd, img, src, dst_img, dst = sdm.new_domain(), new_id(), new_id(), new_id(), new_id()
    sdm.store.create_volume(sd, img, src, MiB, "RAW", "SPARSE", "DATA", "", None, None)
    sdm.store.create_volume(sd, dst_img, dst, MiB, "RAW", "SPARSE", "DATA", "", None, None)
    sdm.store.set_legality(sd, img, src, "ILLEGAL")

    status, info = sdm.run_job("copy_data", div(sd, img, src), div(sd, dst_img, dst))

    assert status == "failed" and info["error"]["code"] == 227
    assert sdm.meta(sd, dst_img, dst).legality.value == "LEGAL"


def test_an_external_endpoint_other_than_a_file_is_refused_by_the_verb(sdm: SdmLab) -> None:
    sd, img, vol = sdm.new_domain(), new_id(), new_id()
    external = {"endpoint_type": "external", "url": "nbd://example/x"}
    with pytest.raises(errors.UnsupportedOperation):
        sdm.api.copy_data(new_id(), external, div(sd, img, vol))
    for bad in ("file:///tmp/../etc/shadow", "file://otherhost/x", "file:relative"):
        with pytest.raises(errors.InvalidParameter):
            sdm.api.copy_data(
                new_id(), {"endpoint_type": "external", "url": bad}, div(sd, img, vol)
            )
    with pytest.raises(errors.UnsupportedOperation):
        sdm.api.copy_data(new_id(), div(sd, img, vol), external)  # never a destination
    assert sdm.api.get_jobs() == {}


def test_a_local_file_fills_a_new_volume(sdm: SdmLab, tmp_path: Path) -> None:
    sd, img, vol = sdm.new_domain(), new_id(), new_id()
    disk = tmp_path / "guest disk.qcow2"
    subprocess.run(["qemu-img", "create", "-f", "qcow2", str(disk), "4M"], check=True)
    qemu_io(str(disk), "qcow2", "write -P 0x42 1M 1M")
    sdm.store.create_volume(sd, img, vol, 4 * MiB, "RAW", "SPARSE", "DATA", "", None, None)

    source = {"endpoint_type": "external", "url": f"file://{quote(str(disk))}"}
    status, info = sdm.run_job("copy_data", source, div(sd, img, vol))

    assert status == "done", info
    assert identical(str(disk), "qcow2", sdm.path(sd, img, vol), "raw")
    assert sdm.meta(sd, img, vol).legality.value == "LEGAL"

    overlay = tmp_path / "overlay.qcow2"
    subprocess.run(
        ["qemu-img", "create", "-f", "qcow2", "-b", str(disk), "-F", "qcow2", str(overlay)],
        check=True,
    )
    status, info = sdm.run_job(
        "copy_data", {"endpoint_type": "external", "url": f"file://{overlay}"}, div(sd, img, vol)
    )
    assert status == "failed" and info["error"]["code"] == 1000  # a backing file is refused


def test_abort_stops_a_running_copy_and_the_same_generation_retries_it(sdm: SdmLab) -> None:
    sd, img, src, dst_img, dst = sdm.new_domain(), new_id(), new_id(), new_id(), new_id()
    size = 1024 * MiB
    sdm.store.create_volume(sd, img, src, size, "RAW", "SPARSE", "DATA", "", None, None)
    sdm.store.create_volume(sd, dst_img, dst, size, "COW", "SPARSE", "DATA", "", None, None)
    qemu_io(sdm.path(sd, img, src), "raw", *(f"write -P {n} {n * 30}M 1M" for n in range(1, 33)))
    generation = sdm.meta(sd, dst_img, dst).generation
    job_id = new_id()

    sdm.runner.gate_next = True  # hold qemu-img's first progress record back
    sdm.api.copy_data(job_id, div(sd, img, src), div(sd, dst_img, dst, generation))
    assert sdm.runner.first_output.wait(60), "qemu-img never reported progress"
    assert sdm.meta(sd, dst_img, dst).legality.value == "ILLEGAL"  # while it runs
    sdm.api.abort_job(job_id)
    sdm.runner.go_on.set()

    assert sdm.events.wait_final(job_id) == "aborted"
    assert sdm.events.statuses(job_id) == ["running", "aborting", "aborted"]
    md = sdm.meta(sd, dst_img, dst)
    assert (md.legality.value, md.generation) == ("ILLEGAL", generation)

    # What a daemon killed half-way leaves is the same: the engine's retry with the generation
    # it knows goes through, and a second one with that now stale generation is fenced.
    status, info = sdm.run_job("copy_data", div(sd, img, src), div(sd, dst_img, dst, generation))
    assert status == "done", info
    md = sdm.meta(sd, dst_img, dst)
    assert (md.legality.value, md.generation) == ("LEGAL", generation + 1)
    assert identical(sdm.path(sd, img, src), "raw", sdm.path(sd, dst_img, dst), "qcow2")
    status, info = sdm.run_job("copy_data", div(sd, img, src), div(sd, dst_img, dst, generation))
    assert status == "failed" and info["error"]["code"] == 911
