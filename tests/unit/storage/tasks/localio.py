"""Task store I/O on a local directory, and a wrapper that "crashes" after N changes."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from virthost.common import fileutils


class LocalIO:
    """The TaskFileIO protocol with plain local calls (what the helper process does)."""

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def listdir(self, path: str) -> list[str]:
        return sorted(os.listdir(path))

    def read_file(self, path: str) -> bytes:
        return Path(path).read_bytes()

    def write_file(self, path: str, data: bytes) -> None:
        fileutils.atomic_write(Path(path), data)

    def makedirs(self, path: str) -> None:
        os.makedirs(path, exist_ok=True)

    def rename(self, src: str, dst: str) -> None:
        os.rename(src, dst)

    def rmtree(self, path: str, root: str) -> None:
        real_root, real_path = os.path.realpath(root), os.path.realpath(path)
        if real_path == real_root or os.path.commonpath([real_root, real_path]) != real_root:
            raise ValueError(f"{path} is not under {root}")
        shutil.rmtree(real_path)

    def fsync(self, path: str) -> None:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class Crash(BaseException):
    """The process died: nothing after this point runs (not an Exception, so nobody cleans)."""


class CrashingIO(LocalIO):
    """Dies before the change numbered ``crash_at`` (0 = the first); reads always work."""

    def __init__(self, crash_at: int) -> None:
        self.crash_at = crash_at
        self.changes = 0

    def _change(self) -> None:
        if self.changes == self.crash_at:
            raise Crash()
        self.changes += 1

    def write_file(self, path: str, data: bytes) -> None:
        self._change()
        super().write_file(path, data)

    def makedirs(self, path: str) -> None:
        self._change()
        super().makedirs(path)

    def rename(self, src: str, dst: str) -> None:
        self._change()
        super().rename(src, dst)

    def rmtree(self, path: str, root: str) -> None:
        if self.changes == self.crash_at:
            # A real removal goes file by file: die with part of the tree gone.
            for directory, _, files in os.walk(path):
                if files:
                    os.unlink(os.path.join(directory, files[0]))
                    break
        self._change()
        super().rmtree(path, root)


class FailingIO(LocalIO):
    """Every change fails with EIO while ``broken`` is set, like storage gone away."""

    def __init__(self) -> None:
        self.broken = False

    def _check(self) -> None:
        if self.broken:
            raise OSError(5, "Input/output error")

    def write_file(self, path: str, data: bytes) -> None:
        self._check()
        super().write_file(path, data)

    def makedirs(self, path: str) -> None:
        self._check()
        super().makedirs(path)

    def rename(self, src: str, dst: str) -> None:
        self._check()
        super().rename(src, dst)

    def rmtree(self, path: str, root: str) -> None:
        self._check()
        super().rmtree(path, root)
