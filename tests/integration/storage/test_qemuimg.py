"""The qemu-img wrappers against the real qemu-img, on image files in a temporary directory.

Images get their data from plain writes (raw) or from qemu-io (qcow2), and are checked by
reading them back through ``convert`` to raw, so each test shows a wrapper doing what its
name says to real bytes.
"""

from __future__ import annotations

import errno
import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from virthost.storage import qemuimg

MiB = 1024 * 1024

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img is not installed"),
]


@pytest.fixture
def cache(tmp_path: Path) -> str:
    """``none`` (O_DIRECT, VDSM's choice) where the file system supports it."""
    probe = tmp_path / ".direct"
    probe.write_bytes(b"")
    try:
        os.close(os.open(probe, os.O_RDONLY | os.O_DIRECT))
    except OSError as e:
        if e.errno == errno.EINVAL:
            return "writeback"
        raise
    finally:
        probe.unlink()
    return "none"


def qemu_io_write(path: Path, fmt: str, pattern: int, offset: int, length: int) -> None:
    if shutil.which("qemu-io") is None:
        pytest.skip("qemu-io is not installed")
    command = f"write -P {pattern} {offset} {length}"
    subprocess.run(["qemu-io", "-f", fmt, "-c", command, str(path)], check=True, timeout=60)


def raw_content(image: Path, fmt: str, cache: str) -> bytes:
    """The guest-visible bytes of ``image``."""
    out = image.with_name(image.name + ".raw")
    qemuimg.convert(image, out, fmt, "raw", cache=cache)
    data = out.read_bytes()
    out.unlink()
    return data


def make_raw(path: Path, size: int, data: bytes = b"", offset: int = 0) -> None:
    with path.open("wb") as f:
        f.truncate(size)
        f.seek(offset)
        f.write(data)


# --- create, info, amend -----------------------------------------------------------------


def test_create_raw_and_qcow2(tmp_path: Path) -> None:
    qemuimg.create(tmp_path / "a.raw", "raw", MiB)
    qemuimg.create(tmp_path / "b.qcow2", "qcow2", 10 * MiB, cluster_size=128 * 1024)
    raw = qemuimg.info(tmp_path / "a.raw")
    qcow2 = qemuimg.info(tmp_path / "b.qcow2", "qcow2")
    assert (raw.format, raw.virtual_size, raw.compat, raw.backing_filename) == (
        "raw",
        MiB,
        None,
        None,
    )
    assert (qcow2.format, qcow2.virtual_size, qcow2.cluster_size) == ("qcow2", 10 * MiB, 128 * 1024)
    assert qcow2.compat == "1.1" and qcow2.corrupt is False and not qcow2.dirty


def test_preallocation_allocates(tmp_path: Path) -> None:
    qemuimg.create(tmp_path / "full.raw", "raw", 4 * MiB, preallocation="falloc")
    qemuimg.create(tmp_path / "meta.qcow2", "qcow2", 64 * MiB, preallocation="metadata")
    assert os.stat(tmp_path / "full.raw").st_blocks * 512 >= 4 * MiB
    assert (qemuimg.info(tmp_path / "meta.qcow2").actual_size or 0) > 64 * 1024


def test_amend_upgrades_compat(tmp_path: Path) -> None:
    image = tmp_path / "old.qcow2"
    qemuimg.create(image, "qcow2", MiB, compat="0.10")
    assert qemuimg.info(image).compat == "0.10"
    qemuimg.amend(image, "1.1")
    assert qemuimg.info(image).compat == "1.1"


def test_chain_with_relative_backing(tmp_path: Path) -> None:
    qemuimg.create(tmp_path / "base.qcow2", "qcow2", 8 * MiB)
    qemuimg.create(tmp_path / "top.qcow2", "qcow2", backing="base.qcow2", backing_format="qcow2")
    top = qemuimg.info(tmp_path / "top.qcow2", backing_chain=True)
    assert top.virtual_size == 8 * MiB  # taken from the backing file
    assert (top.backing_filename, top.backing_format) == ("base.qcow2", "qcow2")
    assert top.full_backing_filename == str(tmp_path / "base.qcow2")
    assert [image.filename for image in top.backing_chain] == [str(tmp_path / "base.qcow2")]
    assert top.backing_chain[0].backing_filename is None


def test_relative_names_like_vdsm_mount_directories(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "server:_exports_data").mkdir()
    monkeypatch.chdir(tmp_path)
    qemuimg.create("server:_exports_data/v.qcow2", "qcow2", MiB)
    qemuimg.create("-v.raw", "raw", MiB)
    assert qemuimg.info("server:_exports_data/v.qcow2").format == "qcow2"
    assert qemuimg.info("-v.raw").virtual_size == MiB


@pytest.mark.skipif(shutil.which("prlimit") is None, reason="prlimit is not installed")
def test_untrusted_image_is_read_under_limits(tmp_path: Path) -> None:
    qemuimg.create(tmp_path / "upload.qcow2", "qcow2", MiB)
    assert qemuimg.info(tmp_path / "upload.qcow2", untrusted=True).format == "qcow2"


def test_failure_reports_stderr(tmp_path: Path) -> None:
    with pytest.raises(qemuimg.QemuImgError) as info:
        qemuimg.info(tmp_path / "missing.qcow2")
    assert info.value.rc == 1 and "missing.qcow2" in info.value.stderr


def test_backing_file_refusing_a_wrong_format(tmp_path: Path) -> None:
    qemuimg.create(tmp_path / "base.raw", "raw", MiB)
    with pytest.raises(qemuimg.QemuImgError):
        qemuimg.create(tmp_path / "t.qcow2", "qcow2", backing="base.raw", backing_format="qcow2")


def chain(tmp_path: Path) -> tuple[Path, Path]:
    base, top = tmp_path / "base.qcow2", tmp_path / "top.qcow2"
    qemuimg.create(base, "qcow2", 4 * MiB)
    qemu_io_write(base, "qcow2", 0x11, 0, MiB)
    qemuimg.create(top, "qcow2", backing="base.qcow2", backing_format="qcow2")
    qemu_io_write(top, "qcow2", 0x22, MiB, MiB)
    return base, top


# --- measure, map, convert ---------------------------------------------------------------


def test_measure_existing_and_new(tmp_path: Path) -> None:
    source = tmp_path / "data.raw"
    make_raw(source, 16 * MiB, b"\xab" * (4 * MiB))
    existing = qemuimg.measure(source, "raw", output_format="qcow2")
    assert 4 * MiB <= existing.required < 16 * MiB
    assert existing.fully_allocated > 16 * MiB
    new = qemuimg.measure(size=MiB, output_format="raw")
    assert (new.required, new.fully_allocated) == (MiB, MiB)


def test_convert_with_progress_keeps_the_data(tmp_path: Path, cache: str) -> None:
    source = tmp_path / "src.raw"
    data = os.urandom(MiB) * 24
    make_raw(source, 64 * MiB, data, offset=8 * MiB)
    seen: list[float] = []
    target = tmp_path / "dst.qcow2"
    qemuimg.convert(source, target, "raw", "qcow2", cache=cache, progress=seen.append)
    assert seen and seen[-1] == 100.0 and seen == sorted(seen)
    assert qemuimg.info(target).compat == "1.1"
    assert raw_content(target, "qcow2", cache) == source.read_bytes()
    extents = qemuimg.map(target, "qcow2")
    with_data = [e for e in extents if e.data]
    assert sum(e.length for e in with_data) == len(data)
    assert min(e.start for e in with_data) == 8 * MiB


def test_convert_one_layer_of_a_chain(tmp_path: Path, cache: str) -> None:
    _, top = chain(tmp_path)
    expected = raw_content(top, "qcow2", cache)
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy(tmp_path / "base.qcow2", copy / "base.qcow2")
    qemuimg.convert(
        top,
        copy / "top.qcow2",
        "qcow2",
        "qcow2",
        backing="base.qcow2",
        backing_format="qcow2",
        cache=cache,
    )
    assert qemuimg.info(copy / "top.qcow2").backing_filename == "base.qcow2"
    assert raw_content(copy / "top.qcow2", "qcow2", cache) == expected
    own = [e for e in qemuimg.map(copy / "top.qcow2") if e.data and e.depth == 0]
    assert [(e.start, e.length) for e in own] == [(MiB, MiB)]  # only the layer's own data


# --- resize ------------------------------------------------------------------------------


def test_resize_grows_and_shrinks_only_when_asked(tmp_path: Path) -> None:
    image = tmp_path / "v.qcow2"
    qemuimg.create(image, "qcow2", MiB)
    qemuimg.resize(image, 3 * MiB, "qcow2")
    assert qemuimg.info(image).virtual_size == 3 * MiB
    with pytest.raises(qemuimg.QemuImgError, match="shrink"):
        qemuimg.resize(image, MiB, "qcow2")
    qemuimg.resize(image, 2 * MiB, "qcow2", shrink=True)
    assert qemuimg.info(image).virtual_size == 2 * MiB


# --- commit and rebase -------------------------------------------------------------------


def test_commit_writes_top_into_base(tmp_path: Path, cache: str) -> None:
    base, top = chain(tmp_path)
    expected = raw_content(top, "qcow2", cache)
    seen: list[float] = []
    qemuimg.commit(top, "qcow2", cache=cache, progress=seen.append)
    assert raw_content(base, "qcow2", cache) == expected
    assert expected[MiB : 2 * MiB] == b"\x22" * MiB
    assert seen and seen[-1] == 100.0
    assert raw_content(top, "qcow2", cache) == expected  # top kept its data


def test_commit_into_a_named_base(tmp_path: Path, cache: str) -> None:
    base, _ = chain(tmp_path)
    leaf = tmp_path / "leaf.qcow2"
    qemuimg.create(leaf, "qcow2", backing="top.qcow2", backing_format="qcow2")
    qemu_io_write(leaf, "qcow2", 0x33, 2 * MiB, MiB)
    expected = raw_content(leaf, "qcow2", cache)
    qemuimg.commit(leaf, "qcow2", base="base.qcow2", cache=cache)
    assert raw_content(base, "qcow2", cache) == expected


def test_safe_rebase_to_nothing_flattens(tmp_path: Path, cache: str) -> None:
    _, top = chain(tmp_path)
    expected = raw_content(top, "qcow2", cache)
    qemuimg.rebase(top, "", "qcow2", cache=cache, progress=lambda _: None)
    assert qemuimg.info(top).backing_filename is None
    assert raw_content(top, "qcow2", cache) == expected


def test_safe_rebase_onto_another_base_keeps_the_content(tmp_path: Path, cache: str) -> None:
    _, top = chain(tmp_path)
    expected = raw_content(top, "qcow2", cache)
    qemuimg.create(tmp_path / "empty.qcow2", "qcow2", 4 * MiB)
    qemuimg.rebase(top, "empty.qcow2", "qcow2", "qcow2", cache=cache)
    assert qemuimg.info(top).backing_filename == "empty.qcow2"
    assert raw_content(top, "qcow2", cache) == expected


def test_unsafe_rebase_after_rename(tmp_path: Path, cache: str) -> None:
    base, top = chain(tmp_path)
    expected = raw_content(top, "qcow2", cache)
    base.rename(tmp_path / "renamed.qcow2")
    with pytest.raises(qemuimg.QemuImgError):
        qemuimg.info(top, backing_chain=True)
    qemuimg.rebase(top, "renamed.qcow2", "qcow2", "qcow2", unsafe=True)
    info = qemuimg.info(top, backing_chain=True)
    assert info.backing_filename == "renamed.qcow2" and len(info.backing_chain) == 1
    assert raw_content(top, "qcow2", cache) == expected


# --- check -------------------------------------------------------------------------------


def refcount_block(path: Path) -> int:
    with path.open("rb") as f:
        header = f.read(104)
        (table,) = struct.unpack(">Q", header[48:56])
        f.seek(table)
        (block,) = struct.unpack(">Q", f.read(8))
    return int(block)


def test_check_clean_image(tmp_path: Path) -> None:
    image = tmp_path / "ok.qcow2"
    qemuimg.create(image, "qcow2", 10 * MiB)
    result = qemuimg.check(image, "qcow2")
    assert result.clean and result.filename == str(image) and result.format == "qcow2"
    assert result.image_end_offset is not None


def test_check_finds_corruption(tmp_path: Path) -> None:
    image = tmp_path / "corrupt.qcow2"
    qemuimg.create(image, "qcow2", 10 * MiB)
    qemu_io_write(image, "qcow2", 1, 0, MiB)
    block = refcount_block(image)
    with image.open("r+b") as f:  # every cluster now looks unreferenced: refcount 0
        f.seek(block)
        f.write(b"\0" * 512)
    result = qemuimg.check(image, "qcow2")
    assert result.corruptions > 0 and not result.clean


def test_check_finds_leaks(tmp_path: Path) -> None:
    image = tmp_path / "leaky.qcow2"
    qemuimg.create(image, "qcow2", 10 * MiB)
    block = refcount_block(image)
    with image.open("r+b") as f:  # a fifth cluster, counted but used by nothing
        f.seek(block + 2 * 4)
        f.write(struct.pack(">H", 1))
        f.truncate(5 * 64 * 1024)
    result = qemuimg.check(image, "qcow2")
    assert (result.leaks, result.corruptions) == (1, 0) and not result.clean


def test_check_of_raw_is_unsupported(tmp_path: Path) -> None:
    qemuimg.create(tmp_path / "a.raw", "raw", MiB)
    with pytest.raises(qemuimg.QemuImgError) as info:
        qemuimg.check(tmp_path / "a.raw", "raw")
    assert info.value.rc == qemuimg.CHECK_UNSUPPORTED


# --- bitmaps -----------------------------------------------------------------------------


def test_bitmaps_add_and_remove(tmp_path: Path) -> None:
    image = tmp_path / "v.qcow2"
    qemuimg.create(image, "qcow2", 10 * MiB)
    qemuimg.bitmap_add(image, "backup-1")
    qemuimg.bitmap_add(image, "backup-2", granularity=128 * 1024, enabled=False)
    bitmaps = {b.name: b for b in qemuimg.info(image).bitmaps}
    assert "auto" in bitmaps["backup-1"].flags and "auto" not in bitmaps["backup-2"].flags
    assert bitmaps["backup-2"].granularity == 128 * 1024
    assert (qemuimg.measure(image, output_format="qcow2").bitmaps or 0) > 0
    qemuimg.bitmap_remove(image, "backup-1")
    assert [b.name for b in qemuimg.info(image).bitmaps] == ["backup-2"]
    with pytest.raises(qemuimg.QemuImgError):
        qemuimg.bitmap_remove(image, "backup-1")
