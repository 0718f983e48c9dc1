"""The file operations a helper runs for the daemon, one function per protocol ``op``.

Each takes the request's ``args`` object and returns a JSON-able result; it raises OSError for
what the file system says and ValueError for a malformed request. They run inside the helper
process (see :mod:`virthost.storage.oop.helper`), never in the daemon: any of them may block
forever on a hung NFS or Gluster mount, and only a helper thread must pay for that.

Direct I/O (``O_DIRECT``) bypasses the page cache, which is how a host sees what *other* hosts
wrote to shared storage (domain metadata, the monitor's liveness read). It requires the buffer,
the file offset and the length to be aligned to the device's logical block; buffers come from an
anonymous mmap (page aligned) and lengths are rounded up to :data:`BLOCK_SIZE`. A direct write is
padded with zeros to whole blocks and then truncated back to the real length.

Writes are atomic: the content goes to a temporary file in the same directory, is fsynced and
renamed over the target, and the directory is fsynced (as :mod:`virthost.common.fileutils`
does for host-local state): readers on any host see the old file or the new one, never a mix.
"""

from __future__ import annotations

import contextlib
import errno
import glob as glob_module
import mmap
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from virthost.common import fileutils
from virthost.storage.oop.protocol import MAX_PAYLOAD, decode_bytes, encode_bytes

BLOCK_SIZE = 4096
READLINES_MAX = 1024 * 1024

Op = Callable[[dict[str, Any]], Any]

STAT_FIELDS: tuple[str, ...] = (
    "st_mode", "st_ino", "st_dev", "st_nlink", "st_uid", "st_gid", "st_size",
    "st_atime", "st_mtime", "st_ctime", "st_atime_ns", "st_mtime_ns", "st_ctime_ns",
    "st_blksize", "st_blocks", "st_rdev",
)  # fmt: skip
"""What ``stat`` returns: the first seven (then the three times as integers) make the tuple."""

STATVFS_FIELDS: tuple[str, ...] = (
    "f_bsize", "f_frsize", "f_blocks", "f_bfree", "f_bavail", "f_files", "f_ffree",
    "f_favail", "f_flag", "f_namemax", "f_fsid",
)  # fmt: skip
"""What ``statvfs`` returns: all but the last (``f_fsid``) make the tuple."""


def _str(args: dict[str, Any], key: str) -> str:
    value = args.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key!r} must be a non-empty string")
    if "\0" in value:
        raise ValueError(f"{key!r} must not contain NUL")
    return value


def _int(args: dict[str, Any], key: str, default: int | None = None) -> int:
    value = args.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{key!r} must be a non-negative integer")
    return value


def _opt_int(args: dict[str, Any], key: str) -> int | None:
    return None if args.get(key) is None else _int(args, key)


def _bool(args: dict[str, Any], key: str, default: bool) -> bool:
    value = args.get(key, default)
    if not isinstance(value, bool):
        raise ValueError(f"{key!r} must be a boolean")
    return value


def _mode(args: dict[str, Any], key: str, default: int) -> int:
    value = _int(args, key, default)
    if value > 0o7777:
        raise ValueError(f"{key!r} is not a file mode")
    return value


def _round_up(size: int) -> int:
    return (size + BLOCK_SIZE - 1) // BLOCK_SIZE * BLOCK_SIZE


def _too_big(path: str, size: int, limit: int) -> OSError:
    return OSError(errno.EFBIG, f"{size} bytes exceed the limit of {limit}", path)


# --- queries ------------------------------------------------------------------------------


def ping(args: dict[str, Any]) -> bool:
    return True


def stat(args: dict[str, Any]) -> dict[str, Any]:
    st = os.stat(_str(args, "path"), follow_symlinks=_bool(args, "follow_symlinks", True))
    return {name: getattr(st, name) for name in STAT_FIELDS}


def statvfs(args: dict[str, Any]) -> dict[str, Any]:
    st = os.statvfs(_str(args, "path"))
    return {name: getattr(st, name) for name in STATVFS_FIELDS}


def exists(args: dict[str, Any]) -> bool:
    return os.path.exists(_str(args, "path"))


def access(args: dict[str, Any]) -> bool:
    mode = _int(args, "mode")
    if mode & ~(os.R_OK | os.W_OK | os.X_OK):
        raise ValueError("'mode' must combine os.F_OK, R_OK, W_OK and X_OK")
    return os.access(_str(args, "path"), mode)


def listdir(args: dict[str, Any]) -> list[str]:
    return sorted(os.listdir(_str(args, "path")))


def glob(args: dict[str, Any]) -> list[str]:
    return sorted(glob_module.glob(_str(args, "pattern")))


# --- reading ------------------------------------------------------------------------------


def _read_direct(path: str, offset: int, size: int | None) -> bytes:
    if offset % BLOCK_SIZE:
        raise ValueError(f"a direct read must start at a multiple of {BLOCK_SIZE}")
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT | os.O_CLOEXEC)
    try:
        if size is None:
            size = max(os.fstat(fd).st_size - offset, 0)
        if size > MAX_PAYLOAD:
            raise _too_big(path, size, MAX_PAYLOAD)
        if size == 0:
            return b""
        length = _round_up(size)
        with mmap.mmap(-1, length) as buffer:
            view = memoryview(buffer)
            try:
                done = 0
                while done < length:
                    count = os.preadv(fd, [view[done:]], offset + done)
                    done += count
                    if count == 0 or count % BLOCK_SIZE:
                        break  # end of file
                return bytes(view[: min(done, size)])
            finally:
                view.release()
    finally:
        os.close(fd)


def _read_buffered(path: str, offset: int, size: int | None) -> bytes:
    limit = MAX_PAYLOAD if size is None else size
    if limit > MAX_PAYLOAD:
        raise _too_big(path, limit, MAX_PAYLOAD)
    with open(path, "rb") as f:
        if offset:
            f.seek(offset)
        data = f.read(limit + (1 if size is None else 0))
    if len(data) > limit:
        raise _too_big(path, len(data), MAX_PAYLOAD)
    return data


def read_file(args: dict[str, Any]) -> str:
    path, offset, size = _str(args, "path"), _int(args, "offset", 0), _opt_int(args, "size")
    if _bool(args, "direct", False):
        return encode_bytes(_read_direct(path, offset, size))
    return encode_bytes(_read_buffered(path, offset, size))


def directio_read(args: dict[str, Any]) -> str:
    """The first ``size`` bytes, read with O_DIRECT: the domain monitor's "is it alive" probe."""
    size = _int(args, "size", BLOCK_SIZE)
    if size == 0:
        raise ValueError("'size' must be positive")
    return encode_bytes(_read_direct(_str(args, "path"), 0, size))


def readlines(args: dict[str, Any]) -> list[str]:
    """Lines of a small text file, without line ends; EFBIG beyond ``max_size`` bytes."""
    path, limit = _str(args, "path"), _int(args, "max_size", READLINES_MAX)
    if limit > MAX_PAYLOAD:
        raise ValueError(f"'max_size' must be at most {MAX_PAYLOAD}")
    with open(path, "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise _too_big(path, len(data), limit)
    return data.decode("utf-8", "surrogateescape").splitlines()


# --- writing ------------------------------------------------------------------------------


def _write_all(fd: int, data: memoryview) -> None:
    while data:
        data = data[os.write(fd, data) :]


def _write_direct(path: Path, data: bytes, mode: int) -> None:
    directory = path.parent
    fd, temp_name = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.close(fd)
        fd = os.open(temp_name, os.O_WRONLY | os.O_DIRECT | os.O_CLOEXEC)
        try:
            os.fchmod(fd, mode)
            length = _round_up(len(data))
            if length:
                with mmap.mmap(-1, length) as buffer:
                    buffer[: len(data)] = data
                    view = memoryview(buffer)
                    try:
                        _write_all(fd, view)
                    finally:
                        view.release()
            os.ftruncate(fd, len(data))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise
    fileutils.fsync_directory(directory)


def probe_block_size(args: dict[str, Any]) -> int:
    """The smallest direct write the storage under directory ``path`` takes: 512 or 4096.

    Storage with 4 KiB sectors refuses a 512-byte O_DIRECT write with EINVAL. File systems
    without direct I/O (tmpfs) cannot tell; they count as 512, which every reader accepts.
    """
    fd, temp_name = tempfile.mkstemp(dir=_str(args, "path"), prefix=".probe-", suffix=".tmp")
    os.close(fd)
    try:
        try:
            fd = os.open(temp_name, os.O_WRONLY | os.O_DIRECT | os.O_CLOEXEC)
        except OSError as e:
            if e.errno == errno.EINVAL:
                return 512
            raise
        try:
            with mmap.mmap(-1, 4096) as buffer:
                view = memoryview(buffer)
                try:
                    for size in (512, 4096):
                        try:
                            os.pwrite(fd, view[:size], 0)
                            return size
                        except OSError as e:
                            if e.errno != errno.EINVAL:
                                raise
                finally:
                    view.release()
        finally:
            os.close(fd)
        raise OSError(errno.EINVAL, "no direct write size works", _str(args, "path"))
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)


def write_file(args: dict[str, Any]) -> None:
    path, mode = Path(_str(args, "path")), _mode(args, "mode", 0o644)
    data = decode_bytes(args.get("data"))
    if _bool(args, "direct", False):
        _write_direct(path, data, mode)
    else:
        fileutils.atomic_write(path, data, mode)


def truncate(args: dict[str, Any]) -> None:
    """Set a file's size, creating it if needed: growing makes a sparse file."""
    path, size = _str(args, "path"), _int(args, "size")
    mode = None if args.get("mode") is None else _mode(args, "mode", 0)
    flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC
    if _bool(args, "exclusive", False):
        flags |= os.O_EXCL
    fd = os.open(path, flags, 0o644 if mode is None else mode)
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        os.ftruncate(fd, size)
    finally:
        os.close(fd)


def touch(args: dict[str, Any]) -> None:
    path = _str(args, "path")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, _mode(args, "mode", 0o644))
    try:
        os.utime(fd)
    finally:
        os.close(fd)


def fsync(args: dict[str, Any]) -> None:
    fd = os.open(_str(args, "path"), os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def unlink(args: dict[str, Any]) -> None:
    os.unlink(_str(args, "path"))


def rename(args: dict[str, Any]) -> None:
    os.rename(_str(args, "src"), _str(args, "dst"))


def chgrp(args: dict[str, Any]) -> None:
    os.chown(_str(args, "path"), -1, _int(args, "gid"))


def chmod(args: dict[str, Any]) -> None:
    os.chmod(_str(args, "path"), _mode(args, "mode", 0o755))


def link(args: dict[str, Any]) -> None:
    os.link(_str(args, "src"), _str(args, "dst"))


def mkdir(args: dict[str, Any]) -> None:
    os.mkdir(_str(args, "path"), _mode(args, "mode", 0o755))


def makedirs(args: dict[str, Any]) -> None:
    path, mode = _str(args, "path"), _mode(args, "mode", 0o755)
    os.makedirs(path, mode, exist_ok=_bool(args, "exist_ok", True))


def rmdir(args: dict[str, Any]) -> None:
    os.rmdir(_str(args, "path"))


def rmtree(args: dict[str, Any]) -> None:
    """Remove a directory tree, refusing anything that does not resolve strictly under ``root``.

    The root is the guard against a bad path (an empty image id, ``..``, a symlink planted in
    the domain) turning into the removal of someone else's data.
    """
    path, root = _str(args, "path"), _str(args, "root")
    if os.path.islink(path):
        raise ValueError(f"refusing to remove the symbolic link {path!r}")
    real_root, real_path = os.path.realpath(root), os.path.realpath(path)
    if real_path == real_root or os.path.commonpath([real_root, real_path]) != real_root:
        raise ValueError(f"{path!r} is not under {root!r}")
    shutil.rmtree(real_path)


OPS: dict[str, Op] = {
    "ping": ping,
    "stat": stat,
    "statvfs": statvfs,
    "exists": exists,
    "access": access,
    "listdir": listdir,
    "glob": glob,
    "read_file": read_file,
    "directio_read": directio_read,
    "readlines": readlines,
    "write_file": write_file,
    "truncate": truncate,
    "touch": touch,
    "fsync": fsync,
    "unlink": unlink,
    "rename": rename,
    "link": link,
    "chgrp": chgrp,
    "chmod": chmod,
    "probe_block_size": probe_block_size,
    "mkdir": mkdir,
    "makedirs": makedirs,
    "rmdir": rmdir,
    "rmtree": rmtree,
}
