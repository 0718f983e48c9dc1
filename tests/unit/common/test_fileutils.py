from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from virthost.common.fileutils import atomic_write, atomic_write_text


def test_writes_new_file_with_mode(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    atomic_write(target, b"{}", mode=0o600)
    assert target.read_bytes() == b"{}"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert os.listdir(tmp_path) == ["state.json"]  # no temporary left behind


def test_default_mode_ignores_umask(tmp_path: Path) -> None:
    old_umask = os.umask(0o077)
    try:
        atomic_write(tmp_path / "f", b"x")
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE((tmp_path / "f").stat().st_mode) == 0o644


def test_replaces_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_bytes(b"old content")
    old_inode = target.stat().st_ino
    atomic_write(target, b"new")
    assert target.read_bytes() == b"new"
    assert target.stat().st_ino != old_inode  # replaced by rename, not rewritten in place


def test_failure_keeps_old_file_and_removes_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "f"
    target.write_bytes(b"old")

    def failing_replace(src: str, dst: Path) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, b"new")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["f"]


def test_fsyncs_file_and_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    atomic_write(tmp_path / "f", b"x")
    assert len(synced) == 2


def test_missing_directory_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        atomic_write(tmp_path / "missing" / "f", b"x")


def test_atomic_write_text(tmp_path: Path) -> None:
    atomic_write_text(tmp_path / "t", "héllo\n")
    assert (tmp_path / "t").read_bytes() == "héllo\n".encode()
