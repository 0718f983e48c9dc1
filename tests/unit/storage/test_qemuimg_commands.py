"""qemu-img wrappers build safe command lines, parse JSON strictly, and report failures fully.

A fake runner records what would run and answers with canned output (taken from qemu-img
7.2), so these tests need no qemu-img; tests/integration/storage/test_qemuimg.py runs it.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from virthost.common import errors
from virthost.common.commands import CommandResult
from virthost.storage import errors as storage_errors
from virthost.storage import qemuimg

QCOW2_INFO = {
    "backing-filename-format": "qcow2",
    "virtual-size": 1073741824,
    "filename": "top.qcow2",
    "cluster-size": 65536,
    "format": "qcow2",
    "actual-size": 200704,
    "format-specific": {
        "type": "qcow2",
        "data": {
            "compat": "1.1",
            "compression-type": "zlib",
            "lazy-refcounts": False,
            "bitmaps": [{"flags": ["auto"], "name": "b1", "granularity": 65536}],
            "refcount-bits": 16,
            "corrupt": False,
            "extended-l2": False,
        },
    },
    "full-backing-filename": "/images/base.qcow2",
    "backing-filename": "base.qcow2",
    "dirty-flag": False,
}
RAW_INFO = {"virtual-size": 4096, "filename": "a.raw", "format": "raw", "dirty-flag": False}


@dataclass
class Call:
    argv: list[str]
    timeout: float
    cwd: str | None


@dataclass
class FakeRunner:
    """Answers every command with ``rc``, ``out`` and ``err``; records the calls."""

    out: bytes = b""
    err: bytes = b""
    rc: int = 0
    raises: Exception | None = None
    calls: list[Call] = field(default_factory=list)

    def run(
        self,
        argv: Sequence[str],
        timeout: float,
        *,
        input: bytes | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        nice: int | None = None,
        ionice_idle: bool = False,
        check: bool = True,
    ) -> CommandResult:
        self.calls.append(Call(list(argv), timeout, cwd))
        if self.raises is not None:
            raise self.raises
        return CommandResult(tuple(argv), self.rc, self.out, self.err, 0.1)

    @property
    def argv(self) -> list[str]:
        return self.calls[-1].argv


@dataclass
class FakeStreamingRunner(FakeRunner):
    chunks: list[bytes] = field(default_factory=list)
    seen: list[float] = field(default_factory=list)
    progress_seen_while_running: list[list[float]] = field(default_factory=list)

    def run_streaming(
        self,
        argv: Sequence[str],
        timeout: float,
        on_stdout: Callable[[bytes], None],
        *,
        cwd: str | None = None,
        check: bool = True,
    ) -> CommandResult:
        self.calls.append(Call(list(argv), timeout, cwd))
        for chunk in self.chunks:
            on_stdout(chunk)
            self.progress_seen_while_running.append(list(self.seen))
        return CommandResult(tuple(argv), 0, b"".join(self.chunks), b"", 0.1)


def answering(obj: Any, rc: int = 0) -> FakeRunner:
    return FakeRunner(out=json.dumps(obj).encode(), rc=rc)


# --- info and results --------------------------------------------------------------------


def test_info_parses_qcow2_details() -> None:
    runner = answering(QCOW2_INFO)
    info = qemuimg.info("/images/top.qcow2", "qcow2", runner=runner)
    assert runner.argv == [
        "qemu-img", "info", "--output", "json", "-f", "qcow2", "/images/top.qcow2"
    ]  # fmt: skip
    assert runner.calls[0].timeout == qemuimg.INFO_TIMEOUT
    assert info == qemuimg.ImageInfo(
        filename="top.qcow2",
        format="qcow2",
        virtual_size=1073741824,
        actual_size=200704,
        cluster_size=65536,
        backing_filename="base.qcow2",
        full_backing_filename="/images/base.qcow2",
        backing_format="qcow2",
        dirty=False,
        compat="1.1",
        lazy_refcounts=False,
        corrupt=False,
        bitmaps=(qemuimg.BitmapInfo("b1", 65536, ("auto",)),),
    )


def test_info_of_raw_has_no_qcow2_details() -> None:
    info = qemuimg.info("a.raw", runner=answering(RAW_INFO))
    assert info.compat is None and info.corrupt is None
    assert info.bitmaps == () and info.backing_filename is None


def test_info_backing_chain_nests_the_images_below() -> None:
    base = {**RAW_INFO, "filename": "base.raw"}
    runner = answering([QCOW2_INFO, base])
    info = qemuimg.info("top.qcow2", backing_chain=True, force_share=True, runner=runner)
    assert "--backing-chain" in runner.argv and "-U" in runner.argv
    assert [i.filename for i in info.backing_chain] == ["base.raw"]


def test_untrusted_info_runs_under_resource_limits() -> None:
    runner = answering(RAW_INFO)
    qemuimg.info("upload.img", untrusted=True, runner=runner, timeout=5.0)
    assert runner.argv[0] == "prlimit" and runner.argv[3] == "qemu-img"
    assert runner.calls[0].timeout == 5.0


@pytest.mark.parametrize(
    "out",
    [
        b"not json",
        b"[]",
        json.dumps({**RAW_INFO, "virtual-size": "big"}).encode(),
        json.dumps({**RAW_INFO, "virtual-size": True}).encode(),
        json.dumps({k: v for k, v in RAW_INFO.items() if k != "format"}).encode(),
        json.dumps({**QCOW2_INFO, "format-specific": {"type": "qcow2", "data": {"compat": 1}}}),
    ],
)
def test_output_that_does_not_parse_is_an_error(out: bytes | str) -> None:
    runner = FakeRunner(out=out.encode() if isinstance(out, str) else out)
    with pytest.raises(qemuimg.QemuImgError, match="invalid output of qemu-img info"):
        qemuimg.info("a.img", runner=runner)


# --- failures ----------------------------------------------------------------------------


def test_failure_carries_command_rc_and_stderr() -> None:
    runner = FakeRunner(rc=1, err=b"qemu-img: Could not open 'x': No such file or directory\n")
    with pytest.raises(qemuimg.QemuImgError) as info:
        qemuimg.resize("x", 1024, runner=runner)
    error = info.value
    assert error.rc == 1 and error.argv == ("qemu-img", "resize", "x", "1024")
    assert error.stderr == "qemu-img: Could not open 'x': No such file or directory"
    assert "No such file" in str(error) and isinstance(error, errors.CommandError)


def test_missing_executable_is_a_qemuimg_error() -> None:
    runner = FakeRunner(raises=errors.CommandError("cannot run qemu-img: not found"))
    with pytest.raises(qemuimg.QemuImgError) as info:
        qemuimg.amend("a.qcow2", "1.1", runner=runner)
    assert info.value.rc is None


def test_timeout_stays_a_command_timeout() -> None:
    runner = FakeRunner(raises=errors.CommandTimeout("took too long"))
    with pytest.raises(errors.CommandTimeout):
        qemuimg.convert("a", "b", runner=runner)


# --- command lines -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "arg"),
    [
        ("/rhev/data-center/mnt/server:_exports_data/sd/images/i/v", None),
        ("server:_exports_data/sd/images/i/v", "./server:_exports_data/sd/images/i/v"),
        ("-rf", "./-rf"),
        ("nbd:localhost:10809", "./nbd:localhost:10809"),
        ("images/a:b", None),
        ("plain.qcow2", None),
    ],
)
def test_paths_are_never_options_or_protocols(path: str, arg: str | None) -> None:
    assert qemuimg.path_arg(path) == (arg or path)


def test_create_qcow2_with_backing() -> None:
    runner = FakeRunner()
    qemuimg.create("/sd/img/top", "qcow2", backing="base", backing_format="qcow2", runner=runner)
    assert runner.argv == [
        "qemu-img", "create", "-f", "qcow2", "-o", "compat=1.1",
        "-b", "base", "-F", "qcow2", "/sd/img/top",
    ]  # fmt: skip
    assert runner.calls[0].timeout == qemuimg.METADATA_TIMEOUT


def test_create_raw_preallocated() -> None:
    runner = FakeRunner()
    qemuimg.create("v", "raw", 1 << 30, preallocation="full", runner=runner)
    assert runner.argv == ["qemu-img", "create", "-f", "raw", "-o", "preallocation=full", "v",
                           str(1 << 30)]  # fmt: skip
    assert runner.calls[0].timeout == qemuimg.DATA_TIMEOUT


def test_create_options_escape_commas_and_cluster_size() -> None:
    runner = FakeRunner()
    qemuimg.create("v", "qcow2", 1024, compat="0.10", cluster_size=2 << 20, runner=runner)
    assert runner.argv[4:6] == ["-o", "compat=0.10,cluster_size=2097152"]
    qemuimg.convert("a", "b", "raw", "qcow2", backing="x,y", backing_format="raw", runner=runner)
    assert "compat=1.1,backing_file=x,,y,backing_fmt=raw" in runner.argv


@pytest.mark.parametrize(
    "call",
    [
        lambda r: qemuimg.create("v", "qcow2", backing="base", runner=r),
        lambda r: qemuimg.create("v", "raw", 1, compat="1.1", runner=r),
        lambda r: qemuimg.create("v", "qcow2", 1, compat="2.0", runner=r),
        lambda r: qemuimg.create("v", "raw", 1, preallocation="metadata", runner=r),
        lambda r: qemuimg.create("v", "raw", -1, runner=r),
        lambda r: qemuimg.create("", "raw", 1, runner=r),
        lambda r: qemuimg.resize("v", 1, preallocation="lots", runner=r),
        lambda r: qemuimg.rebase("v", "base", runner=r),
        lambda r: qemuimg.measure(runner=r),
        lambda r: qemuimg.measure("v", size=1, runner=r),
        lambda r: qemuimg.bitmap_add("v", "--evil", runner=r),
        lambda r: qemuimg.bitmap_remove("v", "", runner=r),
        lambda r: qemuimg.amend("v", "0.9", runner=r),
    ],
)
def test_invalid_requests_are_refused_before_running(call: Callable[[FakeRunner], Any]) -> None:
    runner = FakeRunner()
    with pytest.raises(storage_errors.InvalidParameterException) as info:
        call(runner)
    assert info.value.code == 1000 and runner.calls == []


def test_convert_defaults_to_direct_io_and_vdsm_compat() -> None:
    runner = FakeRunner()
    qemuimg.convert("src", "dst", "raw", "qcow2", preallocation="metadata", runner=runner)
    assert runner.argv == [
        "qemu-img", "convert", "-t", "none", "-T", "none", "-f", "raw", "-O", "qcow2",
        "-o", "compat=1.1,preallocation=metadata", "src", "dst",
    ]  # fmt: skip
    assert runner.calls[0].timeout == qemuimg.DATA_TIMEOUT


def test_convert_into_existing_target() -> None:
    runner = FakeRunner()
    qemuimg.convert(
        "src", "/dev/vg/lv", "qcow2", "raw", backing="base", create=False,
        unordered_writes=True, bitmaps=True, cache=None, runner=runner,
    )  # fmt: skip
    assert runner.argv == [
        "qemu-img", "convert", "-n", "-f", "qcow2", "-O", "raw", "-B", "base",
        "-W", "--bitmaps", "src", "/dev/vg/lv",
    ]  # fmt: skip


def test_commit_runs_in_the_image_directory_and_keeps_top() -> None:
    runner = FakeRunner()
    qemuimg.commit("/sd/img/top", "qcow2", runner=runner)
    assert runner.argv == ["qemu-img", "commit", "-t", "none", "-f", "qcow2", "-d", "/sd/img/top"]
    assert runner.calls[0].cwd == "/sd/img"
    qemuimg.commit("/sd/img/top", "qcow2", base="base", runner=runner)
    assert runner.argv[-3:] == ["-b", "base", "/sd/img/top"]


def test_rebase_safe_and_unsafe() -> None:
    runner = FakeRunner()
    qemuimg.rebase("/sd/img/top", "new", "qcow2", "raw", runner=runner)
    assert runner.argv == [
        "qemu-img", "rebase", "-t", "none", "-T", "none", "-f", "qcow2",
        "-b", "new", "-F", "raw", "/sd/img/top",
    ]  # fmt: skip
    assert runner.calls[-1].timeout == qemuimg.DATA_TIMEOUT and runner.calls[-1].cwd == "/sd/img"
    qemuimg.rebase("/sd/img/top", "", unsafe=True, cache=None, runner=runner)
    assert runner.argv == ["qemu-img", "rebase", "-u", "-b", "", "/sd/img/top"]
    assert runner.calls[-1].timeout == qemuimg.INFO_TIMEOUT


def test_resize_and_bitmaps() -> None:
    runner = FakeRunner()
    qemuimg.resize("v", 2048, "qcow2", shrink=True, preallocation="falloc", runner=runner)
    assert runner.argv == [
        "qemu-img", "resize", "-f", "qcow2", "--shrink", "--preallocation=falloc", "v", "2048"
    ]  # fmt: skip
    qemuimg.bitmap_add("v", "b1", granularity=65536, enabled=False, runner=runner)
    assert runner.argv == [
        "qemu-img", "bitmap", "--add", "-g", "65536", "--disable", "-f", "qcow2", "v", "b1"
    ]  # fmt: skip
    qemuimg.bitmap_remove("v", "b1", runner=runner)
    assert runner.argv == ["qemu-img", "bitmap", "--remove", "-f", "qcow2", "v", "b1"]


# --- check, measure, map -----------------------------------------------------------------


def test_check_reports_corruptions_instead_of_raising() -> None:
    report = {
        "image-end-offset": 1376256, "total-clusters": 160, "corruptions": 38, "check-errors": 0,
        "allocated-clusters": 16, "filename": "c", "format": "qcow2",
    }  # fmt: skip
    result = qemuimg.check("c", runner=answering(report, rc=qemuimg.CHECK_CORRUPTED))
    assert result.corruptions == 38 and result.leaks == 0 and not result.clean


def test_check_of_a_format_without_checker_fails() -> None:
    with pytest.raises(qemuimg.QemuImgError) as info:
        qemuimg.check("a.raw", "raw", runner=FakeRunner(rc=qemuimg.CHECK_UNSUPPORTED))
    assert info.value.rc == qemuimg.CHECK_UNSUPPORTED


def test_measure_of_a_new_image() -> None:
    runner = answering({"required": 1073741824, "fully-allocated": 1073741824})
    result = qemuimg.measure(size=1 << 30, output_format="raw", runner=runner)
    assert runner.argv == [
        "qemu-img", "measure", "--output", "json", "-O", "raw", "--size", str(1 << 30)
    ]  # fmt: skip
    assert result == qemuimg.MeasureResult(1073741824, 1073741824, None)


def test_map_extents() -> None:
    extents = [
        {"start": 0, "length": 65536, "depth": 0, "present": True, "zero": False,
         "data": True, "offset": 327680},
        {"start": 65536, "length": 65536, "depth": 1, "present": False, "zero": True,
         "data": False},
    ]  # fmt: skip
    result = qemuimg.map("v", runner=answering(extents))
    assert result[0] == qemuimg.MapExtent(0, 65536, 0, True, False, True, 327680)
    assert result[1].offset is None and result[1].depth == 1


# --- progress ----------------------------------------------------------------------------

PROGRESS = b"".join(b"    (%.2f/100%%)\r" % p for p in (0, 6.25, 12.5, 50, 100, 100)) + b"\n"


@given(st.lists(st.integers(0, len(PROGRESS)), max_size=10))
def test_progress_parser_is_indifferent_to_chunking(cuts: list[int]) -> None:
    points = [0, *sorted(cuts), len(PROGRESS)]
    parser = qemuimg.ProgressParser()
    values: list[float] = []
    for start, end in itertools.pairwise(points):
        values += parser.feed(PROGRESS[start:end])
    assert values == [0.0, 6.25, 12.5, 50.0, 100.0, 100.0]


def test_progress_parser_skips_other_output() -> None:
    parser = qemuimg.ProgressParser()
    assert parser.feed(b"warning: something\r    (5.00/100%)\r(bad/100%)\r") == [5.0]


def test_progress_streams_while_the_command_runs() -> None:
    runner = FakeStreamingRunner(chunks=[b"    (0.00/100%)\r    (3", b"3.00/100%)\r", b"\n"])
    qemuimg.convert("a", "b", progress=runner.seen.append, runner=runner)
    assert "-p" in runner.argv
    assert runner.progress_seen_while_running == [[0.0], [0.0, 33.0], [0.0, 33.0]]


def test_progress_arrives_at_the_end_from_a_plain_runner() -> None:
    seen: list[float] = []
    qemuimg.commit("/a/top", "qcow2", progress=seen.append, runner=FakeRunner(out=PROGRESS))
    assert seen == [0.0, 6.25, 12.5, 50.0, 100.0, 100.0]


def test_no_progress_flag_without_callback() -> None:
    runner = FakeRunner()
    qemuimg.convert("a", "b", runner=runner)
    assert "-p" not in runner.argv
