"""Every file operation, through a real helper process, against a temporary directory."""

from __future__ import annotations

import errno
import os
import stat
import threading
from pathlib import Path

import pytest

from virthost.storage.oop import BadRequest, OutOfProcessIO, protocol


def test_stat_matches_os(oop: OutOfProcessIO, tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_bytes(b"12345")
    remote, local = oop.stat(target), os.stat(target)
    assert isinstance(remote, os.stat_result)
    assert (remote.st_size, remote.st_mode, remote.st_ino, remote.st_dev) == (
        local.st_size,
        local.st_mode,
        local.st_ino,
        local.st_dev,
    )
    assert remote.st_mtime_ns == local.st_mtime_ns
    assert remote.st_mtime == local.st_mtime
    assert remote[stat.ST_MTIME] == int(local.st_mtime)
    assert remote.st_blocks == local.st_blocks


def test_stat_without_following_symlinks(oop: OutOfProcessIO, tmp_path: Path) -> None:
    (tmp_path / "target").write_bytes(b"")
    (tmp_path / "link").symlink_to(tmp_path / "target")
    assert stat.S_ISREG(oop.stat(tmp_path / "link").st_mode)
    assert stat.S_ISLNK(oop.stat(tmp_path / "link", follow_symlinks=False).st_mode)


def test_statvfs_matches_os(oop: OutOfProcessIO, tmp_path: Path) -> None:
    remote, local = oop.statvfs(tmp_path), os.statvfs(tmp_path)
    assert isinstance(remote, os.statvfs_result)
    assert (remote.f_bsize, remote.f_blocks, remote.f_fsid) == (
        local.f_bsize,
        local.f_blocks,
        local.f_fsid,
    )


def test_missing_file_raises_the_os_error(oop: OutOfProcessIO, tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    with pytest.raises(FileNotFoundError) as info:
        oop.stat(missing)
    assert info.value.errno == errno.ENOENT
    assert info.value.filename == str(missing)


def test_exists_and_access(oop: OutOfProcessIO, tmp_path: Path) -> None:
    (tmp_path / "here").write_bytes(b"")
    assert oop.exists(tmp_path / "here")
    assert not oop.exists(tmp_path / "gone")
    assert oop.access(tmp_path / "here", os.R_OK | os.W_OK)
    assert not oop.access(tmp_path / "gone", os.F_OK)
    with pytest.raises(BadRequest):
        oop.access(tmp_path, 0o100)


def test_listdir_and_glob(oop: OutOfProcessIO, tmp_path: Path) -> None:
    for name in ("b.meta", "a.meta", "a.lease"):
        (tmp_path / name).write_bytes(b"")
    assert oop.listdir(tmp_path) == ["a.lease", "a.meta", "b.meta"]
    assert oop.glob(str(tmp_path / "*.meta")) == [
        str(tmp_path / "a.meta"),
        str(tmp_path / "b.meta"),
    ]
    assert oop.glob(str(tmp_path / "*.none")) == []
    with pytest.raises(NotADirectoryError):
        oop.listdir(tmp_path / "a.meta")


def test_non_utf8_names_round_trip(oop: OutOfProcessIO, tmp_path: Path) -> None:
    raw = os.fsencode(tmp_path) + b"/\xff\xfe.img"
    with open(raw, "wb") as f:
        f.write(b"abc")
    [name] = oop.listdir(tmp_path)
    assert os.fsencode(name) == b"\xff\xfe.img"
    assert oop.stat(tmp_path / name).st_size == 3


def test_read_file_whole_and_ranges(oop: OutOfProcessIO, tmp_path: Path) -> None:
    data = os.urandom(10000)
    (tmp_path / "f").write_bytes(data)
    assert oop.read_file(tmp_path / "f") == data
    assert oop.read_file(tmp_path / "f", offset=100, size=50) == data[100:150]
    assert oop.read_file(tmp_path / "f", offset=9990, size=50) == data[9990:]
    assert oop.read_file(tmp_path / "f", offset=20000) == b""


def test_direct_reads(oop: OutOfProcessIO, tmp_path: Path) -> None:
    data = os.urandom(3 * 4096 + 100)
    (tmp_path / "f").write_bytes(data)
    assert oop.read_file(tmp_path / "f", direct=True) == data
    assert oop.read_file(tmp_path / "f", direct=True, offset=4096, size=10) == data[4096:4106]
    assert oop.read_file(tmp_path / "f", direct=True, offset=8192) == data[8192:]
    assert oop.directio_read(tmp_path / "f") == data[:4096]
    assert oop.directio_read(tmp_path / "f", size=512) == data[:512]
    (tmp_path / "empty").write_bytes(b"")
    assert oop.read_file(tmp_path / "empty", direct=True) == b""
    with pytest.raises(BadRequest):
        oop.read_file(tmp_path / "f", direct=True, offset=100)


def test_readlines(oop: OutOfProcessIO, tmp_path: Path) -> None:
    (tmp_path / "md").write_bytes(b"CLASS=Data\nPOOL=abc\r\nEOF\n")
    assert oop.readlines(tmp_path / "md") == ["CLASS=Data", "POOL=abc", "EOF"]
    with pytest.raises(OSError) as info:
        oop.readlines(tmp_path / "md", max_size=8)
    assert info.value.errno == errno.EFBIG


@pytest.mark.parametrize("direct", [False, True])
def test_write_file_is_atomic_and_exact(oop: OutOfProcessIO, tmp_path: Path, direct: bool) -> None:
    target = tmp_path / "metadata"
    target.write_bytes(b"old content that is longer than the new one" * 200)
    oop.write_file(target, b"new\n", direct=direct, mode=0o600)
    assert target.read_bytes() == b"new\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert os.listdir(tmp_path) == ["metadata"]  # no temporary left behind
    big = os.urandom(5000)
    oop.write_file(target, big, direct=direct)
    assert target.read_bytes() == big
    oop.write_file(target, b"", direct=direct)
    assert target.read_bytes() == b""


def test_write_file_into_missing_directory_fails(oop: OutOfProcessIO, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        oop.write_file(tmp_path / "nodir" / "f", b"x")


def test_large_payload_round_trip(oop: OutOfProcessIO, tmp_path: Path) -> None:
    data = os.urandom(4 * 1024 * 1024)
    oop.write_file(tmp_path / "big", data)
    assert oop.read_file(tmp_path / "big") == data


def test_payload_limit(oop: OutOfProcessIO, tmp_path: Path) -> None:
    with pytest.raises(BadRequest):
        oop.write_file(tmp_path / "huge", bytes(protocol.MAX_PAYLOAD + 1))
    assert not (tmp_path / "huge").exists()
    with open(tmp_path / "sparse", "wb") as f:
        f.truncate(protocol.MAX_PAYLOAD + 1)
    with pytest.raises(OSError) as info:
        oop.read_file(tmp_path / "sparse")
    assert info.value.errno == errno.EFBIG


def test_truncate_creates_sparse_files(oop: OutOfProcessIO, tmp_path: Path) -> None:
    target = tmp_path / "leases"
    oop.truncate(target, 1024**3, mode=0o660)
    st = os.stat(target)
    assert st.st_size == 1024**3
    assert st.st_blocks == 0
    assert stat.S_IMODE(st.st_mode) == 0o660
    oop.truncate(target, 10)
    assert os.stat(target).st_size == 10
    with pytest.raises(FileExistsError):
        oop.truncate(target, 20, exclusive=True)
    assert os.stat(target).st_size == 10


def test_touch(oop: OutOfProcessIO, tmp_path: Path) -> None:
    target = tmp_path / "t"
    oop.touch(target)
    assert target.read_bytes() == b""
    os.utime(target, (1000, 1000))
    oop.touch(target)
    assert os.stat(target).st_mtime > 1000


def test_fsync_files_and_directories(oop: OutOfProcessIO, tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    oop.fsync(tmp_path / "f")
    oop.fsync(tmp_path)
    with pytest.raises(FileNotFoundError):
        oop.fsync(tmp_path / "missing")


def test_probe_block_size(oop: OutOfProcessIO, tmp_path: Path) -> None:
    assert oop.probe_block_size(tmp_path) in (512, 4096)
    assert os.listdir(tmp_path) == []  # the probe file is gone
    with pytest.raises(FileNotFoundError):
        oop.probe_block_size(tmp_path / "missing")


def test_chgrp_and_chmod(oop: OutOfProcessIO, tmp_path: Path) -> None:
    target = tmp_path / "d"
    target.mkdir()
    gid = os.getgroups()[-1] if os.getgroups() else os.getgid()
    oop.chgrp(target, gid)
    oop.chmod(target, 0o2750)
    st = target.stat()
    assert (st.st_gid, st.st_mode & 0o7777) == (gid, 0o2750)
    with pytest.raises(BadRequest):
        oop.chgrp(target, -1)


def test_link(oop: OutOfProcessIO, tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"data")
    oop.link(tmp_path / "a", tmp_path / "b")
    assert (tmp_path / "b").read_bytes() == b"data"
    assert (tmp_path / "a").stat().st_nlink == 2
    with pytest.raises(FileExistsError):
        oop.link(tmp_path / "a", tmp_path / "b")


def test_unlink_and_rename(oop: OutOfProcessIO, tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"a")
    oop.rename(tmp_path / "a", tmp_path / "b")
    assert (tmp_path / "b").read_bytes() == b"a"
    assert not (tmp_path / "a").exists()
    with pytest.raises(FileNotFoundError) as info:
        oop.rename(tmp_path / "a", tmp_path / "c")
    assert info.value.filename == str(tmp_path / "a")
    assert info.value.filename2 == str(tmp_path / "c")
    oop.unlink(tmp_path / "b")
    assert os.listdir(tmp_path) == []
    with pytest.raises(FileNotFoundError):
        oop.unlink(tmp_path / "b")


def test_directories(oop: OutOfProcessIO, tmp_path: Path) -> None:
    oop.mkdir(tmp_path / "d", mode=0o750)
    assert stat.S_IMODE(os.stat(tmp_path / "d").st_mode) == 0o750 & ~_umask()
    with pytest.raises(FileExistsError):
        oop.mkdir(tmp_path / "d")
    oop.makedirs(tmp_path / "x" / "y" / "z")
    oop.makedirs(tmp_path / "x" / "y" / "z")
    assert (tmp_path / "x" / "y" / "z").is_dir()
    with pytest.raises(FileExistsError):
        oop.makedirs(tmp_path / "x", exist_ok=False)
    oop.rmdir(tmp_path / "d")
    assert not (tmp_path / "d").exists()
    with pytest.raises(OSError) as info:
        oop.rmdir(tmp_path / "x")
    assert info.value.errno == errno.ENOTEMPTY


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_rmtree_under_root(oop: OutOfProcessIO, tmp_path: Path) -> None:
    root = tmp_path / "sd"
    image = root / "images" / "img-1"
    image.mkdir(parents=True)
    (image / "vol").write_bytes(b"x")
    oop.rmtree(image, root)
    assert not image.exists()
    assert (root / "images").is_dir()


def test_rmtree_refuses_to_leave_root(oop: OutOfProcessIO, tmp_path: Path) -> None:
    root = tmp_path / "sd"
    (root / "images").mkdir(parents=True)
    outside = tmp_path / "precious"
    outside.mkdir()
    (root / "images" / "escape").symlink_to(outside)
    for path in (root, outside, root / "images" / ".." / "..", root / "images" / "escape"):
        with pytest.raises(BadRequest):
            oop.rmtree(path, root)
    assert outside.is_dir() and root.is_dir()


def test_concurrent_calls_get_their_own_answers(oop: OutOfProcessIO, tmp_path: Path) -> None:
    failures: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(10):
                path = tmp_path / f"f-{n}-{i}"
                payload = f"{n}:{i}".encode() * (i + 1)
                oop.write_file(path, payload)
                assert oop.read_file(path) == payload
                assert oop.stat(path).st_size == len(payload)
        except BaseException as e:
            failures.append(e)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len(os.listdir(tmp_path)) == 80
